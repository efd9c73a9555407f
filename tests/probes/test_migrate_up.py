"""`migrate up/down/goto` run the files of the worker's checkout
(TARGET_MIGRATIONS_ROOT) against a real PostgreSQL, the simulated Yomira stack's,
as golang-migrate does: refused while dirty, each migration marked dirty before
and clean after, a failure left dirty with the error said."""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import psycopg
import pytest

from probes import commands
from probes.preview import preview
from probes.runtime import Context, Result
from probes.targets import TargetMissing
from sandbox import faults
from tests.probes.bound import Cmd, bind
from tests.sandbox.fixtures import sandbox_stack  # noqa: F401
from tests.sandbox.helpers import command as runbook_command

RUNBOOK = 'migrate -database "${DATABASE_URL}" -path src/common/DML/migrations '


def run(command: Cmd, params: dict | None = None, **limits: float) -> Result:
    ctx = Context(**{"connect_timeout": 3, "timeout": 15, **limits})
    return commands.run(command, params or {}, ctx)


def scratch(text: str) -> Cmd:
    """A command against the scratch schema (SCRATCH_URL), not Yomira's own."""
    return bind(f'migrate -database "${{SCRATCH_URL}}" -path db/migrations {text}')


def write(root: Path, files: dict[str, str]) -> None:
    folder = root / "db" / "migrations"
    folder.mkdir(parents=True, exist_ok=True)
    for name, sql in files.items():
        (folder / name).write_text(sql)


@pytest.fixture
def checkout(sandbox_stack, tmp_path, monkeypatch):  # noqa: ANN001, ANN201, F811
    """A checkout of another application in tmp_path, migrating its own schema
    (search_path) of the stack's database: Yomira's schema_migrations untouched."""
    schema = f"app_{os.getpid()}_{tmp_path.name[-12:].replace('-', '_')}".lower()
    url = sandbox_stack.database_url()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    monkeypatch.setenv("TARGET_SCRATCH_URL", f"{url}&options=-csearch_path%3D{schema}")
    monkeypatch.setenv("TARGET_MIGRATIONS_ROOT", str(tmp_path))
    yield tmp_path, schema
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


def scratch_state(stack, schema: str) -> tuple | None:  # noqa: ANN001
    with psycopg.connect(stack.database_url()) as conn:
        if conn.execute(
            "SELECT to_regclass(%s)", [f"{schema}.schema_migrations"]
        ).fetchone()[0]:
            return conn.execute(
                f"SELECT version, dirty FROM {schema}.schema_migrations"
            ).fetchone()
    return None


def exists(stack, name: str) -> bool:  # noqa: ANN001
    with psycopg.connect(stack.database_url()) as conn:
        return conn.execute("SELECT to_regclass(%s)", [name]).fetchone()[0] is not None


def test_the_failed_migration_drill_up_1_after_force_4_builds_the_index(
    sandbox_stack,  # noqa: F811
) -> None:
    version = runbook_command(11, RUNBOOK + "version", step=1)
    force = runbook_command(11, RUNBOOK + "force 4")
    up = runbook_command(11, RUNBOOK + "up 1")
    faults.inject(sandbox_stack, "dirty_migration")
    try:
        assert run(version).summary == "5 (dirty)"
        seen = preview(up, {})
        assert "dirty at version 5" in seen.nothing  # no Run offered
        refused = run(up)
        assert not refused.ok
        assert "dirty at version 5" in refused.summary
        assert (
            "`force` the last version that applied cleanly (after a failed up, 4)"
            in (refused.summary)
        )
        assert run(version).summary == "5 (dirty)"  # nothing ran

        assert run(force).ok
        seen = preview(up, {})
        assert not seen.nothing
        assert "would apply 1 migration" in seen.headline
        assert seen.facts == [
            "1. src/common/DML/migrations/000005_session_active_index.up.sql "
            "(then version 5)"
        ]
        assert "CREATE INDEX session_userid_active_idx" in seen.detail
        assert not exists(sandbox_stack, "users.session_userid_active_idx")

        applied = run(up)
        assert applied.ok, applied.summary
        assert applied.data["applied"] == [5]
        assert "000005_session_active_index.up.sql" in applied.summary
        assert "5/u session_active_index" in applied.output
        assert exists(sandbox_stack, "users.session_userid_active_idx")
        said = run(version)
        assert (said.summary, said.data["dirty"]) == ("5", False)

        again = preview(up, {})
        assert again.nothing.startswith("nothing to apply: schema_migrations is at 5")
    finally:
        faults.ALL_HEAL(sandbox_stack)


