"""One-time request keys: a double submit of a creating form gets the first result."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection, transaction
from django.db.models import Q

from ..actors import Actor

# Serialises requests that carry the same one-time key (see `once`): the class
# half of PostgreSQL's two-key advisory lock, a key space apart from audit.append's.
REQUEST_KEY_LOCK_CLASS = 0x594B  # "YK"
_request_key_lock = threading.Lock()  # SQLite: one process, one writer at a time


@contextmanager
def once(scope: str, actor: Actor, request_key: str) -> Iterator[None]:
    """A transaction in which an actor's request carrying `request_key` is the only
    one with that key: the look-up for an earlier result and the write that records
    this one cannot interleave with a double submit's twin. PostgreSQL: an advisory
    lock held until commit. SQLite (`make run`): a process lock held until commit
    (its one process is the only writer)."""
    if not request_key:
        with transaction.atomic():
            yield
        return
    if connection.vendor == "postgresql":
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_advisory_xact_lock(%s, hashtext(%s))",
                    [REQUEST_KEY_LOCK_CLASS, f"{scope}:{actor.key}:{request_key}"],
                )
            yield
        return
    with _request_key_lock, transaction.atomic():
        yield


def by_actor(actor: Actor) -> Q:
    """Audit events this actor appended: a person's by their account, a system
    identity's by its name (it has no account)."""
    if actor.user is not None:
        return Q(actor_id=actor.user.pk)
    return Q(actor__isnull=True, actor_name=actor.name)
