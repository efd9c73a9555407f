"""The tamper-evident audit log.

Every row carries a sequence number and `mac = HMAC(AUDIT_HMAC_KEY, prev_mac + row)`,
so changing, removing or inserting a row breaks the chain from that row on. The key
comes from the environment, never the database. Appends are serialised (a PostgreSQL
advisory lock held until the caller's transaction commits) so the chain stays linear
under concurrency; database triggers refuse UPDATE, DELETE and TRUNCATE."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, models, transaction
from django.http import HttpRequest
from django.utils import timezone

from .models import AuditEvent, Incident

GENESIS = "0" * 64
# Any constant works; it names the one lock that orders audit appends.
ADVISORY_LOCK_ID = 0x59_4F_4D_49_52_41  # "YOMIRA"
_local_lock = threading.Lock()  # SQLite: one writer per process is all we get anyway


def _key() -> bytes:
    key = settings.AUDIT_HMAC_KEY
    if not key:
        raise ImproperlyConfigured(
            "AUDIT_HMAC_KEY is not set: the audit log cannot be signed."
        )
    return key.encode()


def canonical(
    *,
    seq: int,
    created_at: datetime,
    actor_id: int | None,
    actor_name: str,
    verb: str,
    incident_id: int | None,
    object_type: str,
    object_id: str,
    data: dict,
    ip: str | None,
    prev_mac: str,
) -> bytes:
    """The exact bytes the MAC covers: every column but the MAC itself."""
    stamp = created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    payload = [
        seq,
        stamp,
        actor_id,
        actor_name,
        verb,
        incident_id,
        object_type,
        object_id,
        data,
        ip,
        prev_mac,
    ]
    return json.dumps(
        payload, sort_keys=True, separators=(",", ":"), default=str
    ).encode()


def compute_mac(**fields: Any) -> str:
    return hmac.new(_key(), canonical(**fields), hashlib.sha256).hexdigest()


def client_ip(request: HttpRequest | None) -> str | None:
    return request.META.get("REMOTE_ADDR") if request is not None else None


def append(
    verb: str,
    *,
    actor: AbstractBaseUser | AnonymousUser | None = None,
    actor_name: str = "",
    incident: Incident | None = None,
    obj: models.Model | None = None,
    data: dict | None = None,
    request: HttpRequest | None = None,
) -> AuditEvent:
    """Append one event. Call it inside the transaction that makes the change, so
    the change and its record commit (or roll back) together."""
    user = actor if actor is not None and actor.is_authenticated else None
    name = actor_name or (user.get_username() if user else "")
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ADVISORY_LOCK_ID])
            return _append_locked(verb, user, name, incident, obj, data, request)
        with _local_lock:
            return _append_locked(verb, user, name, incident, obj, data, request)


def _append_locked(verb, user, name, incident, obj, data, request) -> AuditEvent:  # noqa: ANN001
    last = AuditEvent.objects.order_by("-seq").values_list("seq", "mac").first()
    seq, prev_mac = (last[0] + 1, last[1]) if last else (1, GENESIS)
    fields = {
        "seq": seq,
        "created_at": timezone.now(),
        "actor_id": user.pk if user else None,
        "actor_name": name[:150],
        "verb": verb,
        "incident_id": incident.pk if incident else None,
        "object_type": obj._meta.model_name if obj is not None else "",
        "object_id": str(obj.pk) if obj is not None else "",
        "data": json.loads(json.dumps(data or {}, default=str)),
        "ip": client_ip(request),
        "prev_mac": prev_mac,
    }
    return AuditEvent.objects.create(mac=compute_mac(**fields), **fields)


@dataclass
class Verdict:
    ok: bool
    count: int
    bad_seq: int | None = None
    reason: str = ""


def _rows() -> Iterator[tuple]:
    columns = (
        "seq",
        "created_at",
        "actor_id",
        "actor_name",
        "verb",
        "incident_id",
        "object_type",
        "object_id",
        "data",
        "ip",
        "prev_mac",
        "mac",
    )
    yield from (
        AuditEvent.objects.order_by("seq")
        .values_list(*columns)
        .iterator(chunk_size=5000)
    )


def verify() -> Verdict:
    """Recompute the chain. The first bad row is the first whose number, link or
    MAC does not match: a changed row fails its MAC, a removed row leaves a gap, an
    inserted row breaks the numbering or the link of the row after it."""
    key = _key()
    expected_seq, prev_mac, count = 1, GENESIS, 0
    for row in _rows():
        (
            seq,
            created_at,
            actor_id,
            actor_name,
            verb,
            incident_id,
            otype,
            oid,
            data,
            ip,
            link,
            mac,
        ) = row
        if seq != expected_seq:
            return Verdict(
                False,
                count,
                expected_seq,
                f"row {expected_seq} is missing (next is {seq})",
            )
        if link != prev_mac:
            return Verdict(
                False, count, seq, f"row {seq} does not link to row {seq - 1}"
            )
        payload = canonical(
            seq=seq,
            created_at=created_at,
            actor_id=actor_id,
            actor_name=actor_name,
            verb=verb,
            incident_id=incident_id,
            object_type=otype,
            object_id=oid,
            data=data,
            ip=ip,
            prev_mac=link,
        )
        if not hmac.compare_digest(
            hmac.new(key, payload, hashlib.sha256).hexdigest(), mac
        ):
            return Verdict(
                False, count, seq, f"row {seq} was changed (its MAC does not match)"
            )
        expected_seq, prev_mac, count = seq + 1, mac, count + 1
    return Verdict(True, count)
