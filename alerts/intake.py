"""What an alert source's webhook does: store the receipt (fast, in the request),
then, after the commit and in a worker, apply it to its group: new and resolved
alerts, the incident opened on the right playbook (or the triage list), flaps,
"source resolved", and the Diagnosis probes.

One open incident per group: a group's row is locked while a receipt is applied,
so concurrent receipts for one group queue, and the group's unique key makes two
first receipts agree on one row."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta

from celery import current_app
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from incidents import audit, services
from incidents.actors import Actor
from incidents.models import Incident, Playbook

from . import routing
from .models import (
    Alert,
    AlertGroup,
    AlertSource,
    PlaybookPolicy,
    Receipt,
    Route,
    digest,
)
from .payloads import Alert as AlertIn
from .payloads import Notification, PayloadError, parse

log = logging.getLogger(__name__)
INTAKE = Actor.system("alert-intake")
PROCESS_TASK = "alerts.tasks.process_receipt"
# Per receipt, at most this many alert events on the timeline; the rest are
# counted in one line (a storm must not bury the timeline).
EVENTS_PER_RECEIPT = 20


class CannotStore(Exception):
    """The console could not store the receipt: the sender should retry (503)."""


def receive(*, source: AlertSource, body: bytes, notification: Notification) -> Receipt:
    """Store a validated body as received; it is applied by the workers. One insert
    and nothing else in the request, so the sender hears back fast: the audit
    event is written when the receipt is applied (in the same transaction as what
    it changed). Outside a transaction the insert is its own commit (one round
    trip), and the drain is sent once it is durable."""
    fields = {
        "source": source,
        "body": body.decode(),
        "alert_count": len(notification.alerts),
    }
    try:
        if connection.in_atomic_block:  # a caller's transaction: a savepoint
            with transaction.atomic():
                receipt = Receipt.objects.create(**fields)
        elif connection.vendor == "postgresql":
            receipt = _insert_bare(fields)
        else:
            receipt = Receipt.objects.create(**fields)
    except Exception as exc:
        log.warning("alert receipt from %s not stored: %s", source.name, exc)
        raise CannotStore(str(exc)) from exc
    transaction.on_commit(lambda: enqueue(receipt.pk))
    return receipt


def _insert_bare(fields: dict) -> Receipt:
    """The receipt's INSERT on the bare psycopg connection, committed by itself
    (Django keeps it in autocommit outside a transaction): every webhook runs it,
    and the ORM's model machinery around one insert was a third of the request's
    time (measured with py-spy under wrk). A connection the database dropped
    fails this request with a 503 (the sender retries) and is replaced after it."""
    receipt = Receipt(**fields)
    table = Receipt._meta.db_table
    connection.ensure_connection()
    with connection.wrap_database_errors:
        row = connection.connection.execute(
            f"INSERT INTO {table} (source_id, received_at, body, state, error, "
            "alert_count, attempts, processed_at) "
            "VALUES (%s, %s, %s, %s, '', %s, 0, NULL) "
            "RETURNING id",
            [
                receipt.source_id,
                receipt.received_at,
                receipt.body,
                receipt.state,
                receipt.alert_count,
            ],
        ).fetchone()
    receipt.pk = row[0]
    receipt._state.adding = False
    return receipt


# Pending receipts are applied by a drain task, sent only when none is already
# waiting to start: under a burst the request costs an insert and a Redis SET
# instead of a Celery message each. The drain deletes this flag before it reads
# the pending receipts, so a receipt committed while the flag stood is read by
# that drain; the flag's expiry and the sweeper cover a lost message.
DRAIN_TASK = "alerts.tasks.drain_receipts"
DRAIN_FLAG = "yomira:alerts:drain-queued"
DRAIN_FLAG_SECONDS = 30
_flags: object = None


def _flag_client():  # noqa: ANN202
    """A Redis client on the broker, or None when the broker is not Redis."""
    global _flags
    if _flags is None:
        url = settings.CELERY_BROKER_URL
        if url.startswith(("redis://", "rediss://")):
            import redis

            _flags = redis.Redis.from_url(
                url, socket_timeout=0.5, socket_connect_timeout=0.5
            )
        else:
            _flags = False
    return _flags or None


def drain_flag_cleared() -> None:
    client = _flag_client()
    if client is not None:
        try:
            client.delete(DRAIN_FLAG)
        except Exception:  # noqa: BLE001 - the flag expires by itself
            log.warning("could not clear the alert drain flag")


def enqueue(receipt_id: int) -> None:
    """To the workers; if the broker is down, applied here and now (the receipt is
    stored either way, and the sweeper takes any that stay pending)."""
    client = _flag_client()
    if client is not None:
        try:
            if not client.set(DRAIN_FLAG, receipt_id, nx=True, ex=DRAIN_FLAG_SECONDS):
                return  # a drain is queued and has not started: it will read ours
        except Exception:  # noqa: BLE001 - no flag: send the drain anyway
            log.warning("alert drain flag unavailable; sending a drain")
    try:
        current_app.send_task(
            DRAIN_TASK,
            ignore_result=True,
            retry=True,
            retry_policy={"max_retries": 1, "interval_start": 0, "interval_step": 0.1},
        )
    except Exception as exc:  # noqa: BLE001 - kombu raises several kinds
        log.warning(
            "alert receipt %s applied inline: broker down (%s)", receipt_id, exc
        )
        drain_flag_cleared()
        process(receipt_id)


# A drain works this long, then hands the rest to a new drain task: well inside
# the task's soft time limit, which would otherwise cut a receipt in half.
DRAIN_SECONDS = 15.0


def drain() -> int:
    """Apply every pending receipt, oldest first, until none is left. One that
    fails (the database refusing it, say) does not stop the others."""
    drain_flag_cleared()
    deadline = time.monotonic() + DRAIN_SECONDS
    done, last = 0, 0
    while True:
        batch = list(
            Receipt.objects.filter(state=Receipt.State.PENDING, id__gt=last)
            .order_by("id")
            .values_list("id", flat=True)[:100]
        )
        if not batch:
            return done
        for receipt_id in batch:
            if time.monotonic() > deadline:
                enqueue(receipt_id)  # the rest, in a fresh task
                return done
            last = receipt_id
            try:
                process(receipt_id)
            except DatabaseError:
                continue  # left pending (process counted the attempt)
            done += 1


@dataclass
class Applied:
    """What one receipt changed, for the caller and the tests."""

    group: AlertGroup | None = None
    opened: Incident | None = None
    new_alerts: list[Alert] = field(default_factory=list)
    resolved_alerts: list[Alert] = field(default_factory=list)
    source_resolved: bool = False
    flapped: bool = False
    reopened: bool = False


def process(receipt_id: int) -> Applied:
    """Apply one stored receipt, once (a second delivery finds it processed)."""
    receipt = Receipt.objects.select_related("source").filter(pk=receipt_id).first()
    if receipt is None or receipt.state != Receipt.State.PENDING:
        return Applied()
    try:
        notification = parse(receipt.source.kind, receipt.body.encode())
    except PayloadError as exc:  # validated at the door; a format change since
        _not_applied(receipt, Receipt.State.INVALID, str(exc), None)
        return Applied()
    try:
        group = _group(receipt.source, notification)
        applied = _apply(receipt, group, notification)
    except SoftTimeLimitExceeded:
        raise  # cut short, rolled back: still pending, applied by the next drain
    except DatabaseError as exc:
        # Usually passing (the database restarting): left pending for the next
        # drain or the sweeper; one the database keeps refusing is failed after
        # RECEIPT_ATTEMPTS, so it cannot hold up the others for ever.
        log.warning("alert receipt %s not applied yet: %s", receipt_id, exc)
        _attempt_failed(receipt, exc, notification)
        raise
    except Exception as exc:
        # A bug, not a passing fault: recorded on the receipt (the admin shows it)
        # instead of failing again every sweep.
        log.exception("alert receipt %s could not be applied", receipt_id)
        _not_applied(
            receipt, Receipt.State.FAILED, f"{type(exc).__name__}: {exc}", notification
        )
        return Applied()
    if applied.opened is not None:
        try:
            services.run_diagnosis(incident=applied.opened, actor=services.DIAGNOSIS)
        except Exception:  # noqa: BLE001 - the incident is open; diagnosis is extra
            log.exception("diagnosis of incident %s failed", applied.opened.pk)
    return applied


# Attempts at a receipt the database refuses before it is marked failed.
RECEIPT_ATTEMPTS = 5


def _attempt_failed(
    receipt: Receipt, exc: Exception, notification: Notification
) -> None:
    try:
        Receipt.objects.filter(pk=receipt.pk).update(attempts=F("attempts") + 1)
        if Receipt.objects.filter(
            pk=receipt.pk, attempts__gte=RECEIPT_ATTEMPTS
        ).exists():
            _not_applied(
                receipt,
                Receipt.State.FAILED,
                f"refused by the database {RECEIPT_ATTEMPTS} times: "
                f"{type(exc).__name__}: {exc}",
                notification,
            )
    except DatabaseError:
        pass  # the database is down: the attempt is not counted, nothing lost


def _not_applied(
    receipt: Receipt, state: str, error: str, notification: Notification | None
) -> None:
    with transaction.atomic():
        if Receipt.objects.filter(pk=receipt.pk, state=Receipt.State.PENDING).update(
            state=state, error=error[:2000], processed_at=timezone.now()
        ):
            _received(receipt, notification, applied=False, error=error[:500])


def _group(source: AlertSource, notification: Notification) -> AlertGroup:
    key = digest(notification.group_key)
    for _ in range(3):
        found = AlertGroup.objects.filter(source=source, key_sha256=key).first()
        if found is not None:
            return found
        try:
            with transaction.atomic():
                return AlertGroup.objects.create(
                    source=source,
                    group_key=notification.group_key,
                    key_sha256=key,
                    receiver=notification.receiver[:200],
                    group_labels=notification.group_labels,
                    firing=False,
                )
        except IntegrityError:
            continue  # another worker created it first: read theirs
    return AlertGroup.objects.get(source=source, key_sha256=key)


def _apply(receipt: Receipt, group: AlertGroup, notification: Notification) -> Applied:
    applied = Applied()
    now = timezone.now()
    with transaction.atomic():
        group = AlertGroup.objects.select_for_update().get(pk=group.pk)
        if group.incident_id is not None:
            # The incident's row before the audit log's lock, in the order a
            # person's status change takes them (the reverse would deadlock).
            list(
                Incident.objects.select_for_update()
                .filter(pk=group.incident_id)
                .values_list("pk")
            )
        applied.group = group
        claimed = Receipt.objects.filter(
            pk=receipt.pk, state=Receipt.State.PENDING
        ).update(state=Receipt.State.PROCESSED, processed_at=now)
        if not claimed:
            return applied
        was_firing = group.firing
        for alert in notification.alerts:
            _apply_alert(receipt, group, alert, applied)
        firing = group.alerts.filter(status=Alert.Status.FIRING)
        firing_now = firing.exists()
        incident = group.incident
        if incident is not None:
            incident.refresh_from_db()

        if firing_now and applied.new_alerts:
            incident = _on_new_firing(group, incident, was_firing, applied, now)
        if incident is not None:
            _timeline(incident, receipt, notification, applied)
        if was_firing and not firing_now:
            _source_resolved(group, incident, applied, now)
        group.firing = firing_now
        if firing_now:
            group.resolved_at = None
        group.updated_at = now
        group.receiver = notification.receiver[:200]
        group.save()
        # Last: the audit log's lock is held from the first append to the
        # commit, so nothing slow (the routing probe) may come after one.
        _received(receipt, notification)
    return applied


def _received(
    receipt: Receipt, notification: Notification | None, **extra: object
) -> None:
    """The receipt's audit event: written when it is applied, in the same
    transaction, with when it arrived."""
    audit.append(
        "alert.received",
        actor=INTAKE,
        obj=receipt,
        data={
            "source": receipt.source.name,
            "received_at": receipt.received_at.isoformat(),
            "status": notification.status if notification else "",
            "alerts": receipt.alert_count,
            "truncated": notification.truncated if notification else 0,
            "group": notification.group_key[:200] if notification else "",
            **extra,
        },
    )


def _apply_alert(
    receipt: Receipt, group: AlertGroup, alert: AlertIn, applied: Applied
) -> None:
    row = Alert.objects.filter(
        group=group, fingerprint=alert.fingerprint, starts_at=alert.starts_at
    ).first()
    status = Alert.Status.FIRING if alert.firing else Alert.Status.RESOLVED
    if row is None:
        if alert.firing:
            # A new occurrence of a label set ends the older ones still open.
            Alert.objects.filter(
                group=group, fingerprint=alert.fingerprint, status=Alert.Status.FIRING
            ).update(status=Alert.Status.RESOLVED, ends_at=alert.starts_at)
        row = Alert.objects.create(
            group=group,
            fingerprint=alert.fingerprint,
            starts_at=alert.starts_at,
            ends_at=alert.ends_at,
            status=status,
            name=alert.name[:200],
            severity=alert.labels.get("severity", "")[:40],
            labels=alert.labels,
            annotations=alert.annotations,
            generator_url=alert.generator_url,
            last_receipt=receipt,
        )
        (applied.new_alerts if alert.firing else applied.resolved_alerts).append(row)
        return
    # A receipt older than the one that last changed this alert (a retry that
    # arrived late) changes nothing; nor does a late copy of a firing body after
    # the resolved one (an HA peer's, a retry): an occurrence that ended stays
    # ended, and a real re-fire comes with a new startsAt.
    if row.last_receipt_id is not None and row.last_receipt_id > receipt.pk:
        return
    if row.status == Alert.Status.RESOLVED and alert.firing:
        return
    changed = row.status != status
    row.status = status
    row.ends_at = alert.ends_at
    row.labels, row.annotations = alert.labels, alert.annotations
    row.last_seen = timezone.now()
    row.last_receipt = receipt
    row.save()
    if changed:
        (applied.new_alerts if alert.firing else applied.resolved_alerts).append(row)


def _on_new_firing(
    group: AlertGroup,
    incident: Incident | None,
    was_firing: bool,
    applied: Applied,
    now,  # noqa: ANN001
) -> Incident | None:
    window = timedelta(minutes=settings.ALERT_FLAP_WINDOW_MINUTES)
    recent = group.resolved_at is not None and now - group.resolved_at <= window
    if incident is not None and incident.is_active:
        if not was_firing and group.resolved_at is not None:
            group.flaps += 1
            applied.flapped = True
            _append(
                incident, "alert.flapped", {"flaps": group.flaps, "reopened": False}
            )
        return incident
    if incident is not None and (recent or was_firing):
        group.flaps += 1 if not was_firing else 0
        applied.flapped = applied.reopened = True
        services.change_status(
            incident=incident,
            to=Incident.Status.OPEN,
            actor=INTAKE,
            why="its alerts fired again"
            + (
                f" {int((now - group.resolved_at).total_seconds() // 60)} min after resolving"
                if group.resolved_at
                else ""
            ),
        )
        incident.refresh_from_db()
        _append(incident, "alert.flapped", {"flaps": group.flaps, "reopened": True})
        return incident
    if group.triage == AlertGroup.Triage.DISMISSED and was_firing:
        return None  # dismissed while still firing: repeats stay dismissed
    return _open(group, applied)


def _open(group: AlertGroup, applied: Applied) -> Incident | None:
    first = min(applied.new_alerts, key=lambda a: (a.starts_at, a.fingerprint))
    playbooks = list(Playbook.objects.current().select_related("runbook"))
    routes = list(Route.objects.filter(enabled=True))
    prober = _prober if settings.ALERT_ROUTING_PROBE else None
    routed = routing.route(_as_payload(first), playbooks, routes, prober)
    group.rule, group.reason = routed.rule, routed.reason
    group.candidates = [p.number for p in routed.candidates]
    if routed.playbook is None:
        group.playbook, group.incident = None, None
        group.triage = AlertGroup.Triage.WAITING
        audit.append(
            "alert.unrouted",
            actor=INTAKE,
            obj=group,
            data={
                "alert": first.name,
                "source": group.source.name,
                "rule": routed.rule,
                "reason": routed.reason,
                "candidates": group.candidates,
            },
        )
        return None
    incident = open_for(
        group, routed.playbook, first, INTAKE, routed.rule, routed.reason
    )
    applied.opened = incident
    return incident


def open_for(
    group: AlertGroup,
    playbook: Playbook,
    first: Alert,
    actor: Actor,
    rule: str,
    reason: str,
) -> Incident:
    """Open the group's incident on a playbook (routed, or picked in triage)."""
    incident = services.open_incident(
        playbook=playbook,
        title=incident_title(first),
        actor=actor,
        severity=severity_of(first.severity) or playbook.severity,
        origin={
            "source": group.source.name,
            "alert": first.name,
            "fingerprint": first.fingerprint,
            "rule": rule,
            "reason": reason[:500],
        },
        # The source decides, never the payload: a sender cannot make a real
        # alert a drill (or a drill real) by what it puts in a label.
        drill=group.source.drill,
    )
    group.incident, group.playbook = incident, playbook
    group.rule, group.reason = rule, reason
    if group.triage == AlertGroup.Triage.WAITING:
        group.triage = AlertGroup.Triage.PICKED
    return incident


