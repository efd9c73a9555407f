"""What a run costs on its way (issue 14, item 6): the click's statements (the
message's id stored with the row, no write after the send, one read for the
double-click and in-flight checks) and the receivers of a run's end, which ask
the database nothing for an ordinary incident. Counted statements, never time.
(The worker's claim-and-load and the audit append without a savepoint are judged
in test_execution_units.py and test_audit_log.py, which mutation testing runs.)"""

from __future__ import annotations

from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from drills.models import Drill
from incidents import audit, events
from incidents.actors import Actor
from incidents.models import AuditEvent, Command, Incident, StepExecution
from incidents.services import execution as runner
from incidents.services import open_incident, request_run, runs
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
