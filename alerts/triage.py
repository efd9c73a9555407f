"""The triage list: alerts no rule routed (or that several playbooks claim). A
responder picks the playbook, which opens the incident in one click, or dismisses
them with a reason."""

from __future__ import annotations

from django.db import transaction

from incidents import access, audit, services
from incidents.actors import Actor
from incidents.models import Incident, Playbook

from . import intake
from .models import Alert, AlertGroup


class TriageError(ValueError):
    """A pick or a dismissal that cannot happen, with the reason."""


def pick(*, group: AlertGroup, playbook: Playbook, actor: Actor) -> Incident:
    """Open the group's incident on the picked playbook (once: a second pick of a
    group already picked returns its incident)."""
    access.check(actor, access.OPEN_INCIDENTS)
    with transaction.atomic():
        group = AlertGroup.objects.select_for_update().get(pk=group.pk)
        if group.incident is not None and group.incident.is_active:
            return group.incident
        firing = list(
            group.alerts.filter(status=Alert.Status.FIRING).order_by("starts_at")
        )
        if not firing:
            raise TriageError("These alerts have all resolved: nothing to open.")
        if playbook.runbook.is_current is False:
            raise TriageError("Pick a playbook of the current runbook.")
        incident = intake.open_for(
            group,
            playbook,
            firing[0],
            actor,
            "triage",
            f"picked by {actor} in the triage list",
        )
        for alert in firing[: intake.EVENTS_PER_RECEIPT]:
            audit.append(
                "alert.firing",
                actor=actor,
                incident=incident,
                obj=incident,
                data=alert.timeline_data(group.source.name),
            )
        group.triaged_by = actor.user
        group.save()
    services.run_diagnosis(incident=incident, actor=services.DIAGNOSIS)
    return incident


def dismiss(*, group: AlertGroup, reason: str, actor: Actor) -> None:
    access.check(actor, access.OPEN_INCIDENTS)
    reason = reason.strip().replace("\x00", "")
    if not reason:
        raise TriageError("Say why these alerts need no incident.")
    with transaction.atomic():
        group = AlertGroup.objects.select_for_update().get(pk=group.pk)
        if group.triage != AlertGroup.Triage.WAITING:
            raise TriageError("These alerts are no longer waiting for triage.")
        group.triage = AlertGroup.Triage.DISMISSED
        group.triage_note = reason[:1000]
        group.triaged_by = actor.user
        group.save()
        audit.append(
            "alert.dismissed",
            actor=actor,
            obj=group,
            data={"source": group.source.name, "reason": reason[:1000]},
        )
