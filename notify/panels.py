"""What notify adds to the console's pages: the notifications an incident sent (its
header), and the escalation names of a playbook that reach nobody (its header).
One query each."""

from __future__ import annotations

from django.db.models.functions import Lower
from django.template.loader import render_to_string
from django.utils.safestring import SafeString

from incidents import panels
from incidents.models import Incident, Playbook

from .models import Channel, Notification


@panels.panel(panels.INCIDENT_HEADER, order=20)
def notifications(incident: Incident) -> SafeString:
    sent = list(
        Notification.objects.filter(incident=incident)
        .select_related("channel")
        .only(
            "channel__name",
            "event",
            "state",
            "level",
            "created_at",
            "sent_at",
            "answer",
        )
        .order_by("created_at", "id")
    )
    if not sent:
        return SafeString("")
    return render_to_string(
        "notify/partials/incident_notifications.html", {"notifications": sent}
    )


@panels.panel(panels.PLAYBOOK_HEADER, order=20)
def unmapped_escalation(playbook: Playbook) -> SafeString:
    names = [str(name) for name in playbook.escalation or []]
    if not names:
        return SafeString("")
    enabled = dict(
        Channel.objects.annotate(key=Lower("name"))
        .filter(key__in=[name.lower() for name in names])
        .values_list("key", "enabled")
    )
    warnings = []
    for name in names:
        if name.lower() not in enabled:
            warnings.append(
                (
                    name,
                    "is not mapped to a notification channel: nobody will be told. "
                    "An admin can add one.",
                )
            )
        elif not enabled[name.lower()]:
            warnings.append(
                (name, "maps to a disabled notification channel: nobody will be told.")
            )
    if not warnings:
        return SafeString("")
    return render_to_string(
        "notify/partials/playbook_escalation.html", {"warnings": warnings}
    )
