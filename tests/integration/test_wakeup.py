"""The click's wake-up on commit (incidents/wakeup.py) and the worker's kept
connection, with the real parts: a Celery worker, PostgreSQL's LISTEN/NOTIFY, a
listener connection terminated with pg_terminate_backend. No assertion on elapsed
time: what is asserted is which path answered (the listener's record of its
wake-ups, the rows the waiter read) and which backend did the work."""

# `faults` is a fixture imported by name; tests naming it is not a redefinition.
# ruff: noqa: F811

from __future__ import annotations

import re
import threading
import time

import psycopg
import pytest
from celery import current_app
from django.db import connection
from django.test.utils import CaptureQueriesContext

from incidents import wakeup
from incidents.models import StepExecution
from incidents.services import execution as runner
from incidents.services import runs
from probes.runtime import Result
from tests.conftest import signed_in
from tests.stack import database_url
from yomira_console import worker as worker_process

from .conftest import ROOT, wait_for
from .test_execution_faults import faults  # noqa: F401 - a fixture
from .test_run_faults import terminate

pytestmark = [pytest.mark.django_db(transaction=True)]
State = StepExecution.State
Outcome = wakeup.Outcome
FAST_PROBE = 9  # redis-cli ping (faults.md)
SILENT_PROBE = 4  # curl to a server that never answers: ends at EXECUTION_TIMEOUT


def until(check, seconds: float = 20, what: str = "") -> None:  # noqa: ANN001
    """Wait for a condition, bounded (a hang fails the test, time is not asserted)."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"still not {what or check} after {seconds} s")
        time.sleep(0.02)


@pytest.fixture
def ear():  # noqa: ANN201
    """This process's listener, fresh and connected; stopped afterwards."""
    wakeup.stop_listener()
    listener = wakeup.listener()
    until(listener.up.is_set, what="listening")
    yield listener
    wakeup.stop_listener()


