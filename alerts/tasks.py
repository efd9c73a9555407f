"""The workers' side of the intake: apply a stored receipt; take any a lost task
left pending."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from . import intake
from .models import Receipt


@shared_task(name=intake.PROCESS_TASK, ignore_result=True)
def process_receipt(receipt_id: int) -> None:
    intake.process(receipt_id)


@shared_task(name=intake.DRAIN_TASK, ignore_result=True)
def drain_receipts() -> int:
    return intake.drain()


@shared_task(name="alerts.tasks.process_stale_receipts", ignore_result=True)
def process_stale_receipts() -> int:
    """Receipts still pending well after they arrived: their message was lost (a
    broker restart) or their worker died. Processing is once-only per receipt."""
    due = timezone.now() - timedelta(seconds=settings.ALERT_RECEIPT_STALE_AFTER)
    stale = Receipt.objects.filter(
        state=Receipt.State.PENDING, received_at__lt=due
    ).order_by("id")
    count = 0
    for receipt_id in stale.values_list("id", flat=True)[:500]:
        try:
            intake.process(receipt_id)
        except DatabaseError:
            continue  # left pending, its attempt counted; the others go on
        count += 1
    return count