# An alert's `severity` label in the console's words (the built-in aliases and an
# Admin's, shared with the runbook importer). A label no alias knows keeps the
# playbook's severity (the alert row keeps the label as sent): a severity nothing
# knows would show no badge and escalate on no timer.
def severity_of(label: str) -> str:
    return services.severity_level(label)


def incident_title(alert: Alert) -> str:
    summary = alert.annotations.get("summary") or alert.annotations.get("title")
    if summary:
        return f"{alert.name}: {summary}" if alert.name not in summary else summary
    where = ", ".join(f"{k}={v}" for k, v in alert.shown_labels())
    return f"{alert.name or 'Alert'}" + (f" ({where})" if where else "")


def _as_payload(row: Alert) -> AlertIn:
    return AlertIn(
        status=row.status,
        labels=row.labels,
        annotations=row.annotations,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        generator_url=row.generator_url,
        fingerprint=row.fingerprint,
    )


# The health probe's answer, per process, for this long: a storm of ambiguous
# groups asks the health check once, not once per group.
PROBE_ANSWER_SECONDS = 10.0
_probed: dict[int, tuple[float, tuple[bool, str]]] = {}


def _prober(command) -> tuple[bool, str]:  # noqa: ANN001
    now = time.monotonic()
    kept = _probed.get(command.pk)
    if kept is not None and now - kept[0] < PROBE_ANSWER_SECONDS:
        return kept[1]
    answer = services.probe_for_routing(command=command, actor=INTAKE)
    _probed[command.pk] = (time.monotonic(), answer)
    return answer


