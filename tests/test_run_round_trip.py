"""What a run costs on its way (issue 14, item 6): the click's statements, the
worker's claim and load in one statement, no write after the send, the audit
append without a savepoint of its own, and the receivers of a run's end that ask
the database nothing for an ordinary incident. Counted statements, never time."""

from __future__ import annotations

import contextlib

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from drills.models import Drill
from incidents import audit, events
from incidents.actors import Actor
from incidents.models import AuditEvent, Command, Incident, Playbook, StepExecution
from incidents.services import execution as runner
from incidents.services import open_incident, request_run, runs
from incidents.services.diagnosis import DIAGNOSIS
from tests import test_execution_units, test_safety_matrix

State = StepExecution.State
# Their fixtures (the §4 and §5 incidents and people; the runs sent, collected)
# and their way of making a run.
world = test_safety_matrix.world
sent = test_execution_units.sent
a_run = test_execution_units.a_run


def sql_of(captured: CaptureQueriesContext) -> list[str]:
    return [query["sql"] for query in captured.captured_queries]


def test_a_click_stores_the_messages_id_with_the_row_and_sends_under_it(
    world, sent, django_capture_on_commit_callbacks
):
    with (
        django_capture_on_commit_callbacks(execute=True),
        CaptureQueriesContext(connection) as click,
    ):
        execution = request_run(
            incident=world.incident,
            command=world.ping,
            params={},
            actor=Actor.person(world.people["responder"]),
            request_key="k-1",
        ).execution
    execution.refresh_from_db()
    assert execution.task_id  # chosen before the INSERT, stored by it
    assert sent == [(execution.pk, Command.Kind.PROBE, execution.task_id)]
    statements = sql_of(click)
    # The double-click and in-flight checks in one read; the audit event without
    # a savepoint (the one there is the request's own transaction, inside the
    # test's); no UPDATE of the run (its task id went in with the INSERT).
    assert len([sql for sql in statements if sql.startswith("SAVEPOINT")]) == 1
    assert not any(
        sql.startswith('UPDATE "incidents_stepexecution"') for sql in statements
    )
    reads = [sql for sql in statements if 'FROM "incidents_stepexecution"' in sql]
    assert len(reads) == 1, reads


def test_the_one_read_still_finds_a_double_click_and_a_run_in_flight(world, sent):
    rita = Actor.person(world.people["responder"])
    cole = Actor.person(world.people["commander"])

    def click(actor: Actor, key: str) -> runs.RunResult:
        return request_run(
            incident=world.incident,
            command=world.ping,
            params={},
            actor=actor,
            request_key=key,
        )

    first = click(rita, "k-1")
    assert first.created
    # The same key from the same person: the same run.
    assert (click(rita, "k-1").execution, click(rita, "k-1").created) == (
        first.execution,
        False,
    )
    # Someone else pressing Run while it is in flight: that run, not a new one.
    assert click(cole, "k-9").execution == first.execution
    StepExecution.objects.filter(pk=first.execution.pk).update(state=State.SUCCEEDED)
    # Finished: the same key still finds it (a late double click) ...
    assert click(rita, "k-1").execution == first.execution
    # ... another person's same key does not, and nothing is in flight: a new run.
    second = click(cole, "k-1")
    assert second.created and second.execution != first.execution
    # No key at all: only the run in flight is found.
    assert click(rita, "").execution == second.execution


