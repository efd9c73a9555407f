"""The tamper-evident audit log.

Every row carries a sequence number and `mac = HMAC(AUDIT_HMAC_KEY, prev_mac + row)`,
so changing, removing or inserting a row breaks the chain from that row on. The key
comes from the environment, never the database. Appends are serialised (a PostgreSQL
advisory lock held until the caller's transaction commits) so the chain stays linear
under concurrency; database triggers refuse UPDATE, DELETE and TRUNCATE.

A chain cannot tell that rows were cut from its end (what is left still links), so
the head is anchored outside the table twice: every append writes its (seq, mac) to
the append-only `AuditCheckpoint` table in the same transaction, and, once it has
committed, logs `audit head seq=N mac=M` to the log stream (shipped off the
database's host). `verify` compares the chain's end with the newest checkpoint, and
`verify_audit --log FILE` with the newest head the log stream saw."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, models, transaction
from django.utils import timezone

from . import events, metrics
from .actors import Actor
from .models import AuditCheckpoint, AuditEvent, Incident, StepExecution

logger = logging.getLogger(__name__)
# The log stream's checkpoint line; `heads_in_log` reads it back.
HEAD_LINE = "audit head seq=%d mac=%s"
HEAD_PATTERN = re.compile(r"audit head seq=(\d+) mac=([0-9a-f]{64})")

GENESIS = "0" * 64
# Any constant works; it names the one lock that orders audit appends.
ADVISORY_LOCK_ID = 0x59_4F_4D_49_52_41  # "YOMIRA"

# The key, in an action's preview event and in the event of the run that preview
# confirmed, holding the preview's single-use nonce: what ties a run to exactly
# the blast radius its requester saw (the approvals page and the post-mortem).
PREVIEW_NONCE_KEY = "preview"
# The events that file a run (services.runs.request_run writes one of them, with
# the nonce of the preview that confirmed it).
RUN_REQUEST_VERBS = (
    "execution.requested",
    "execution.approval_requested",
    "execution.break_glass",
)
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


def append(
    verb: str,
    *,
    actor: Actor,
    incident: Incident | None = None,
    obj: models.Model | None = None,
    data: dict | None = None,
) -> AuditEvent:
    """Append one event: who (the actor's name, account and address), what, to
    what. Call it inside the transaction that makes the change, so the change and
    its record commit (or roll back) together; once that transaction commits, the
    event is published (incidents.events).

    Inside the caller's transaction no savepoint of its own (two round trips on
    every audited change): an append that fails dooms that whole transaction, so
    a change never commits without its record. What can fail without the
    database (no key, data that is not JSON) fails before any statement, leaving
    the caller's transaction as it was. Outside one, a transaction of its own,
    for the lock and the checkpoint."""
    _key()
    fields = _fields(verb, actor, incident, obj, data)
    # Timed inside the transaction: the lock's wait and the statements, not the
    # caller's commit (which is the caller's cost, and usually its own work).
    with (
        transaction.atomic(savepoint=False),
        metrics.AUDIT_APPEND_SECONDS.time(),
    ):
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ADVISORY_LOCK_ID])
            event = _append_locked(fields, incident)
        else:
            with _local_lock:
                event = _append_locked(fields, incident)
        events.publish_on_commit(event)
        return event


def _fields(verb, actor, incident, obj, data) -> dict[str, Any]:  # noqa: ANN001
    """The event's columns that do not depend on the log's head: worked out
    before the lock is taken, so it is held for the statements alone."""
    user = (
        actor.user if actor.user is not None and actor.user.is_authenticated else None
    )
    return {
        "actor_id": user.pk if user else None,
        "actor_name": actor.name[:150],
        "verb": verb,
        "incident_id": incident.pk if incident else None,
        "object_type": obj._meta.model_name if obj is not None else "",
        "object_id": str(obj.pk) if obj is not None else "",
        "data": _storable(json.loads(json.dumps(data or {}, default=str))),
        "ip": actor.ip or None,
    }


def _append_locked(fields: dict[str, Any], incident: Incident | None) -> AuditEvent:
    """The row after the head, under the append lock: its number, time and link
    come from the head as it is now."""
    last = _head()
    seq, prev_mac = (last[0] + 1, last[1]) if last else (1, GENESIS)
    fields = {
        "seq": seq,
        "created_at": timezone.now(),
        **fields,
        "prev_mac": prev_mac,
    }
    event = AuditEvent.objects.create(mac=compute_mac(**fields), **fields)
    if incident is not None:
        # The receivers of the event (incidents.events) ask about its incident;
        # the appender's copy spares each a query.
        event.incident = incident
    anchor(event.seq, event.mac, event.created_at)
    return event


# The newer of the two heads, in one round trip (two primary-key/unique-index
# look-ups). Normally they are the same row. After a cut tail the checkpoint is
# ahead: continuing from it keeps the console writing (an incident is no time for
# every audited action to fail) and leaves the gap for verify_audit to name. After
# a cut checkpoint table the log is ahead: continuing from it avoids reusing a seq.
HEAD_SQL = (
    "SELECT seq, mac FROM (SELECT seq, mac FROM incidents_auditevent "
    "ORDER BY seq DESC LIMIT 1) AS e UNION ALL "
    "SELECT seq, mac FROM (SELECT seq, mac FROM incidents_auditcheckpoint "
    "ORDER BY seq DESC LIMIT 1) AS c ORDER BY seq DESC LIMIT 1"
)


CHECKPOINT_SQL = (
    f"INSERT INTO {AuditCheckpoint._meta.db_table} (seq, mac, created_at) "
    "VALUES (%s, %s, %s)"
)


def _head() -> tuple[int, str] | None:
    with connection.cursor() as cursor:
        cursor.execute(HEAD_SQL)
        row = cursor.fetchone()
    return (row[0], row[1]) if row else None


def _storable(value: Any) -> Any:
    """PostgreSQL's jsonb refuses the NUL character (\\u0000): a hostile value
    quoted in an event (a path, a reason) would otherwise fail the append and, with
    it, the refusal being recorded. Replace it with U+FFFD, keys included."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, list):
        return [_storable(item) for item in value]
    if isinstance(value, dict):
        return {_storable(k): _storable(v) for k, v in value.items()}
    return value


