"""Faults under load, with the real parts: PostgreSQL connections terminated at the
worst moment (pg_terminate_backend), a Redis broker that loses its messages, and a
real Celery worker. A write that committed is answered as a success; a result is
stored even when the connection breaks under it; a queued run whose message was
lost is sent again (probes) or ended as not run (actions)."""

# `faults` is a fixture imported by name; tests naming it is not a redefinition.
# ruff: noqa: F811

from __future__ import annotations

import psycopg
import pytest
import redis
from django.conf import settings
from django.db import connection
from django.test import Client, override_settings

from incidents.actors import Actor
from incidents.models import AuditEvent, StepExecution
from incidents.services import import_runbook, open_incident, request_run, sweeper
from probes.commands import confirm_word
from tests.conftest import IMPORTER, grant
from tests.stack import database_url

from .conftest import WORKER_LOG, wait_for
from .test_execution_faults import counter, faults  # noqa: F401 - a fixture

pytestmark = [pytest.mark.django_db(transaction=True)]
State = StepExecution.State


def console_dsn() -> str:
    db = settings.DATABASES["default"]
    return database_url(db, password=True)


def terminate(where: str, *params: object) -> int:
    """pg_terminate_backend on the console database's backends matching `where`,
    from a connection of its own; how many were terminated."""
    with psycopg.connect(console_dsn(), autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = current_database() AND pid <> pg_backend_pid() AND {where}",
            params,
        ).fetchall()
    return sum(1 for (ok,) in rows if ok)


def kill_my_connection() -> None:
    assert terminate("pid = %s", connection.connection.info.backend_pid) == 1


def raw(user) -> Client:  # noqa: ANN001
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


# --- the console: the change committed, then the connection died -----------------------


@pytest.fixture
def connection_dies_while_answering(monkeypatch):  # noqa: ANN001, ANN201
    """The console's connection is terminated after the change committed, just as
    the answer starts to be drawn (once)."""
    from incidents.views import common as views

    original = views.present_checklist
    killed: list[bool] = []

    def kill_then_draw(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        if not killed:
            killed.append(True)
            kill_my_connection()
        return original(*args, **kwargs)

    monkeypatch.setattr(views, "present_checklist", kill_then_draw)
    yield killed
    connection.close()  # if the console kept the dead one, the next test must not


def test_a_run_committed_before_the_connection_died_is_answered_as_done(
    faults, connection_dies_while_answering, monkeypatch
):
    monkeypatch.setattr("incidents.services.runs.dispatch", lambda *a, **k: None)
    command = faults.command(9)
    response = raw(faults.user).post(
        f"/incidents/{faults.incident.pk}/commands/{command.pk}/run",
        {"request_key": "once"},
        HTTP_HX_REQUEST="true",
    )
    assert connection_dies_while_answering == [True]
    assert response.status_code == 200
    assert 'id="incident-head"' in response.content.decode()  # drawn again
    assert StepExecution.objects.filter(command=command).count() == 1
    # (The audit table outlives transactional tests: count this incident's.)
    assert (
        AuditEvent.objects.filter(
            incident=faults.incident, verb="execution.requested"
        ).count()
        == 1
    )


def test_a_tick_committed_before_the_connection_died_is_answered_as_done(
    faults, connection_dies_while_answering
):
    response = raw(faults.user).post(
        f"/incidents/{faults.incident.pk}/steps/3/tick",
        {"state": "done", "expected": 0},
        HTTP_HX_REQUEST="true",
    )
    assert connection_dies_while_answering == [True]
    assert response.status_code == 200
    assert StepExecution.objects.filter(state=State.DONE).count() == 1


# --- the worker: the target answered, then its result write lost the connection ---------


@pytest.fixture
def killer_runbook(faults, target_env):  # noqa: ANN001, ANN201
    """An action that terminates the worker's connections to the console database
    while it runs: the worker then stores its result on a dead connection."""
    test_pid = connection.connection.info.backend_pid if connection.connection else 0
    console_db = settings.DATABASES["default"]["NAME"]
    sql = (
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE datname = '{console_db}' AND pid <> {test_pid} "
        "AND backend_type = 'client backend';"
    )
    source = f"""# Faults of the console itself
Version: 1.0.0

## 1. The Console Loses Its Database

### Steps

1. **Terminate the console's connections**
   ```sql
   {sql}
   ```
"""
    playbook = import_runbook(source=source, actor=IMPORTER).runbook.playbooks.get()
    grant(faults.user, "run_actions", playbooks=[playbook])
    # A user's grants are cached on the object (as Django caches permissions):
    # the services check them, so act as a copy loaded after this grant.
    cole = type(faults.user).objects.get(pk=faults.user.pk)
    incident = open_incident(
        playbook=playbook, title="db blips", actor=Actor.person(cole)
    )
    return incident, playbook.commands.get()


@pytest.mark.usefixtures("worker")
def test_a_result_is_stored_although_the_workers_connection_died(killer_runbook):
    incident, command = killer_runbook
    assert command.kind == "action" and command.executor == "sql"
    execution = request_run(
        incident=incident,
        command=command,
        params={},
        actor=Actor.person(incident.opened_by),
        confirmation=confirm_word(command),
        break_glass_reason="fault test" if command.requires_approval else "",
    ).execution
    execution = wait_for(execution)
    assert execution.state == State.SUCCEEDED, execution.summary
    assert "database connection lost" in WORKER_LOG.read_text(errors="replace")
    assert (
        AuditEvent.objects.filter(
            incident=incident, verb="execution.succeeded", object_id=str(execution.pk)
        ).count()
        == 1
    )


# --- the broker lost the message: the run would stay queued for ever --------------------


def test_a_queued_run_whose_message_was_lost_is_resent_or_ended(
    faults, worker, target_database
):
    before = counter(target_database)
    worker.kill()
    probe = faults.run(9)  # redis PING
    action = faults.run(1)  # UPDATE counter ...
    # The broker restarts without persistence: both messages are gone.
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
    worker.restart()
    for execution in (probe, action):
        execution.refresh_from_db()
        assert execution.state == State.QUEUED  # nothing will ever claim them

    with override_settings(STALE_QUEUED_AFTER=0):
        assert sweeper.sweep_unclaimed() == 2

    probe = wait_for(probe)
    assert (probe.state, probe.summary) == (State.SUCCEEDED, "PING: PONG")
    action.refresh_from_db()
    assert action.state == State.DISPATCH_FAILED
    assert action.summary.startswith("Not run: no worker picked it up")
    assert counter(target_database) == before  # never claimed, never started
    by_sweeper = dict(
        AuditEvent.objects.filter(
            incident=faults.incident, actor_name="sweeper"
        ).values_list("object_id", "verb")
    )
    assert by_sweeper == {
        str(probe.pk): "execution.resent",
        str(action.pk): "execution.dispatch_failed",
    }
    # A Run click is no longer answered with the dead run: it makes a new one.
    again = faults.run(1)
    assert again.pk != action.pk
    assert wait_for(again).started_at is not None  # claimed and run
