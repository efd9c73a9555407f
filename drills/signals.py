"""What the drills app hears from the incidents: a run of a drill's incident that
finished (or a simulated step) asks for a health check at once, instead of waiting
for the beat; a drill's incident resolved ends its healed drill."""

from __future__ import annotations

import logging

from celery import current_app
from django.dispatch import receiver

from incidents.events import audit_event_committed
from incidents.models import AuditEvent

from .models import Drill

log = logging.getLogger(__name__)
# A run's end, or a step done by hand in the drill: the stack may be healthy now.
CHECK_AFTER = frozenset(
    {
        "execution.succeeded",
        "execution.failed",
        "execution.timed_out",
        "drill.simulated",
    }
)


@receiver(audit_event_committed)
def after_incident_event(event: AuditEvent, **kwargs: object) -> None:
    if event.incident_id is None:
        return
    if event.verb not in CHECK_AFTER and event.verb != "incident.status_changed":
        return
    # Only a drill's incident has a drill (drills open theirs from a drill alert
    # source, and the flag is set once, when it is opened): every other run's end
    # costs no query here. The appender's incident comes with the event
    # (incidents.audit), so asking costs nothing either.
    if not event.incident.drill:
        return
    if event.verb in CHECK_AFTER:
        drill = (
            Drill.objects.running()
            .filter(incident_id=event.incident_id)
            .values_list("pk", flat=True)
            .first()
        )
        if drill is not None:
            ask_for_check(drill)
    elif event.verb == "incident.status_changed" and event.data.get("to") == "resolved":
        from . import services

        drill = Drill.objects.filter(incident_id=event.incident_id).first()
        if drill is not None:
            services.incident_resolved(drill.incident)


def ask_for_check(drill_id: int) -> None:
    """To the workers; a broker that refuses leaves it to the beat."""
    from .tasks import CHECK_DRILL_TASK

    try:
        current_app.send_task(
            CHECK_DRILL_TASK,
            args=[drill_id],
            ignore_result=True,
            retry=True,
            retry_policy={"max_retries": 1, "interval_start": 0, "interval_step": 0.1},
        )
    except Exception as exc:  # noqa: BLE001 - kombu raises several kinds
        log.warning(
            "drill %s: health check not sent (%s); the beat will", drill_id, exc
        )
