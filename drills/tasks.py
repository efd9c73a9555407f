"""Celery tasks: the health checks of running drills (the beat sends
`check_running_drills` every ~15 s; a finished run of a drill's incident sends
`check_drill` at once). Probes only: a redelivery is harmless, so acks late."""

from __future__ import annotations

from celery import shared_task

from . import services
from .models import Drill

CHECK_DRILL_TASK = "drills.tasks.check_drill"
CHECK_RUNNING_TASK = "drills.tasks.check_running_drills"


@shared_task(name=CHECK_DRILL_TASK, acks_late=True, ignore_result=True)
def check_drill(drill_id: int) -> bool | None:
    drill = Drill.objects.filter(pk=drill_id, state=Drill.State.RUNNING).first()
    if drill is None:
        return None
    return services.check_health(drill).healthy


@shared_task(name=CHECK_RUNNING_TASK, acks_late=True, ignore_result=True)
def check_running_drills() -> int:
    """Every running drill's health probes; how many healed."""
    if services.sandbox_refusal():
        return 0
    healed = 0
    for drill in Drill.objects.running().order_by("pk"):
        healed += services.check_health(drill).healed_now
    return healed