def test_a_send_that_fails_leaves_the_row_naming_no_message(world, monkeypatch):
    """The inline fallback (services/inline.py) then runs it or records why not;
    a row never names a message that did not leave."""
    execution = a_run(world, world.policy, State.QUEUED, task_id="t-chosen")

    def refuse(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise OSError("broker down")

    monkeypatch.setattr(runs.current_app, "send_task", refuse)
    runs.dispatch(execution.pk, Command.Kind.ACTION, "t-chosen")
    execution.refresh_from_db()
    assert execution.task_id == ""
    assert execution.state == State.DISPATCH_FAILED  # an action never runs inline


def test_the_claim_and_the_load_are_one_statement_and_give_what_the_run_needs(
    world, django_assert_num_queries
):
    run = a_run(world, world.ping, State.QUEUED, parameters={"a": "b"})
    with django_assert_num_queries(1):
        claimed = runner.claim_and_load(run.pk)
        # Everything the re-check and the result read, already there.
        assert claimed.command.playbook.pk == world.ping.playbook_id
        assert claimed.incident.pk == world.incident.pk
        assert claimed.incident.is_active
        assert claimed.step.number == world.ping.step.number
        assert claimed.requested_by.get_username() == "rita"
        assert claimed.parameters == {"a": "b"}  # JSON, as the ORM reads it
    assert (claimed.state, claimed.pk) == (State.RUNNING, run.pk)
    stored = StepExecution.objects.get(pk=run.pk)
    assert stored.state == State.RUNNING
    assert stored.started_at == claimed.started_at is not None
    # Every column as the ORM would read it.
    loaded = StepExecution.objects.select_related(
        "command__playbook", "incident", "step", "requested_by"
    ).get(pk=run.pk)
    for a, b in (
        (claimed, loaded),
        (claimed.command, loaded.command),
        (claimed.command.playbook, loaded.command.playbook),
        (claimed.incident, loaded.incident),
        (claimed.step, loaded.step),
        (claimed.requested_by, loaded.requested_by),
    ):
        for field in type(a)._meta.concrete_fields:
            assert getattr(a, field.attname) == getattr(b, field.attname), field
    # A second delivery claims nothing, reads nothing more.
    assert runner.claim_and_load(run.pk) is None


def test_a_run_without_step_or_requester_loads_them_as_none(world):
    diagnosis = Command.objects.filter(
        playbook__in=Playbook.objects.current(), step=None, kind=Command.Kind.PROBE
    ).first()
    assert diagnosis is not None, "the runbook has Diagnosis probes"
    incident = open_incident(
        playbook=diagnosis.playbook,
        title="alerted",
        actor=Actor.person(world.people["commander"]),
    )
    run = StepExecution.objects.create(
        incident=incident,
        command=diagnosis,
        state=State.QUEUED,
        requested_as=DIAGNOSIS.name,
    )
    claimed = runner.claim_and_load(run.pk)
    assert claimed.step is None and claimed.requested_by is None
    assert claimed.requested_as == DIAGNOSIS.name
    assert claimed.command == diagnosis and claimed.incident == incident


@pytest.mark.parametrize(
    "state", [State.AWAITING_APPROVAL, State.RUNNING, State.CANCELLED]
)
def test_only_a_queued_run_is_claimed(world, state):
    run = a_run(world, world.ping, state)
    assert runner.claim_and_load(run.pk) is None
    assert StepExecution.objects.get(pk=run.pk).state == state


def test_an_append_inside_a_transaction_takes_no_savepoint(db):
    with transaction.atomic(), CaptureQueriesContext(connection) as appended:
        audit.append("test.no-savepoint", actor=Actor.system("tester"))
    assert not any("SAVEPOINT" in sql for sql in sql_of(appended))
    # Outside one, a transaction of its own: the lock is held to its commit.
    assert audit.verify().ok


def test_a_change_never_commits_without_its_record(world, monkeypatch):
    """An append that fails inside the caller's transaction dooms it, even when
    the caller swallows the error: there is no savepoint to fall back to."""
    incident = world.incident
    before = incident.title

    def broken_anchor(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise IntegrityError("checkpoint refused")

    monkeypatch.setattr(audit, "anchor", broken_anchor)
    with transaction.atomic():
        Incident.objects.filter(pk=incident.pk).update(title="changed")
        with contextlib.suppress(IntegrityError):  # a caller that carries on
            audit.append("test.change", actor=Actor.system("tester"), incident=incident)
    assert Incident.objects.get(pk=incident.pk).title == before


def test_the_end_of_an_ordinary_run_costs_its_receivers_no_query(
    world, django_assert_num_queries
):
    """drills (a drill's health check), notify (pages and approvals) and the
    offline pages all hear every event; for a run of an ordinary incident none
    of them asks the database anything."""
    assert not world.incident.drill
    with transaction.atomic():
        event = audit.append(
            "execution.succeeded", actor=runner.WORKER, incident=world.incident
        )
    with django_assert_num_queries(0):
        events.publish(event)


def test_the_end_of_a_drills_run_still_asks_for_its_check(
    world, monkeypatch, make_user
):
    from drills import signals

    asked = []
    monkeypatch.setattr(signals, "ask_for_check", asked.append)
    drilled = open_incident(
        playbook=world.incident.playbook,
        title="drill",
        actor=Actor.person(world.people["commander"]),
    )
    Incident.objects.filter(pk=drilled.pk).update(drill=True)
    drilled.refresh_from_db()
    drill = Drill.objects.create(
        scenario="redis-down", title="Redis down", playbook_number=4, incident=drilled
    )
    with transaction.atomic():
        event = audit.append("execution.failed", actor=runner.WORKER, incident=drilled)
    events.publish(event)
    assert asked == [drill.pk]
    # And an event read back from the log (no incident attached) finds it too.
    events.publish(AuditEvent.objects.get(seq=event.seq))
    assert asked == [drill.pk, drill.pk]