def anchor(seq: int, mac: str, when: datetime | None = None) -> None:
    """Record (seq, mac) as the log's head: a checkpoint row in the caller's
    transaction (one primary-key INSERT, already under the append lock), and a log
    line once that transaction commits, so the stream never names a head that was
    rolled back. Anything that writes audit rows in bulk must call this after."""
    # Plain SQL: the ORM's model round (instance, signals, save) cost more than
    # the INSERT itself on this path, which every audited action takes.
    stamp = connection.ops.adapt_datetimefield_value(when or timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(CHECKPOINT_SQL, [seq, mac, stamp])
    transaction.on_commit(lambda: logger.info(HEAD_LINE, seq, mac))


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


@dataclass(frozen=True)
class Head:
    """Where something outside the audit table says the log ended."""

    seq: int
    mac: str
    source: str  # "checkpoint", "log stream": named in the verdict


def heads_in_log(lines: Iterable[str]) -> Head | None:
    """The newest head a log stream recorded (lines of any format that contain
    HEAD_LINE), or None when it has none."""
    best: Head | None = None
    for line in lines:
        for match in HEAD_PATTERN.finditer(line):
            seq = int(match.group(1))
            if best is None or seq > best.seq:
                best = Head(seq, match.group(2), "log stream")
    return best


def verify(*, heads: Iterable[Head] = ()) -> Verdict:
    """Recompute the chain, then check its end against the newest checkpoint and
    any `heads` given (from the log stream).

    The first bad row is the first whose number, link or MAC does not match: a
    changed row fails its MAC, a removed row leaves a gap, an inserted row breaks
    the numbering or the link of the row after it. A cut tail leaves a valid chain
    that ends before the checkpoint does."""
    checkpoint = (
        AuditCheckpoint.objects.order_by("-seq").values_list("seq", "mac").first()
    )
    anchors = [Head(*checkpoint, "checkpoint")] if checkpoint else []
    anchors += list(heads)
    verdict, last_seq, macs = _verify_chain({a.seq for a in anchors})
    if not verdict.ok:
        return verdict
    for head in anchors:
        if head.seq > last_seq:
            return Verdict(
                False,
                verdict.count,
                last_seq + 1,
                f"audit log ends at seq {last_seq} but {head.source} says "
                f"{head.seq}: rows {last_seq + 1}..{head.seq} are missing",
            )
        if not hmac.compare_digest(macs.get(head.seq, ""), head.mac):
            return Verdict(
                False,
                verdict.count,
                head.seq,
                f"row {head.seq} is not the row the {head.source} recorded "
                "(its MAC differs)",
            )
    # Every append checkpoints in its own transaction, so checkpoints that stop
    # short of the log mean the checkpoint table itself was cut.
    if last_seq and (checkpoint is None or checkpoint[0] < last_seq):
        ends = checkpoint[0] if checkpoint else 0
        return Verdict(
            False,
            verdict.count,
            ends + 1,
            f"checkpoints end at seq {ends} but the audit log at {last_seq}: "
            f"checkpoints {ends + 1}..{last_seq} are missing",
        )
    return verdict


def _verify_chain(watch: set[int]) -> tuple[Verdict, int, dict[int, str]]:
    """The chain check proper; also returns the last seq and the MACs of the rows
    in `watch` (the anchors' rows), collected on the one pass."""
    key = _key()
    expected_seq, prev_mac, count = 1, GENESIS, 0
    macs: dict[int, str] = {}
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
            missing = f"row {expected_seq} is missing (next is {seq})"
            return Verdict(False, count, expected_seq, missing), seq, macs
        if link != prev_mac:
            unlinked = f"row {seq} does not link to row {seq - 1}"
            return Verdict(False, count, seq, unlinked), seq, macs
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
            changed = f"row {seq} was changed (its MAC does not match)"
            return Verdict(False, count, seq, changed), seq, macs
        if seq in watch:
            macs[seq] = mac
        expected_seq, prev_mac, count = seq + 1, mac, count + 1
    return Verdict(True, count), expected_seq - 1, macs


def confirmed_previews(runs: Iterable[StepExecution]) -> dict[int, dict]:
    """Each run's confirmed preview, as its event recorded it (headline, facts,
    rows), in two queries whatever the number of runs: the run's own event names
    the preview's nonce, the preview's event holds what it found. A run whose
    preview was not recorded (a probe, an internal caller, an older run) has none."""
    by_pk = {str(run.pk): run for run in runs}
    if not by_pk:
        return {}
    filed = AuditEvent.objects.filter(
        verb__in=RUN_REQUEST_VERBS,
        object_type=StepExecution._meta.model_name,
        object_id__in=list(by_pk),
    ).values_list("object_id", "data")
    nonce_of = {
        int(object_id): data[PREVIEW_NONCE_KEY]
        for object_id, data in filed
        if isinstance(data, dict) and isinstance(data.get(PREVIEW_NONCE_KEY), str)
    }
    if not nonce_of:
        return {}
    previewed = AuditEvent.objects.filter(
        verb="execution.previewed",
        incident_id__in={run.incident_id for run in by_pk.values()},
        **{f"data__{PREVIEW_NONCE_KEY}__in": list(nonce_of.values())},
    ).values_list("incident_id", "data")
    by_nonce = {
        (incident_id, data[PREVIEW_NONCE_KEY]): data for incident_id, data in previewed
    }
    found = {}
    for pk, nonce in nonce_of.items():
        data = by_nonce.get((by_pk[str(pk)].incident_id, nonce))
        if data is not None:
            found[pk] = data
    return found