def _timeline(
    incident: Incident, receipt: Receipt, notification: Notification, applied: Applied
) -> None:
    changed = applied.new_alerts + applied.resolved_alerts
    for row in changed[:EVENTS_PER_RECEIPT]:
        verb = "alert.firing" if row.is_firing else "alert.resolved"
        _append(incident, verb, row.timeline_data(receipt.source.name))
    more = max(0, len(changed) - EVENTS_PER_RECEIPT)
    if more > 0 or notification.truncated:
        _append(
            incident,
            "alert.more",
            {"more": more, "truncated": notification.truncated},
        )


def _source_resolved(
    group: AlertGroup, incident: Incident | None, applied: Applied, now
) -> None:  # noqa: ANN001
    group.resolved_at = now
    applied.source_resolved = True
    if incident is None:
        return
    count = group.alerts.count()
    _append(
        incident,
        "alert.source_resolved",
        {"alerts": count, "source": group.source.name},
    )
    resolve = PlaybookPolicy.objects.filter(
        runbook_key=incident.playbook.runbook.key,
        playbook_slug=incident.playbook.slug,
        resolve_with_source=True,
    ).exists()
    if resolve and incident.is_active:
        services.change_status(
            incident=incident,
            to=Incident.Status.RESOLVED,
            actor=INTAKE,
            why="every alert of its group ended and its playbook resolves with its source",
        )


def _append(incident: Incident, verb: str, data: dict) -> None:
    audit.append(verb, actor=INTAKE, incident=incident, obj=incident, data=data)
