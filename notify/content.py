"""An incident as a message tells it (channels.base.Brief), read in two queries."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.urls import reverse

from incidents.models import Incident, StepExecution
from incidents.services import approvals
from incidents.services.diagnosis import STARTED as DIAGNOSIS_STARTED
from probes import redaction

from .channels.base import ApprovalNotice, Brief, DiagnosisLine
from .models import Notification


def absolute(path: str) -> str:
    return settings.CONSOLE_BASE_URL.rstrip("/") + path


def _first_line(run: StepExecution) -> str:
    # As run (secrets masked) when it ran; the runbook's text otherwise.
    text = run.command_text or (run.command.text if run.command else "")
    lines = text.strip().splitlines()
    return lines[0] if lines else "(command)"


def diagnosis(incident: Incident) -> list[DiagnosisLine]:
    """The latest run of each Diagnosis command (`step` is empty for those)."""
    latest: dict[int | None, StepExecution] = {}
    runs = StepExecution.objects.filter(incident=incident, step__isnull=True)
    for run in runs.select_related("command").order_by("created_at", "id"):
        latest[run.command_id] = run
    return [
        DiagnosisLine(
            command=_first_line(run),
            state=run.get_state_display().lower(),
            summary=run.summary,
        )
        for run in latest.values()
    ]


def diagnosis_pending(incident: Incident) -> bool:
    """Diagnosis results still to come: probes queued or running, or, for an
    incident an alert opened (no person did), its Diagnosis not started yet (the
    intake starts it just after the incident commits, so a fast worker can be
    first; once started, a playbook with nothing to run has nothing to wait for)."""
    runs = StepExecution.objects.filter(incident=incident, step__isnull=True)
    if runs.filter(state__in=StepExecution.IN_FLIGHT).exists():
        return True
    if incident.opened_by_id is not None or runs.exists():
        return False
    return not incident.events.filter(verb=DIAGNOSIS_STARTED).exists()


def approval_notice(execution: StepExecution) -> ApprovalNotice:
    """The request's facts for its message, read when it is sent (who may approve
    is who may approve then). Parameters and the preview pass the console's
    redaction again: nothing leaves the machine unmasked."""
    command = execution.command
    step = execution.step
    people = list(
        approvals.approvers(command.playbook, requester_id=execution.requested_by_id)
    )
    shown = approvals.previews_of([execution]).get(execution.pk)
    expires = execution.approval_expires_at
    return ApprovalNotice(
        request_id=execution.pk,
        where=f"step {step.number}: {step.title}" if step else "Diagnosis",
        command=command.text,
        parameters={
            name: redaction.redact(str(value))
            for name, value in (execution.parameters or {}).items()
        },
        requested_by=execution.requester_name,
        approvers=approvals.in_words([p.get_username() for p in people]),
        expires=f"{expires:%H:%M} UTC" if expires else "never",
        url=absolute(reverse("incidents:approval_queue")) + f"#approval-{execution.pk}",
        preview=redaction.redact(shown.headline) if shown else "",
        facts=[redaction.redact(f) for f in shown.facts] if shown else [],
        emails=sorted({p.email for p in people if p.email}),
    )


def brief(notification: Notification, *, with_diagnosis: bool = True) -> Brief:
    incident = notification.incident
    approval = None
    if notification.execution_id is not None:
        execution = StepExecution.objects.select_related(
            "command__playbook", "step", "requested_by"
        ).get(pk=notification.execution_id)
        approval = approval_notice(execution)
        with_diagnosis = False  # the request is the news, not the Diagnosis
    playbook = incident.playbook
    return Brief(
        incident_id=incident.pk,
        title=incident.title,
        url=absolute(incident.get_absolute_url()),
        severity=incident.severity,
        status=incident.get_status_display().lower(),
        playbook=f"§{playbook.number} {playbook.title}",
        event=notification.event,
        note=notification.note,
        dedup_key=notification.dedup_key,
        diagnosis=diagnosis(incident) if with_diagnosis else [],
        source=f"yomira-console ({urlsplit(settings.CONSOLE_BASE_URL).netloc})",
        approval=approval,
        drill=incident.drill,
    )


# What starts the text of every message a drill incident would have sent.
DRILL_MARK = "[DRILL]"
EVENT_WORDS = {
    "trigger": "opened",
    "acknowledge": "acknowledged",
    "resolve": "resolved",
    "escalate": "still not acknowledged",
    "approval": "approval needed",
}


def drill_text(brief: Brief) -> str:
    """One line saying what a drill's message would have told (the drill sink
    keeps it instead of sending it): marked first, so the notifications list
    and the timeline read as practice at a glance."""
    what = EVENT_WORDS.get(brief.event, brief.event)
    if brief.approval is not None:
        what += f" ({brief.approval.where})"
    line = f"{DRILL_MARK} {brief.label} {what}: {brief.playbook}"
    return " ".join(line.split())[:500]