def click(client, faults, step: int, key: str):  # noqa: ANN001, ANN201
    command = faults.command(step)
    url = f"/incidents/{faults.incident.pk}/commands/{command.pk}/run"
    response = client.post(url, {"request_key": key}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200, response.content[:500]
    return response, StepExecution.objects.get(command=command, request_key=key)


def state_reads(queries: list[dict], execution_id: int) -> int:
    """The waiter's reads of one run's state (views/runs.py `done`)."""
    pattern = re.compile(
        r'^SELECT "incidents_stepexecution"\."state"(?: AS "state")? '
        r'FROM "incidents_stepexecution" '
        rf'WHERE "incidents_stepexecution"\."id" = {execution_id}\b'
    )
    return sum(1 for q in queries if pattern.match(q["sql"]))


@pytest.mark.usefixtures("worker")
def test_the_click_is_answered_by_the_notify_of_the_worker_that_stored_it(
    faults, ear, settings
):
    """The run takes the target's whole timeout, far past any early look at the
    row; the click may wait much longer still, so only the NOTIFY sent on the
    worker's commit could end its wait with the result, and the waiter read the
    row twice (once on registering, once when woken), not every 10 ms."""
    settings.RUN_WAIT_SECONDS = 20
    client = signed_in(faults.user)
    with CaptureQueriesContext(connection) as queries:
        response, execution = click(client, faults, SILENT_PROBE, "wake-1")
    assert execution.state in (State.TIMED_OUT, State.FAILED)
    assert execution.pk in ear.woken
    assert (execution.pk, Outcome.WOKEN) in ear.outcomes
    assert state_reads(queries.captured_queries, execution.pk) == 2
    # The answer is the finished run, not a spinner that polls.
    assert "hx-trigger" not in opening_tag(response, execution.pk)


def opening_tag(response, execution_id: int) -> str:  # noqa: ANN001
    """The run's fragment's own tag: it polls (hx-trigger) while the run is in
    flight, and not once it is finished."""
    found = re.search(
        rf'<div[^>]*id="execution-{execution_id}"[^>]*>', response.content.decode()
    )
    assert found, f"execution {execution_id} is not in the answer"
    return found.group(0)


def test_the_listener_survives_its_connection_being_terminated(
    faults, ear, monkeypatch
):
    """pg_terminate_backend on the listener's connection: it reconnects on its own
    and the next run's NOTIFY wakes its waiter again."""
    monkeypatch.setattr(runs, "dispatch", lambda *a, **k: None)  # no worker here
    first = ear.backend_pid
    assert terminate("pid = %s", first) == 1
    until(lambda: ear.connects >= 2 and ear.up.is_set(), what="reconnected")
    assert ear.backend_pid != first

    execution = faults.run(FAST_PROBE)
    assert runner.claim(execution.pk)  # as the worker would, before running it
    outcome = wait_while_finished_elsewhere(ear, execution)
    assert outcome == Outcome.WOKEN
    assert execution.pk in ear.woken


def wait_while_finished_elsewhere(ear, execution: StepExecution) -> Outcome:  # noqa: ANN001
    """Wait for the run here while another thread (its own connection, as a
    worker) stores its result through execution.finish once the wait is on."""

    def finisher() -> None:
        try:
            until(lambda: execution.pk in ear._waiters, what="waiting")
            runner.finish(execution, Result(True, "PONG"))
        finally:
            connection.close()

    thread = threading.Thread(target=finisher)
    thread.start()
    try:
        return wakeup.wait(execution.pk, 20, lambda: is_terminal(execution.pk))
    finally:
        thread.join(30)


def is_terminal(execution_id: int) -> bool:
    return StepExecution.objects.get(pk=execution_id).is_terminal


@pytest.mark.usefixtures("worker")
def test_with_the_listener_down_the_click_answers_and_the_poll_brings_the_result(
    faults, ear, monkeypatch, settings
):
    """The database refuses the listener: a click does not wait for a wake-up that
    cannot come, it answers with the run in flight, and the result's own poll (the
    fallback) ends with 286 on the finished run. Then the listener comes back."""
    settings.RUN_WAIT_SECONDS = 20
    real_connect = ear._connect

    def refused() -> psycopg.Connection:
        raise psycopg.OperationalError("the database refuses connections")

    monkeypatch.setattr(ear, "_connect", refused)
    assert terminate("pid = %s", ear.backend_pid) == 1
    until(lambda: not ear.up.is_set(), what="down")

    client = signed_in(faults.user)
    response, execution = click(client, faults, SILENT_PROBE, "down-1")
    assert (execution.pk, Outcome.NO_LISTENER) in ear.outcomes
    assert "hx-trigger" in opening_tag(response, execution.pk)
    detail = f"/incidents/{faults.incident.pk}/executions/{execution.pk}"
    polls = []

    def polled_to_the_end() -> bool:
        polls.append(client.get(detail, HTTP_HX_REQUEST="true").status_code)
        return polls[-1] == 286

    until(polled_to_the_end, seconds=30, what="stopped polling")
    assert set(polls[:-1]) <= {200}
    assert wait_for(execution).is_terminal

    monkeypatch.setattr(ear, "_connect", real_connect)
    until(ear.up.is_set, seconds=30, what="listening again")


def test_a_waiter_that_registers_after_the_notify_reads_the_row_once(faults, ear):
    """The race the re-check closes: the result was stored (and its NOTIFY gone)
    before the click began to wait."""
    from unittest import mock

    with mock.patch.object(runs, "dispatch"):
        execution = faults.run(FAST_PROBE)
    assert runner.claim(execution.pk)
    runner.finish(execution, Result(True, "PONG"))
    reads = []

    def done() -> bool:
        reads.append(1)
        return is_terminal(execution.pk)

    assert wakeup.wait(execution.pk, 60, done) == Outcome.DONE
    assert len(reads) == 1


# --- the worker keeps its connection -------------------------------------------------

QUEUE = "reuse-test"
REUSE_LOG = ROOT / "test-artifacts" / "worker-reuse.log"


@pytest.fixture
def named_worker(target_env):  # noqa: ANN001, ANN201
    """A worker of its own, on a queue of its own, with one pool process (so two
    runs in a row meet the same process) that logs which console backend claimed
    each run (execution.execute, at DEBUG)."""
    url = database_url(connection.settings_dict)
    process = worker_process.start(
        worker_process.command(
            hostname=f"{QUEUE}@%h",
            queues=[QUEUE],
            pool="prefork",
            concurrency=1,
            loglevel="DEBUG",
            alone=True,
        ),
        env={**target_env, "DATABASE_URL": url, "LOG_LEVEL": "DEBUG"},
        log=REUSE_LOG,
        own_session=True,
    )
    worker_process.wait_ready(process, f"{QUEUE}@%h", log=REUSE_LOG)
    yield process
    worker_process.stop(process)


def claimed_on(execution: StepExecution) -> int:
    found = re.findall(
        rf"execution {execution.pk} claimed on console backend (\d+)",
        REUSE_LOG.read_text(errors="replace"),
    )
    assert len(found) == 1, f"the worker's log says {found} for {execution.pk}"
    return int(found[0])


def run_on(queue: str, execution: StepExecution) -> StepExecution:
    current_app.send_task(runs.RUN_PROBE_TASK, args=[execution.pk], queue=queue)
    return wait_for(execution)


def test_two_runs_in_a_row_use_the_workers_same_database_connection(
    faults, named_worker, monkeypatch
):
    """Celery's Django fixup closes the connection around every task unless
    CELERY_DB_REUSE_MAX is set: the backend that ran the first run is still there,
    the same one, after the second."""
    monkeypatch.setattr(runs, "dispatch", lambda *a, **k: None)
    first = run_on(QUEUE, faults.run(FAST_PROBE))
    second = run_on(QUEUE, faults.run(FAST_PROBE))
    assert first.state == second.state == State.SUCCEEDED, second.summary
    assert claimed_on(first) == claimed_on(second)


def test_a_grant_revoked_after_the_click_is_refused_by_a_warm_worker(
    faults, named_worker, monkeypatch
):
    """The worker keeps its connection and its grants cache from task to task; a
    permission taken away between the click and the run is still caught."""
    monkeypatch.setattr(runs, "dispatch", lambda *a, **k: None)
    warm = run_on(QUEUE, faults.run(FAST_PROBE))  # its one process read cole's grants
    assert warm.state == State.SUCCEEDED, warm.summary
    clicked = faults.run(FAST_PROBE)  # allowed at the click
    faults.user.groups.clear()  # revoked before the worker runs it
    refused = run_on(QUEUE, clicked)
    assert claimed_on(refused) == claimed_on(warm)  # the same, warm, connection
    assert refused.state == State.FAILED
    assert refused.summary == "Not run: the requester may no longer run this command."


def test_a_kept_connection_that_died_between_tasks_costs_a_reconnect_not_the_run(
    faults, named_worker, monkeypatch
):
    """The database dropped the worker's kept connection while it was idle (a
    restart, a failover): the next run is claimed on a new connection and runs."""
    monkeypatch.setattr(runs, "dispatch", lambda *a, **k: None)
    first = run_on(QUEUE, faults.run(FAST_PROBE))
    assert first.state == State.SUCCEEDED, first.summary
    assert terminate("pid = %s", claimed_on(first)) == 1
    second = run_on(QUEUE, faults.run(FAST_PROBE))
    assert second.state == State.SUCCEEDED, second.summary
    assert claimed_on(second) != claimed_on(first)
