"""The task queue down (a real Redis broker, started and killed): a probe runs
inline in the web process, marked so, within its wall clock and under the cap; an
action is refused with the reason and nothing runs; with the queue back, probes go
to the worker again and nothing is run twice."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator

import psycopg
import pytest
import redis
from celery import current_app
from django.conf import settings as django_settings
from django.test import override_settings

from incidents.actors import Actor
from incidents.models import AuditEvent, Command, StepExecution
from incidents.services import (
    DIAGNOSIS,
    decide_approval,
    import_runbook,
    inline,
    open_incident,
    request_run,
    run_diagnosis,
    runs,
    sweeper,
)
from probes.commands import confirm_word
from tests.conftest import (
    IMPORTER,
    TEST_RUNBOOKS,
    grant,
    hanging_probes,
    signed_in,
)

from .conftest import wait_for
from .targets import free_port

pytestmark = [pytest.mark.django_db(transaction=True)]

FAST_PROBE = 9  # redis-cli ping against the test Redis
SILENT_PROBE = 4  # curl against a server that accepts and never answers
WRITE = 14  # UPDATE counter SET n = 100 (an action)


@contextlib.contextmanager
def broker_down() -> Iterator[None]:
    """Celery pointed at a real Redis that was started and then killed: every
    send fails the way it does when the broker dies under the console."""
    from yomira_console.celery import app

    port = free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    broker = f"redis://127.0.0.1:{port}/0"
    saved = app.conf.broker_url
    try:
        for _ in range(100):
            try:
                redis.Redis.from_url(broker).ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        app.conf.broker_url = broker
        app._pool = None
        app.amqp._producer_pool = None
        server.terminate()
        server.wait(5)  # the broker is now down
        yield
    finally:
        app.conf.broker_url = saved
        app._pool = None
        app.amqp._producer_pool = None
        server.kill()
        server.wait(5)


@pytest.fixture
def faults(make_user, target_env):  # noqa: ANN001, ANN201
    cole = make_user("cole", "Commander")
    runbook = import_runbook(
        source=(TEST_RUNBOOKS / "faults.md").read_bytes(), actor=IMPORTER
    ).runbook
    playbook = runbook.playbooks.get()
    grant(cole, "run_actions", playbooks=[playbook])
    incident = open_incident(playbook=playbook, title="fire", actor=Actor.person(cole))

    def command(step: int) -> Command:
        return playbook.commands.filter(step__number=step).order_by("position")[0]

    def run(step: int) -> StepExecution:
        cmd = command(step)
        # An approval-required action breaks glass here; approvals have a test below.
        reason = "broker test" if cmd.requires_approval else ""
        return request_run(
            incident=incident,
            command=cmd,
            params={},
            actor=Actor.person(cole),
            confirmation=confirm_word(cmd),
            break_glass_reason=reason,
        ).execution

    return type(
        "Faults",
        (),
        {
            "incident": incident,
            "playbook": playbook,
            "user": cole,
            "command": staticmethod(command),
            "run": staticmethod(run),
        },
    )


def counter(target_database: str) -> int:
    with psycopg.connect(target_database) as conn:
        return conn.execute("SELECT n FROM counter").fetchone()[0]


def events(execution: StepExecution) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(
            object_type="stepexecution", object_id=str(execution.pk)
        ).order_by("seq")
    )


def verbs(execution: StepExecution) -> list[str]:
    return [event.verb for event in events(execution)]


def test_a_probe_runs_inline_when_the_broker_is_down(faults):
    with broker_down():
        execution = faults.run(FAST_PROBE)
    execution.refresh_from_db()
    assert execution.state == "succeeded", execution.summary
    assert execution.summary == f"{inline.INLINE_MARK} PING: PONG"
    assert execution.task_id == ""  # no message carried it
    assert verbs(execution) == ["execution.requested", "execution.succeeded"]
    succeeded = events(execution)[-1]
    assert succeeded.data["result"][inline.INLINE_KEY] is True
    assert succeeded.data["summary"].startswith(inline.INLINE_MARK)
    assert inline.SLOTS.taken == 0  # its slot is free again
    # The post-mortem and the timeline export say how it ran.
    client = signed_in(faults.user)
    base = f"/incidents/{faults.incident.pk}"
    for export in ("postmortem.md", "timeline.json", "timeline.csv"):
        response = client.get(f"{base}/{export}")
        assert response.status_code == 200
        assert inline.INLINE_MARK in b"".join(response.streaming_content).decode()


def test_the_run_button_answers_with_the_inline_result(faults):
    command = faults.command(FAST_PROBE)
    url = f"/incidents/{faults.incident.pk}/commands/{command.pk}/run"
    client = signed_in(faults.user)
    with broker_down():
        response = client.post(url, {"request_key": "k1"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    page = response.content.decode()
    assert inline.INLINE_MARK in page and "PONG" in page
    execution = StepExecution.objects.get(command=command)
    assert execution.state == "succeeded"


def test_an_action_is_refused_and_nothing_runs(faults, target_database):
    before = counter(target_database)
    with broker_down():
        execution = faults.run(WRITE)
    execution.refresh_from_db()
    assert execution.command.kind == "action"
    assert execution.state == "dispatch_failed"
    assert execution.summary.startswith("Not sent: the task queue is unreachable")
    assert "Actions run only on a worker" in execution.summary
    assert execution.started_at is None  # never claimed
    assert counter(target_database) == before
    assert verbs(execution)[-1] == "execution.dispatch_failed"
    assert not {"execution.succeeded", "execution.failed"} & set(verbs(execution))


def test_an_approved_action_is_refused_and_nothing_runs(
    faults, make_user, target_database
):
    command = faults.command(WRITE)
    Command.objects.filter(pk=command.pk).update(requires_approval=True)
    command.refresh_from_db()
    rita = make_user("rita", "Responder")
    grant(rita, "run_actions", playbooks=[faults.playbook])
    abe = make_user("abe", "Commander")
    grant(abe, "approve_actions", playbooks=[faults.playbook])
    waiting = request_run(
        incident=faults.incident,
        command=command,
        params={},
        actor=Actor.person(rita),
        confirmation=confirm_word(command),
    ).execution
    assert waiting.state == "awaiting_approval"
    before = counter(target_database)
    with broker_down():
        decide_approval(execution=waiting, approve=True, actor=Actor.person(abe))
    waiting.refresh_from_db()
    assert waiting.state == "dispatch_failed"
    assert "Actions run only on a worker" in waiting.summary
    assert counter(target_database) == before
    assert verbs(waiting)[-2:] == ["execution.approved", "execution.dispatch_failed"]


def test_no_inline_slot_left_is_dispatch_failed_with_the_reason(faults, settings):
    settings.INLINE_PROBE_CONCURRENCY = 1
    assert inline.SLOTS.take(1)  # another inline probe is running in this process
    try:
        with broker_down():
            busy = faults.run(FAST_PROBE)
    finally:
        inline.SLOTS.give()
    busy.refresh_from_db()
    assert busy.state == "dispatch_failed"
    assert "1 probe already run inline" in busy.summary
    assert "INLINE_PROBE_CONCURRENCY=1" in busy.summary
    assert busy.started_at is None
    assert verbs(busy) == ["execution.requested", "execution.dispatch_failed"]


def test_inline_runs_turned_off_are_dispatch_failed_saying_so(faults, settings):
    settings.INLINE_PROBE_CONCURRENCY = 0
    with broker_down():
        execution = faults.run(FAST_PROBE)
    execution.refresh_from_db()
    assert execution.state == "dispatch_failed"
    assert "Inline runs are off (INLINE_PROBE_CONCURRENCY=0)" in execution.summary


def test_a_probe_that_overruns_the_inline_limit_is_timed_out(faults, settings):
    # The console's own EXECUTION_TIMEOUT is 15 s here: the probe stops at 1 s
    # only because its client timeouts are capped to the inline limit.
    assert django_settings.EXECUTION_TIMEOUT > 5
    settings.INLINE_PROBE_TIMEOUT = 1
    with broker_down():
        silent = faults.run(SILENT_PROBE)
    silent.refresh_from_db()
    assert silent.state == "timed_out"
    assert silent.summary.startswith(inline.INLINE_MARK)
    assert "no answer within 1 s" in silent.summary
    assert verbs(silent) == ["execution.requested", "execution.timed_out"]
    assert inline.SLOTS.taken == 0


def test_an_executor_that_ignores_its_deadline_is_cut_off_and_keeps_its_slot(
    faults, settings, monkeypatch
):
    """Every real executor keeps to its deadline; this stand-in does not (a
    driver that blocks past its timeout), to show the thread's deadline ends the
    run anyway, and that a probe still hanging keeps its slot."""
    settings.INLINE_PROBE_TIMEOUT = 0.2
    settings.INLINE_PROBE_CONCURRENCY = 1
    with hanging_probes(monkeypatch), broker_down():
        hung = faults.run(FAST_PROBE)
        hung.refresh_from_db()
        assert hung.state == "timed_out"
        assert "no answer within the inline limit of 0.2 s" in hung.summary
        assert inline.SLOTS.taken == 1  # the hung thread still holds it
        second = faults.run(SILENT_PROBE)
    second.refresh_from_db()
    assert second.state == "dispatch_failed"
    assert "already run inline" in second.summary
    assert inline.SLOTS.taken == 0  # given back when the thread ended
    hung.refresh_from_db()
    assert hung.state == "timed_out"  # the late end changed nothing
    assert verbs(hung) == ["execution.requested", "execution.timed_out"]


def broker_idle() -> None:
    """Wait until the worker has taken and acknowledged every message."""
    broker = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if not broker.llen("celery") + broker.hlen("unacked"):
            return
        time.sleep(0.05)
    raise AssertionError("the worker left messages in the broker")


@pytest.mark.usefixtures("worker")
def test_with_the_broker_back_probes_go_to_the_worker_and_nothing_runs_twice(
    faults,
):
    with broker_down():
        ran_inline = faults.run(FAST_PROBE)
    ran_inline.refresh_from_db()
    assert ran_inline.state == "succeeded"
    finished_at = ran_inline.finished_at
    # The message that might have got through after all, delivered late, and the
    # sweeper's pass over unclaimed runs: neither runs it again.
    current_app.send_task(runs.RUN_PROBE_TASK, args=[ran_inline.pk])
    with override_settings(STALE_QUEUED_AFTER=0):
        assert sweeper.sweep_unclaimed() == 0
    # The broker is back: the next probe goes to the worker, not inline.
    on_worker = wait_for(faults.run(FAST_PROBE))
    assert on_worker.state == "succeeded"
    assert on_worker.summary == "PING: PONG"
    assert on_worker.task_id  # sent as a message
    broker_idle()  # the late message for the inline run was taken too
    ran_inline.refresh_from_db()
    assert ran_inline.state == "succeeded"
    assert ran_inline.finished_at == finished_at
    assert verbs(ran_inline) == ["execution.requested", "execution.succeeded"]


def test_an_alerts_diagnosis_probe_runs_inline_as_the_diagnosis_identity(
    yomira, target_env, seeded_target
):
    """Diagnosis probes are read-only and re-checked as on the worker
    (may_run_unasked): with the queue down the responder still finds them run."""
    incident = open_incident(
        playbook=yomira.playbooks.get(number=6),  # Crawler Stuck Jobs: one SQL probe
        title="From an alert",
        actor=Actor.system("alert-intake"),
    )
    with broker_down():
        (run,) = run_diagnosis(incident=incident, actor=DIAGNOSIS).queued
    run.refresh_from_db()
    assert run.requested_as == "diagnosis"
    assert run.state == "succeeded", run.summary
    assert run.summary.startswith(inline.INLINE_MARK)
    assert verbs(run) == ["execution.requested", "execution.succeeded"]
    assert events(run)[-1].data["result"][inline.INLINE_KEY] is True


def test_an_inline_run_rechecks_who_asked_as_the_worker_does(faults, monkeypatch):
    send = runs.dispatch
    monkeypatch.setattr(runs, "dispatch", lambda *a, **k: None)  # held back
    execution = faults.run(FAST_PROBE)
    faults.user.groups.clear()  # revoked between the click and the run
    with broker_down():
        send(execution.pk, Command.Kind.PROBE)
    execution.refresh_from_db()
    assert execution.state == "failed"
    assert execution.summary == "Not run: the requester may no longer run this command."
    assert verbs(execution) == ["execution.requested", "permission.denied"]
    assert events(execution)[-1].data["result"][inline.INLINE_KEY] is True
    assert inline.SLOTS.taken == 0
    # A second failed send of the same run claims nothing and gives its slot back.
    with broker_down():
        send(execution.pk, Command.Kind.PROBE)
    assert verbs(execution) == ["execution.requested", "permission.denied"]
    assert inline.SLOTS.taken == 0


def test_a_probe_of_another_site_does_not_run_inline(faults, monkeypatch):
    """Only a site's own workers reach its targets (TARGET_SITE_*): the web
    process does not try them."""
    monkeypatch.setattr(runs, "dispatch", lambda *a, **k: None)  # held back
    execution = faults.run(FAST_PROBE)
    why = inline.run_instead(execution.pk, Command.Kind.PROBE, "site.b")
    assert "runs only on that site's workers (queue site.b)" in why
    execution.refresh_from_db()
    assert execution.state == "queued"  # not claimed: dispatch records why
    assert inline.SLOTS.taken == 0
