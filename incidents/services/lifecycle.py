"""An incident's life: opening it, its status and its commander."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from .. import access, audit
from ..actors import Actor
from ..models import AuditEvent, Incident, Playbook
from .idempotency import by_actor, once

Status = Incident.Status

# The system identities that may open an incident (alerts open their own), and
# change its status (a flapping alert reopens it; a playbook set to resolve with
# its source resolves it).
OPENERS = frozenset({"alert-intake"})
STATUS_CHANGERS = frozenset({"alert-intake"})


def open_incident(
    *,
    playbook: Playbook,
    title: str,
    actor: Actor,
    request_key: str = "",
    severity: str = "",
    origin: dict | None = None,
    drill: bool = False,
) -> Incident:
    """Open an incident. With a `request_key` (the form's one-time key), a repeat
    by the same actor returns the incident the first submit opened. A person who
    opens it commands it when their role may command incidents (a responder who
    opens one leaves the command to a commander); one opened by a system identity
    has no commander yet.
    `severity` overrides the playbook's (an alert's own severity label);
    `origin` says where it came from (an alert: source, rule and reason), kept in
    the opening event. A `drill` incident is practice: fixed here, for its life
    (its notifications go to the drill sink, and every view of it says DRILL)."""
    access.check(actor, access.OPEN_INCIDENTS, systems=OPENERS)
    with once("incident", actor, request_key):
        if request_key:
            # The key lives in the opening event: the audit log is the record of
            # who opened what, and this needs no column of its own.
            first = (
                AuditEvent.objects.filter(
                    by_actor(actor),
                    verb="incident.opened",
                    data__request_key=request_key,
                )
                .values_list("incident_id", flat=True)
                .first()
            )
            if first is not None:
                return Incident.objects.get(pk=first)
        incident = Incident.objects.create(
            playbook=playbook,
            title=title.strip()[: Incident._meta.get_field("title").max_length],
            severity=severity or playbook.severity,
            opened_by=actor.user,
            commander=actor.user
            if access.can(actor.user, access.COMMAND_INCIDENTS)
            else None,
            drill=drill,
        )
        data = {
            "title": incident.title,
            "playbook": playbook.number,
            "playbook_title": playbook.title,
            "runbook_revision": playbook.runbook.revision,
            "severity": incident.severity,
            "drill": incident.drill,
        }
        if request_key:
            data["request_key"] = request_key
        if origin:
            data["origin"] = origin
        audit.append(
            "incident.opened", actor=actor, incident=incident, obj=incident, data=data
        )
        return incident


class TransitionError(ValueError):
    """A status change the incident's current status does not allow."""


STATUS_TIMESTAMPS = {
    Status.ACKNOWLEDGED: "acknowledged_at",
    Status.MITIGATED: "mitigated_at",
    Status.RESOLVED: "resolved_at",
}


def change_status(
    *, incident: Incident, to: str, actor: Actor, why: str = ""
) -> Incident:
    """Move the incident's status; `why` is kept in the event (a system's reason)."""
    access.check(
        actor, access.COMMAND_INCIDENTS, incident=incident, systems=STATUS_CHANGERS
    )
    with transaction.atomic():
        incident = Incident.objects.select_for_update().get(pk=incident.pk)
        if to not in incident.allowed_statuses():
            raise TransitionError(
                f"An incident that is {incident.status} cannot become {to}; it can "
                f"become {', '.join(incident.allowed_statuses()) or 'nothing else'}."
            )
        before, now = incident.status, timezone.now()
        incident.status = to
        if to == Status.OPEN:  # reopened: the later stages happen again
            incident.mitigated_at = incident.resolved_at = None
        else:
            here = Incident.ORDER.index(to)
            for status in Incident.ORDER[1 : here + 1]:
                field = STATUS_TIMESTAMPS[status]
                if getattr(incident, field) is None or status == to:
                    setattr(incident, field, now)
        incident.save()
        verb = "incident.reopened" if to == Status.OPEN else "incident.status_changed"
        audit.append(
            verb,
            actor=actor,
            incident=incident,
            obj=incident,
            data={"from": before, "to": to, **({"why": why} if why else {})},
        )
        return incident


def change_commander(
    *, incident: Incident, commander: AbstractBaseUser | None, actor: Actor
) -> Incident:
    access.check(actor, access.COMMAND_INCIDENTS, incident=incident)
    with transaction.atomic():
        incident = Incident.objects.select_for_update().get(pk=incident.pk)
        before = incident.commander.get_username() if incident.commander else None
        incident.commander = commander
        incident.save(update_fields=["commander"])
        audit.append(
            "incident.commander_changed",
            actor=actor,
            incident=incident,
            obj=incident,
            data={
                "from": before,
                "to": commander.get_username() if commander else None,
            },
        )
        return incident
