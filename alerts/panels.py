"""The alerts an incident came from, in its header: firing or resolved, since
when, the source, flaps, and why it was routed to this playbook."""

from __future__ import annotations

from django.template.loader import render_to_string
from django.utils.safestring import SafeString

from incidents import panels
from incidents.models import Incident

from .models import Alert, AlertGroup

SHOWN = 8


@panels.panel(panels.INCIDENT_HEADER, order=10)
def incident_alerts(incident: Incident) -> SafeString:
    groups = list(AlertGroup.objects.filter(incident=incident).select_related("source"))
    if not groups:
        return SafeString("")
    alerts = Alert.objects.filter(group__in=groups).order_by("status", "-starts_at")
    by_group: dict[int, list[Alert]] = {}
    for alert in alerts:
        by_group.setdefault(alert.group_id, []).append(alert)
    for group in groups:
        rows = by_group.get(group.pk, [])
        group.shown, group.more = rows[:SHOWN], max(0, len(rows) - SHOWN)
    return render_to_string("alerts/partials/incident_alerts.html", {"groups": groups})
