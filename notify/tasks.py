"""Celery tasks: each takes a primary key (or nothing) and calls one function.

send_notification is acknowledged late (a lost worker's message comes back) and
retried with backoff by its own policy (services.record decides); the claim in
services.deliver makes any second delivery a no-op, so nothing is sent twice."""

from __future__ import annotations

from celery import shared_task

from . import escalation, services


@shared_task(
    bind=True,
    name=services.SEND_TASK,
    acks_late=True,
    ignore_result=True,
    max_retries=None,  # bounded by NOTIFY_MAX_ATTEMPTS on the row, not here
)
def send_notification(self, notification_id: int, waited: int = 0) -> str:  # noqa: ANN001
    outcome = services.deliver(notification_id, waited=waited)
    if outcome.wait is not None:
        raise self.retry(
            args=[notification_id],
            kwargs={"waited": waited + 1},
            countdown=outcome.wait,
        )
    if outcome.retry_in is not None:
        raise self.retry(
            args=[notification_id],
            kwargs={"waited": waited},
            countdown=outcome.retry_in,
        )
    return outcome.state


@shared_task(name="notify.tasks.escalate_unacknowledged", ignore_result=True)
def escalate_unacknowledged() -> int:
    escalation.sweep_stale()
    return escalation.escalate_unacknowledged()
