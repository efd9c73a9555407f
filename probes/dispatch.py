"""Send a queued execution to the workers, or record why it could not go."""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from incidents import audit
from incidents.models import Command, StepExecution

log = logging.getLogger(__name__)

# Fail within about a second when the broker is down, instead of kombu's own
# multi-second reconnect loop (measured: ~0.05 s to the OperationalError).
RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.1,
    "interval_max": 0.2,
}


def dispatch(execution_id: int, kind: str, task_id: str | None = None) -> None:
    """`task_id` names the message (the sweeper marks a re-sent probe by it)."""
    from .tasks import run_action, run_probe

    task = run_action if kind == Command.Kind.ACTION else run_probe
    try:
        sent = task.apply_async(
            args=[execution_id],
            task_id=task_id,
            retry=True,
            retry_policy=RETRY_POLICY,
        )
    except Exception as exc:  # noqa: BLE001 - kombu raises several kinds; all mean "not sent"
        log.warning("dispatch of execution %s failed: %s", execution_id, exc)
        _dispatch_failed(execution_id, exc)
        return
    StepExecution.objects.filter(pk=execution_id).update(task_id=sent.id or "")


def _dispatch_failed(execution_id: int, exc: Exception) -> None:
    summary = (
        "Not sent: the task queue is unreachable "
        f"({type(exc).__name__}). Nothing ran; press Run again once it is back."
    )
    with transaction.atomic():
        if StepExecution.objects.filter(
            pk=execution_id, state=StepExecution.State.QUEUED
        ).update(
            state=StepExecution.State.DISPATCH_FAILED,
            finished_at=timezone.now(),
            summary=summary,
        ):
            execution = StepExecution.objects.select_related("incident", "step").get(
                pk=execution_id
            )
            audit.append(
                "execution.dispatch_failed",
                actor_name="console",
                incident=execution.incident,
                obj=execution,
                data={
                    "step": execution.step.number if execution.step else None,
                    "summary": summary,
                },
            )
