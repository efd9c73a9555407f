"""Audit events are published after their transaction commits: once each, and
never for an append that was rolled back."""

from __future__ import annotations

import logging
import uuid

import pytest
from django.db import connection, transaction

from incidents import audit
from incidents.actors import Actor
from incidents.events import audit_event_committed
from incidents.models import AuditEvent

# Real commits: the test's own transaction would hold every on_commit back.
pytestmark = pytest.mark.django_db(transaction=True)

TESTER = Actor.system("tester")


@pytest.fixture
def published():
    """What receivers heard: the event's seq and verb, whether a transaction was
    still open, and whether the row was readable from outside it."""
    heard = []

    def receiver(sender, event, **kwargs):  # noqa: ANN001, ANN003
        heard.append(
            (
                event.seq,
                event.verb,
                connection.in_atomic_block,
                AuditEvent.objects.filter(seq=event.seq, verb=event.verb).exists(),
            )
        )

    audit_event_committed.connect(receiver, sender=AuditEvent)
    yield heard
    audit_event_committed.disconnect(receiver, sender=AuditEvent)


def unique(verb: str) -> str:
    # The audit table outlives transactional tests: verbs of this run only.
    return f"test.{verb}.{uuid.uuid4().hex[:8]}"


def test_an_event_rolled_back_is_never_published(published):
    verb = unique("rolled-back")
    with pytest.raises(RuntimeError), transaction.atomic():
        audit.append(verb, actor=TESTER)
        raise RuntimeError("the change failed")
    assert published == []
    assert not AuditEvent.objects.filter(verb=verb).exists()


def test_an_event_committed_is_published_once_after_the_commit(published):
    verb = unique("committed")
    with transaction.atomic():
        event = audit.append(verb, actor=TESTER)
        assert published == []  # not while the transaction is open
    assert published == [(event.seq, verb, False, True)]
    # Later transactions do not publish it again.
    with transaction.atomic():
        audit.append(unique("other"), actor=TESTER)
    assert [seq for seq, *_ in published].count(event.seq) == 1


def test_an_event_appended_outside_a_transaction_is_published_once(published):
    verb = unique("autocommit")
    event = audit.append(verb, actor=TESTER)
    assert published == [(event.seq, verb, False, True)]


def test_only_the_events_of_a_savepoint_that_survived_are_published(published):
    kept, undone = unique("kept"), unique("undone")
    with transaction.atomic():
        first = audit.append(kept, actor=TESTER)
        with pytest.raises(RuntimeError), transaction.atomic():
            audit.append(undone, actor=TESTER)
            raise RuntimeError("the inner change failed")
    assert published == [(first.seq, kept, False, True)]


def test_a_failing_receiver_neither_stops_the_others_nor_the_caller(published, caplog):
    def broken(sender, event, **kwargs):  # noqa: ANN001, ANN003
        raise RuntimeError("the notifier is down")

    audit_event_committed.connect(broken, sender=AuditEvent)
    try:
        verb = unique("robust")
        with caplog.at_level(logging.ERROR, logger="incidents.events"):
            event = audit.append(verb, actor=TESTER)
    finally:
        audit_event_committed.disconnect(broken, sender=AuditEvent)
    assert published == [(event.seq, verb, False, True)]
    assert f"failed on audit event {event.seq} ({verb})" in caplog.text