def test_a_failing_migration_is_left_dirty_at_its_version_with_the_error(
    checkout,  # noqa: ANN001
    sandbox_stack,  # noqa: F811
) -> None:
    root, schema = checkout
    write(
        root,
        {
            "000001_accounts.up.sql": "CREATE TABLE accounts (id int);",
            "000001_accounts.down.sql": "DROP TABLE accounts;",
            "000002_orders.up.sql": (
                "CREATE TABLE orders (id int);\nINSERT INTO no_such_table VALUES (1);"
            ),
            "000002_orders.down.sql": "DROP TABLE orders;",
        },
    )
    failed = run(scratch("up"))
    assert not failed.ok
    assert failed.summary.startswith("db/migrations/000002_orders.up.sql failed:")
    assert "no_such_table" in failed.summary
    assert "schema_migrations left at 2 (dirty)" in failed.summary
    assert "1/u accounts" in failed.output and "no_such_table" in failed.output
    assert (failed.data["version"], failed.data["dirty"]) == (2, True)
    assert scratch_state(sandbox_stack, schema) == (2, True)
    assert exists(sandbox_stack, f"{schema}.accounts")
    # The file ran as one transaction: its first statement did not stay.
    assert not exists(sandbox_stack, f"{schema}.orders")

    again = run(scratch("up"))
    assert not again.ok and "dirty at version 2" in again.summary
    assert "(after a failed up, 1)" in again.summary
    assert run(scratch("force 1")).ok
    assert scratch_state(sandbox_stack, schema) == (1, False)


def test_down_n_and_goto_run_the_files_in_golang_migrates_order(
    checkout,  # noqa: ANN001
    sandbox_stack,  # noqa: F811
) -> None:
    root, schema = checkout
    write(
        root,
        {
            f"00000{n}_t{n}.{d}.sql": (
                f"CREATE TABLE t{n} (id int);" if d == "up" else f"DROP TABLE t{n};"
            )
            for n in (1, 2, 3)
            for d in ("up", "down")
        },
    )
    assert run(scratch("goto 2")).data["applied"] == [1, 2]
    assert scratch_state(sandbox_stack, schema) == (2, False)
    assert exists(sandbox_stack, f"{schema}.t2")

    refused = run(scratch("down"))
    assert not refused.ok and "name how many, e.g. `down 1`" in refused.summary
    seen = preview(scratch("down 1"), {})
    assert seen.facts == ["1. db/migrations/000002_t2.down.sql (then version 1)"]
    down = run(scratch("down 1"))
    assert down.ok and "rolled back 000002_t2.down.sql" in down.summary
    assert scratch_state(sandbox_stack, schema) == (1, False)
    assert not exists(sandbox_stack, f"{schema}.t2")

    # Two more than there are: golang-migrate applies what exists, then fails
    # with "limit 1 short".
    short = run(scratch("up 3"))
    assert not short.ok and short.data["applied"] == [2, 3]
    assert "1 fewer than asked" in short.summary
    assert scratch_state(sandbox_stack, schema) == (3, False)

    down_all = run(scratch("down 5"))  # down past the first: no version at all
    assert down_all.data["applied"] == [3, 2, 1]
    assert scratch_state(sandbox_stack, schema) is None  # the table is empty
    assert run(scratch("version")).summary == "no migration"
    assert "nothing to apply" in preview(scratch("down 1"), {}).nothing


def test_a_migration_past_the_time_limit_is_cancelled_and_left_dirty(
    checkout,  # noqa: ANN001
    sandbox_stack,  # noqa: F811
) -> None:
    root, schema = checkout
    write(root, {"000001_slow.up.sql": "SELECT pg_sleep(30);"})
    result = run(scratch("up 1"), timeout=1)
    assert not result.ok and result.timed_out
    assert "schema_migrations left at 1 (dirty)" in result.summary
    assert scratch_state(sandbox_stack, schema) == (1, True)


def test_output_is_capped(checkout) -> None:  # noqa: ANN001
    root, _ = checkout
    write(root, {f"{n:06d}_step_{n}.up.sql": "SELECT 1;" for n in range(1, 40)})
    result = run(scratch("up"), output_cap=400)
    assert result.ok and result.data["applied"] == list(range(1, 40))
    assert len(result.output.encode()) <= 400
    assert "output trimmed" in result.output


def test_a_secret_in_the_error_is_redacted(checkout) -> None:  # noqa: ANN001
    root, _ = checkout
    write(
        root,
        {
            "000001_leak.up.sql": (
                "DO $$ BEGIN RAISE EXCEPTION 'password=hunter2secret'; END $$;"
            )
        },
    )
    result = run(scratch("up"))
    assert not result.ok and "password=" in result.output
    assert "hunter2secret" not in result.output


