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


def test_the_budget_holds_across_incidents(yomira, targets, settings):
    settings.DIAGNOSIS_PER_MINUTE = 2
    queued = []
    for _ in range(3):
        queued.append(
            len(services.run_diagnosis(incident=opened(6), actor=DIAGNOSIS).queued)
        )
    assert queued == [1, 1, 0]
    last = AuditEvent.objects.filter(verb="diagnosis.started").latest("seq")
    assert "alert storm guard" in last.data["skipped"][0]["why"]
    assert "more than 2 Diagnosis probes" in last.data["skipped"][0]["why"]


@pytest.mark.parametrize(
    "actor", [INTAKE, Actor.system("sweeper")], ids=["intake", "sweeper"]
)
def test_only_the_diagnosis_identity_may_queue_it(yomira, targets, actor):
    incident = opened(6)
    with pytest.raises(PermissionDenied):
        services.run_diagnosis(incident=incident, actor=actor)
    denial = AuditEvent.objects.filter(verb="permission.denied").latest("seq")
    assert denial.actor_name == actor.name
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
