"""The incident's changes, as the audit log publishes them once committed
(incidents.events.audit_event_committed), turned into queued notifications. No
service calls notify: a change is told because it was recorded."""

from __future__ import annotations

from incidents.models import AuditEvent, Incident

from . import approvals, services
from .models import Notification

Event = Notification.Event
Status = Incident.Status


def event_for(verb: str, data: dict) -> tuple[str, str] | None:
    """(notification event, what happened) for an audit event, or None."""
    if verb == "incident.opened":
        return Event.TRIGGER, "opened"
    if verb == "incident.reopened":
        return Event.TRIGGER, "reopened"
    if verb != "incident.status_changed":
        return None
    to = data.get("to")
    if to == Status.ACKNOWLEDGED:
        return Event.ACKNOWLEDGE, "acknowledged"
    if to == Status.RESOLVED:
        return Event.RESOLVE, "resolved"
    # Straight from open to mitigated: someone is on it, so the page stops too.
    if to == Status.MITIGATED and data.get("from") == Status.OPEN:
        return Event.ACKNOWLEDGE, "mitigated"
    return None


def on_audit_event(sender: type, event: AuditEvent, **kwargs: object) -> None:
    if approvals.on_audit_event(event):
        return
    found = event_for(event.verb, event.data or {})
    if found is None or event.incident_id is None:
        return
    notification_event, happened = found
    incident = Incident.objects.select_related("playbook").get(pk=event.incident_id)
    if not incident.playbook.escalation:
        return
    # Which opening of the incident this belongs to: a reopened incident is
    # told again, as a new round (counted from the log, so a repeat is the same).
    round_ = AuditEvent.objects.filter(
        incident_id=incident.pk, verb="incident.reopened", seq__lte=event.seq
    ).count()
    services.queue(
        incident=incident,
        event=notification_event,
        round=round_,
        note=f"{happened} by {event.actor_name or 'someone not signed in'}",
    )