@pytest.mark.parametrize(
    ("path", "said"),
    [
        ("../outside", "goes up with '..'"),
        ("db/../../outside", "goes up with '..'"),
        ("/etc", "is absolute"),
        ("file:///etc", "is absolute"),
        ("linked", "leads outside TARGET_MIGRATIONS_ROOT"),
        ("s3://bucket/migrations", "Only file sources run here"),
    ],
)
def test_a_path_out_of_the_checkout_is_refused(
    checkout,  # noqa: ANN001
    sandbox_stack,  # noqa: F811
    tmp_path_factory,  # noqa: ANN001
    path: str,
    said: str,
) -> None:
    root, schema = checkout
    outside = tmp_path_factory.mktemp("outside")
    (outside / "000001_evil.up.sql").write_text("CREATE TABLE evil (id int);")
    (root / "linked").symlink_to(outside)
    for text in ("up 1", "down 1", "goto 1"):
        command = bind(f'migrate -database "${{SCRATCH_URL}}" -path {path} {text}')
        result = run(command)
        assert not result.ok and said in result.summary, result.summary
        assert said in preview(command, {}).headline
    assert scratch_state(sandbox_stack, schema) is None  # nothing touched
    assert not exists(sandbox_stack, f"{schema}.evil")


def test_a_migration_file_linked_from_outside_is_refused(
    checkout,  # noqa: ANN001
    sandbox_stack,  # noqa: F811
    tmp_path_factory,  # noqa: ANN001
) -> None:
    root, schema = checkout
    outside = tmp_path_factory.mktemp("elsewhere") / "evil.sql"
    outside.write_text("CREATE TABLE evil (id int);")
    write(root, {"000001_fine.up.sql": "SELECT 1;"})
    (root / "db" / "migrations" / "000002_evil.up.sql").symlink_to(outside)
    result = run(scratch("up"))
    assert not result.ok
    assert "000002_evil.up.sql is a symlink leading outside" in result.summary
    assert scratch_state(sandbox_stack, schema) is None
    assert not exists(sandbox_stack, f"{schema}.evil")


def test_without_the_checkout_variable_it_says_which_to_set(
    sandbox_stack,  # noqa: F811
    monkeypatch,  # noqa: ANN001
) -> None:
    monkeypatch.delenv("TARGET_MIGRATIONS_ROOT")
    up = runbook_command(11, RUNBOOK + "up 1")
    assert commands.missing_targets(up) == ["TARGET_MIGRATIONS_ROOT"]
    # version and force need no files.
    assert commands.missing_targets(runbook_command(11, RUNBOOK + "force 4")) == []
    with pytest.raises(TargetMissing, match="set TARGET_MIGRATIONS_ROOT") as raised:
        run(up)
    assert "checkout of the application repository" in str(raised.value)
    assert "TARGET_MIGRATIONS_ROOT" in preview(up, {}).headline
    for text in ("down 1", "goto 3"):
        assert commands.missing_targets(bind(RUNBOOK + text)) == [
            "TARGET_MIGRATIONS_ROOT"
        ]


def test_a_number_that_is_not_one_is_a_parameter_problem() -> None:
    up = bind('migrate -database "${DATABASE_URL}" -path m up {steps}')
    assert up.parameters == ["steps"]
    assert "whole number" in commands.parameter_problem(up, {"steps": "1; DROP"})
    assert commands.parameter_problem(up, {"steps": "2"}) is None


def test_another_migrate_holding_the_lock_is_said_and_nothing_runs(
    checkout,  # noqa: ANN001
    sandbox_stack,  # noqa: F811
) -> None:
    root, schema = checkout
    write(root, {"000001_a.up.sql": "CREATE TABLE a (id int);"})
    with psycopg.connect(os.environ["TARGET_SCRATCH_URL"], autocommit=True) as other:
        # golang-migrate's own key: crc32("schema\0schema_migrations\0database")
        # times its salt, so a person's `migrate` and the console exclude each other.
        key = other.execute(
            "SELECT current_schema() || chr(1) || 'schema_migrations' || chr(1) "
            "|| current_database()"
        ).fetchone()[0]
        expected = (zlib.crc32(key.replace("\x01", "\x00").encode()) * 1486364155) & (
            2**32 - 1
        )
        other.execute("SELECT pg_advisory_lock(%s)", [expected])
        held = run(scratch("up"))
    assert not held.ok and "Another migrate is at work" in held.summary
    assert not exists(sandbox_stack, f"{schema}.a")
    assert run(scratch("up")).ok  # the lock went with the other session


def test_flags_as_go_writes_them_and_down_needs_a_second_person() -> None:
    goto = bind("migrate -path=db/m -database=${ORDERS_DB_URL} -lock-timeout 30 goto 7")
    assert (goto.kind, goto.spec["subcommand"], goto.spec["argument"]) == (
        "action",
        "goto",
        "7",
    )
    assert goto.spec["path"] == "db/m" and goto.variables == ["ORDERS_DB_URL"]
    down_all = bind("migrate -path db/m -database ${DATABASE_URL} down -all")
    assert "argument" not in down_all.spec  # refused at run: N is required
    assert commands.needs_approval(bind("migrate -path m down 1"))
    assert not commands.needs_approval(bind("migrate -path m up 1"))
