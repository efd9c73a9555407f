"""Previews against the real target database: the right row count, and nothing
changed; statements that cannot be tried show what is known instead."""

from __future__ import annotations

import psycopg
import pytest

from incidents.models import Command
from incidents.services import import_runbook
from probes.preview import preview
from tests.conftest import IMPORTER, TEST_RUNBOOKS, YOMIRA_RUNBOOK

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("target_env", "seeded_target"),
]


def count(target_database: str, sql: str) -> int:
    with psycopg.connect(target_database) as conn:
        return conn.execute(sql).fetchone()[0]


@pytest.fixture
def yomira_commands(db):  # noqa: ANN001, ANN201
    runbook = import_runbook(source=YOMIRA_RUNBOOK.read_bytes(), actor=IMPORTER).runbook
    return Command.objects.filter(playbook__runbook=runbook)


def test_an_update_preview_counts_the_rows_and_changes_nothing(
    yomira_commands, target_database
):
    reset = yomira_commands.get(text__startswith="UPDATE crawler.job")
    running = "SELECT count(*) FROM crawler.job WHERE status = 'running'"
    before = count(target_database, running)
    shown = preview(reset, {})
    assert shown.possible and shown.rows == 2
    assert (
        shown.headline
        == "Would change 2 rows (tried in a transaction that was rolled back)."
    )
    assert (
        "pending" in shown.detail and "(2 rows)" in shown.detail
    )  # the rows as they would be
    assert count(target_database, running) == before  # rolled back


def test_a_bound_parameter_preview_counts_only_that_users_sessions(
    yomira_commands, target_database
):
    revoke = yomira_commands.get(text__startswith="UPDATE users.session")
    open_sessions = "SELECT count(*) FROM users.session WHERE revokedat IS NULL"
    before = count(target_database, open_sessions)
    assert preview(revoke, {"$1": "u-7"}).rows == 1
    assert preview(revoke, {"$1": "nobody"}).rows == 0
    assert count(target_database, open_sessions) == before


def test_drop_and_vacuum_show_what_is_known_and_say_no_preview(
    yomira_commands, target_database
):
    with psycopg.connect(
        target_database, autocommit=True
    ) as conn:  # other tests drop it
        conn.execute(
            "CREATE TABLE IF NOT EXISTS analytics.pageview_2025_01 (id serial, path text)"
        )
    drop = preview(yomira_commands.get(text__startswith="DROP TABLE"), {})
    assert not drop.possible and drop.headline.startswith("No preview possible")
    assert drop.facts[0].startswith("analytics.pageview_2025_01: ")
    assert "on disk, about" in drop.facts[0]
    vacuum = preview(yomira_commands.get(text__startswith="VACUUM"), {})
    assert (
        vacuum.facts[0].startswith("analytics.pageview: ")
        and "rows (estimate)" in vacuum.facts[0]
    )
    assert (
        count(target_database, "SELECT count(*) FROM analytics.pageview_2025_01") == 0
    )


def test_signalling_a_backend_shows_that_backend(yomira_commands, target_database):
    victim = psycopg.connect(target_database, autocommit=True)
    pid = victim.execute("SELECT pg_backend_pid()").fetchone()[0]
    try:
        shown = preview(
            yomira_commands.get(text__startswith="SELECT pg_terminate_backend"),
            {"pid": str(pid)},
        )
        assert not shown.possible
        assert shown.facts[0].startswith(f"backend {pid}: user postgres, idle")
        assert victim.execute("SELECT 1").fetchone() == (1,)  # still alive
    finally:
        victim.close()


def test_http_and_redis_actions_show_the_exact_request_with_secrets_masked(
    yomira_commands,
):
    pause = preview(yomira_commands.get(text__contains="crawler/pause"), {})
    # The runbook's request, `${NAME}` left as the name; where it really goes is a
    # fact beside it.
    assert pause.headline.startswith("Will send POST https://api.yomira.app/")
    assert pause.detail.endswith("Authorization: Bearer ${ADMIN_TOKEN}")
    assert pause.facts[0].startswith("api.yomira.app is reached at http://127.0.0.1:")
    revoke = preview(
        yomira_commands.get(text__contains="revoke-all"), {"userId": "u/../x"}
    )
    assert "/admin/users/u%2F..%2Fx/sessions/revoke-all" in revoke.headline
    policy = preview(yomira_commands.get(text__contains="config set"), {})
    assert (
        policy.headline == "Will send to Redis: config set maxmemory-policy allkeys-lru"
    )


def test_a_preview_returns_the_rows_as_they_would_become(db, target_database):
    runbook = import_runbook(
        source=(TEST_RUNBOOKS / "faults.md").read_bytes(), actor=IMPORTER
    ).runbook
    write = Command.objects.get(
        playbook__runbook=runbook, text="UPDATE counter SET n = 100;"
    )
    shown = preview(write, {})
    assert shown.rows == 1 and "\n100\n" in shown.detail
    assert count(target_database, "SELECT n FROM counter") != 100
