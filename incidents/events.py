"""Audit events published once they are durable: a signal sent after the
transaction that appended the event commits, never for one rolled back."""

from __future__ import annotations

import logging

from django.db import transaction
from django.dispatch import Signal

from .models import AuditEvent

log = logging.getLogger(__name__)

# Sent with `event` (the AuditEvent, as appended) and `sender=AuditEvent`, once
# per event, after its transaction commits. Receivers (notifications) run after
# the change is final, so they never announce something that was undone; one that
# fails is logged and does not stop the others.
audit_event_committed = Signal()


def publish_on_commit(event: AuditEvent) -> None:
    """Called by audit.append inside the appending transaction."""
    transaction.on_commit(lambda: publish(event))


def publish(event: AuditEvent) -> None:
    for receiver, outcome in audit_event_committed.send_robust(
        sender=AuditEvent, event=event
    ):
        if isinstance(outcome, Exception):
            log.error(
                "%s failed on audit event %s (%s)",
                getattr(receiver, "__qualname__", receiver),
                event.seq,
                event.verb,
                exc_info=outcome,
            )
