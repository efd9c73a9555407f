"""Diagnosis that has already run: an alert-opened incident's Diagnosis probes are
queued once, as the console's "diagnosis" identity, within a per-minute budget; the
worker lets that identity run Diagnosis probes of the incident's own playbook and
nothing else."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied

from incidents import services
from incidents.actors import Actor
from incidents.models import AuditEvent, Command, Playbook, StepExecution
from incidents.services.execution import recheck

State = StepExecution.State
DIAGNOSIS = services.DIAGNOSIS
INTAKE = Actor.system("alert-intake")


@pytest.fixture
def targets(monkeypatch):
    monkeypatch.setenv("TARGET_DATABASE_URL", "postgres://app@127.0.0.1:1/yomira")
    monkeypatch.setenv("TARGET_REDIS_URL", "redis://127.0.0.1:1/0")


def opened(number: int) -> object:
    return services.open_incident(
        playbook=Playbook.objects.current().get(number=number),
        title="From an alert",
        actor=INTAKE,
    )


def test_the_probes_are_queued_once_as_the_diagnosis_identity(yomira, targets):
    incident = opened(6)  # Crawler Stuck Jobs: one SQL Diagnosis probe
    first = services.run_diagnosis(incident=incident, actor=DIAGNOSIS)
    assert [e.command.text.split()[0] for e in first.queued] == ["SELECT"]
    (run,) = first.queued
    assert (run.state, run.step, run.requested_by, run.requested_as) == (
        State.QUEUED,
        None,
        None,
        "diagnosis",
    )
    assert run.requester_name == "diagnosis"
    asked = AuditEvent.objects.get(verb="execution.requested", incident=incident)
    assert asked.actor_name == "diagnosis" and asked.data["diagnosis"] is True
    started = AuditEvent.objects.get(verb="diagnosis.started", incident=incident)
    assert started.data == {"probes": 1, "queued": 1, "skipped": []}
    assert (started.object_type, started.object_id) == ("incident", str(incident.pk))
    again = services.run_diagnosis(incident=incident, actor=DIAGNOSIS)
    assert again.already and not again.queued
    assert incident.executions.count() == 1


def test_a_probe_without_its_target_is_skipped_with_the_reason(yomira, monkeypatch):
    monkeypatch.delenv("TARGET_DATABASE_URL", raising=False)
    incident = opened(6)
    outcome = services.run_diagnosis(incident=incident, actor=DIAGNOSIS)
    assert not outcome.queued and not incident.executions.exists()
    ((text, why),) = outcome.skipped
    assert (
        text.startswith("SELECT") and why == "not configured: set TARGET_DATABASE_URL"
    )
    started = AuditEvent.objects.get(verb="diagnosis.started", incident=incident)
    assert started.data["skipped"] == [{"command": text[:200], "why": why}]
    assert started.data["queued"] == 0


def test_the_budget_holds_across_incidents(yomira, targets, settings):
    settings.DIAGNOSIS_PER_MINUTE = 2
    queued = []
    for _ in range(3):
        queued.append(
            len(services.run_diagnosis(incident=opened(6), actor=DIAGNOSIS).queued)
        )
    assert queued == [1, 1, 0]
    last = AuditEvent.objects.filter(verb="diagnosis.started").latest("seq")
    assert last.data["skipped"][0]["why"] == (
        "more than 2 Diagnosis probes were queued in the last minute "
        "(alert storm guard): press Run"
    )


@pytest.mark.parametrize(
    "actor", [INTAKE, Actor.system("sweeper")], ids=["intake", "sweeper"]
)
def test_only_the_diagnosis_identity_may_queue_it(yomira, targets, actor):
    incident = opened(6)
    with pytest.raises(PermissionDenied):
        services.run_diagnosis(incident=incident, actor=actor)
    denial = AuditEvent.objects.filter(verb="permission.denied").latest("seq")
    assert denial.actor_name == actor.name
    assert denial.incident_id == incident.pk
    assert denial.data["why"] == (
        "Diagnosis is queued only by the console's diagnosis identity"
    )
    assert not incident.executions.exists()


def test_not_even_a_responder_queues_it(yomira, targets, responder):
    with pytest.raises(PermissionDenied):
        services.run_diagnosis(incident=opened(6), actor=Actor.person(responder))


# --- the worker's re-check ------------------------------------------------------------


def forged(incident, command: Command, identity: str = "diagnosis") -> StepExecution:
    """A run as if the diagnosis identity had asked for it (what a bug or a hand
    in the database could leave): the worker must refuse all but its own."""
    return StepExecution.objects.create(
        incident=incident,
        step=command.step,
        command=command,
        state=State.QUEUED,
        requested_as=identity,
        command_text=command.text,
    )


def test_the_worker_runs_its_own_diagnosis_probe(yomira, targets):
    incident = opened(6)
    (run,) = services.run_diagnosis(incident=incident, actor=DIAGNOSIS).queued
    assert recheck(run) == ""


def test_the_worker_refuses_anything_else_asked_as_diagnosis(yomira, targets):
    incident = opened(5)  # DB pool: its steps hold probes and actions
    pool = incident.playbook
    step_probe = pool.commands.filter(kind="probe", step__isnull=False).first()
    action = pool.commands.filter(kind="action").first()
    other = Playbook.objects.current().get(number=6)
    elsewhere = other.commands.filter(kind="probe", step__isnull=True).first()
    said = "diagnosis may run only Diagnosis probes."
    assert recheck(forged(incident, step_probe)) == said
    assert recheck(forged(incident, action)) == said
    assert recheck(forged(incident, elsewhere)) == said
    own = opened(6)
    probe = own.playbook.commands.get(kind="probe", step__isnull=True)
    assert recheck(forged(own, probe, identity="alert-intake")) == (
        "alert-intake may run only Diagnosis probes."
    )
    assert recheck(forged(own, probe)) == ""


# --- the budget and the reasons, to their edges -------------------------------------


def test_the_budget_counts_only_the_last_minute(yomira, targets, settings, monkeypatch):
    from django.utils import timezone

    from incidents.services import diagnosis

    settings.DIAGNOSIS_PER_MINUTE = 1
    assert len(services.run_diagnosis(incident=opened(6), actor=DIAGNOSIS).queued) == 1
    assert not services.run_diagnosis(incident=opened(6), actor=DIAGNOSIS).queued
    later = timezone.now() + timezone.timedelta(seconds=61)
    monkeypatch.setattr(diagnosis.timezone, "now", lambda: later)
    assert len(services.run_diagnosis(incident=opened(6), actor=DIAGNOSIS).queued) == 1


def test_people_running_probes_do_not_spend_the_budget(
    yomira, targets, settings, commander
):
    settings.DIAGNOSIS_PER_MINUTE = 1
    incident = opened(6)
    probe = incident.playbook.commands.get(kind="probe", step__isnull=True)
    services.request_run(
        incident=incident, command=probe, params={}, actor=Actor.person(commander)
    )
    assert AuditEvent.objects.filter(verb="execution.requested").count() == 1
    assert len(services.run_diagnosis(incident=opened(6), actor=DIAGNOSIS).queued) == 1


def test_the_budget_is_taken_under_its_own_lock(yomira):
    """Concurrent diagnoses count one after the other: the budget's advisory lock
    is held by the transaction that counts."""
    from django.db import connection, transaction

    from incidents.services import diagnosis

    with transaction.atomic():
        diagnosis._take_budget(1)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                "AND pid = pg_backend_pid() AND classid = %s AND objid = %s",
                [diagnosis.BUDGET_LOCK_ID >> 32, diagnosis.BUDGET_LOCK_ID & 0xFFFFFFFF],
            )
            assert cursor.fetchone()[0] == 1
    assert diagnosis._take_budget(0) == 0


def test_the_reasons_name_every_parameter_and_target(monkeypatch):
    from incidents.services import diagnosis

    asks = Command(text="SELECT pg_cancel_backend($1, $2)", parameters=["pid", "why"])
    assert diagnosis._cannot_run(asks) == "needs pid, why, which only a person can give"
    monkeypatch.setattr(
        diagnosis, "missing_targets", lambda command: ["TARGET_A", "TARGET_B"]
    )
    plain = Command(text="SELECT 1", parameters=[])
    assert diagnosis._cannot_run(plain) == "not configured: set TARGET_A, TARGET_B"


# --- heavy reads (issue 13): never run without a person's confirmation --------------


def make_heavy(playbook: Playbook) -> Command:
    """The playbook's Diagnosis probe turned into a whole-table read, as the SQL
    family marks `SELECT * FROM crawler.job` (no WHERE, no LIMIT)."""
    probe = playbook.commands.get(kind="probe", step__isnull=True)
    probe.spec = {**probe.spec, "heavy": "reads the whole table crawler.job"}
    probe.save(update_fields=["spec"])
    return probe


def test_a_heavy_diagnosis_probe_is_skipped_with_the_reason(yomira, targets):
    incident = opened(6)
    make_heavy(incident.playbook)
    outcome = services.run_diagnosis(incident=incident, actor=DIAGNOSIS)
    assert not outcome.queued and not incident.executions.exists()
    ((text, why),) = outcome.skipped
    assert text.startswith("SELECT")
    assert why == (
        "a heavy read (reads the whole table crawler.job): a person confirms it and "
        "presses Run"
    )


def test_the_worker_refuses_a_heavy_probe_nobody_confirmed(yomira, targets):
    incident = opened(6)
    (run,) = services.run_diagnosis(incident=incident, actor=DIAGNOSIS).queued
    assert recheck(run) == ""
    # Rebound as heavy after it was queued (an admin's change): the worker's own
    # check refuses it, since no person confirmed the warning.
    make_heavy(incident.playbook)
    run.refresh_from_db()
    assert recheck(run) == "diagnosis may run only Diagnosis probes."


def test_a_heavy_probe_never_routes_an_alert(yomira):
    probe = make_heavy(Playbook.objects.current().get(number=6))
    with pytest.raises(ValueError, match="A heavy read .* never routes an alert"):
        services.probe_for_routing(command=probe, actor=Actor.system("alert-intake"))
