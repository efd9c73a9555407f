"""Every runnable command of the bundled runbook, run through the engine against a
fresh, healthy stack, in runbook order (its actions change the stack as they
would Yomira: the tests after them see it). §11 is run against its own trouble, a
dirty migration 5: on a healthy stack its `force 4` then `up 1` would rebuild an
index that is already there, and fail as the real migrate would."""

from __future__ import annotations

import psycopg
import pytest

from probes import commands
from probes.binding import MANUAL
from probes.runtime import Context
from sandbox import faults, seed
from sandbox.stack import Stack

from .fixtures import exported, restore
from .helpers import runbook_commands


@pytest.fixture
def fresh_stack(tmp_path):  # noqa: ANN001, ANN201
    stack = Stack(tmp_path / "box")
    try:
        stack.start()
        saved = exported(stack.env())
        yield stack
        restore(saved)
    finally:
        stack.stop()


def parameters(stack: Stack, found) -> dict[str, str]:  # noqa: ANN001
    values = {
        "userId": seed.SAMPLE_USER_ID,
        "$1": seed.SAMPLE_USER_ID,
        "id": str(seed.SAMPLE_SOURCE_ID),
    }
    if "pid" in found.parameters:
        # A real backend of the target database to cancel and then terminate.
        conn = psycopg.connect(stack.database_url(), application_name="yomira-api")
        stack.held = [*getattr(stack, "held", []), conn]
        values["pid"] = str(conn.info.backend_pid)
    return {k: v for k, v in values.items() if k in found.parameters}


def test_every_runnable_command_succeeds_against_the_healthy_stack(fresh_stack):  # noqa: ANN001
    ran, outcomes, said_by_step = 0, [], {}
    for number, step, found in runbook_commands():
        if found.kind == MANUAL:
            continue
        if number == 11 and step == 1:
            faults.inject(fresh_stack, "dirty_migration")
        result = commands.run(
            found,
            parameters(fresh_stack, found),
            Context(connect_timeout=3, timeout=15),
        )
        ran += 1
        outcomes.append((number, step, found.text[:60], result.ok, result.summary))
        said_by_step[(number, step)] = result.summary
    failed = [o for o in outcomes if not o[3]]
    assert not failed, "\n".join(map(str, failed))
    assert ran == 37  # every probe and action of the runbook
    said = {(o[0], o[2][:30]): o[4] for o in outcomes}
    assert "→ 200 OK" in said[(1, "curl https://api.yomira.app/he")]
    assert "yomira-db-1" in said[(9, "df -h")]  # the simulated host, not the worker
    assert "pg_terminate_backend = True" in said[(5, "SELECT pg_terminate_backend(pi")]
    assert said[(3, 'migrate -database "${DATABASE_')] == "5"  # clean
    # §11 against a dirty migration 5: force 4, then up 1 applies 5 again.
    assert said_by_step[(11, 1)] == "5 (dirty)"
    assert said_by_step[(11, 3)].startswith("forced version 4")
    assert said_by_step[(11, 4)].startswith(
        "applied 000005_session_active_index.up.sql: version 5, clean"
    )
    assert said_by_step[(11, 5)] == "5"
    for conn in getattr(fresh_stack, "held", []):
        conn.close()
