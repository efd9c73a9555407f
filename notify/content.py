"""An incident as a message tells it (channels.base.Brief), read in two queries."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings

from incidents.models import Incident, StepExecution
from incidents.services.diagnosis import STARTED as DIAGNOSIS_STARTED

from .channels.base import Brief, DiagnosisLine
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


def brief(notification: Notification, *, with_diagnosis: bool = True) -> Brief:
    incident = notification.incident
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
    )
