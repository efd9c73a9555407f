"""Diagnosis that has already run: when an alert opens an incident, its playbook's
read-only Diagnosis probes are queued at once, as the console's own "diagnosis"
identity, so the responder finds the results on the page.

Only probes under Diagnosis (never an action, never a numbered step), once per
incident, and within a budget per minute across all incidents, so that an alert
storm cannot fan out into thousands of probes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from probes import redaction
from probes.commands import display_text, heavy_reason, missing_targets
from probes.commands import run as run_command
from probes.runtime import Result

from .. import access, audit
from ..actors import Actor
from ..models import AuditEvent, Command, Incident, StepExecution
from . import runs
from .execution import DIAGNOSERS, DIAGNOSIS, run_context

State = StepExecution.State
STARTED = "diagnosis.started"
# Serialises the per-minute budget across processes (PostgreSQL advisory lock).
BUDGET_LOCK_ID = 0x59_44_49_41_47  # "YDIAG"


@dataclass
class Diagnosis:
    queued: list[StepExecution] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (command, why)
    already: bool = False


def diagnosis_probes(incident: Incident) -> list[Command]:
    return list(
        incident.playbook.commands.filter(
            step__isnull=True, kind=Command.Kind.PROBE
        ).order_by("position")
    )


def run_diagnosis(*, incident: Incident, actor: Actor) -> Diagnosis:
    """Queue the incident's Diagnosis probes once. Probes needing a parameter or a
    target that is not configured are skipped with the reason on the timeline;
    past the per-minute budget, the rest are skipped with that reason."""
    if not actor.is_one_of(DIAGNOSERS):
        # Not even a person who may run probes: these runs carry the identity
        # that asked, and the worker lets only this one run unasked.
        access.refuse(
            actor,
            access.RUN_PROBES,
            incident,
            why="Diagnosis is queued only by the console's diagnosis identity",
        )
    outcome = Diagnosis()
    with transaction.atomic():
        incident = Incident.objects.select_for_update().get(pk=incident.pk)
        if AuditEvent.objects.filter(incident=incident, verb=STARTED).exists():
            outcome.already = True
            return outcome
        if not incident.is_active:
            return outcome
        probes = diagnosis_probes(incident)
        runnable = []
        for command in probes:
            why = _cannot_run(command)
            if why:
                outcome.skipped.append((command.text, why))
            else:
                runnable.append(command)
        allowed = _take_budget(len(runnable))
        for command in runnable[allowed:]:
            outcome.skipped.append(
                (
                    command.text,
                    f"more than {settings.DIAGNOSIS_PER_MINUTE} Diagnosis probes were "
                    "queued in the last minute (alert storm guard): press Run",
                )
            )
        audit.append(
            STARTED,
            actor=actor,
            incident=incident,
            obj=incident,
            data={
                "probes": len(probes),
                "queued": allowed,
                "skipped": [
                    {"command": text[:200], "why": why} for text, why in outcome.skipped
                ],
            },
        )
        for command in runnable[:allowed]:
            outcome.queued.append(_queue(incident, command, actor))
    return outcome


def _cannot_run(command: Command) -> str:
    if command.parameters:
        return f"needs {', '.join(command.parameters)}, which only a person can give"
    absent = missing_targets(command)
    if absent:
        return f"not configured: set {', '.join(absent)}"
    if heavy := heavy_reason(command):
        # A heavy read runs only when a person has seen the warning and confirmed.
        return f"a heavy read ({heavy}): a person confirms it and presses Run"
    return ""


def _take_budget(wanted: int) -> int:
    """How many of `wanted` probes this minute's budget still allows, counted from
    the audit log (the only record every process shares)."""
    if wanted == 0:
        return 0
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [BUDGET_LOCK_ID])
    since = timezone.now() - timedelta(minutes=1)
    spent = AuditEvent.objects.filter(
        verb="execution.requested",
        actor_name=DIAGNOSIS.name,
        created_at__gte=since,
    ).count()
    return max(0, min(wanted, settings.DIAGNOSIS_PER_MINUTE - spent))


def _queue(incident: Incident, command: Command, actor: Actor) -> StepExecution:
    execution = StepExecution.objects.create(
        incident=incident,
        step=None,
        command=command,
        state=State.QUEUED,
        requested_as=actor.name,
        parameters={},
        command_text=display_text(command, {}),
        fingerprint=command.fingerprint({}),
    )
    audit.append(
        "execution.requested",
        actor=actor,
        incident=incident,
        obj=execution,
        data={
            "step": None,
            "command": execution.command_text[:300],
            "kind": command.kind,
            "executor": command.executor,
            "parameters": [],
            "diagnosis": True,
        },
    )
    transaction.on_commit(lambda: runs.dispatch(execution.pk, command.kind))
    return execution


# The identities that may run a read-only probe outside an incident, to decide
# which playbook an alert belongs to (and nothing else).
ROUTERS = frozenset({"alert-intake"})


def probe_for_routing(*, command: Command, actor: Actor) -> tuple[bool, str]:
    """Run one read-only probe that takes no parameter, now, in this process, and
    return (ok, redacted output) for routing an alert (one alert name, several
    playbooks: the health check says which part is down). Audited like a run."""
    access.check(actor, access.RUN_PROBES, systems=ROUTERS)
    if command.kind != Command.Kind.PROBE or command.parameters:
        raise ValueError("Only a probe that needs no parameter can route an alert.")
    if heavy_reason(command):
        raise ValueError(
            f"A heavy read ({heavy_reason(command)}) never routes an alert."
        )
    try:
        result = run_command(command, {}, run_context())
    except Exception as exc:  # noqa: BLE001 - a failed probe routes nothing
        result = Result(False, f"{type(exc).__name__}: {exc}")
    summary = redaction.redact(result.summary)[:500]
    output = redaction.redact(result.output)[:4096]
    audit.append(
        "alert.routing_probe",
        actor=actor,
        obj=command,
        data={
            "command": display_text(command, {})[:300],
            "playbook": command.playbook.number,
            "ok": result.ok,
            "summary": summary,
        },
    )
    return result.ok, f"{summary}\n{output}"
