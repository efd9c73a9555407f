"""Re-escalation, run by Celery beat every minute: an incident still `open` N
minutes after it opened (N per severity, NOTIFY_ESCALATE_AFTER) is escalated on
its channels, level k at k times N minutes, each level once, up to
NOTIFY_ESCALATE_MAX_LEVEL. Also the sweep for notifications whose task was lost."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, IntegerField, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from incidents import audit
from incidents.models import AuditEvent, Incident

from . import services
from .models import Notification

State = Notification.State
log = logging.getLogger(__name__)


def thresholds() -> dict[str, int]:
    """Severity -> minutes, from NOTIFY_ESCALATE_AFTER ("critical=5,warning=15",
    or a dict). A severity not listed is never escalated; a pair that is not
    `name=minutes` is logged and skipped, so one typo does not stop the rest."""
    value = settings.NOTIFY_ESCALATE_AFTER
    pairs = (
        value.items()
        if isinstance(value, dict)
        else (
            pair.partition("=")[::2] for pair in str(value).split(",") if pair.strip()
        )
    )
    found = {}
    for severity, minutes in pairs:
        try:
            minutes = int(minutes)
        except (TypeError, ValueError):
            log.warning("NOTIFY_ESCALATE_AFTER: %r is not severity=minutes", severity)
            continue
        if minutes > 0:
            found[str(severity).strip().lower()] = minutes
    return found


def escalate_unacknowledged(now: datetime | None = None) -> int:
    """Escalate each open incident that is due; the number escalated."""
    now = now or timezone.now()
    after = thresholds()
    if not after:
        return 0
    reopens = AuditEvent.objects.filter(
        incident=OuterRef("pk"), verb="incident.reopened"
    )
    due = (
        Incident.objects.filter(
            status=Incident.Status.OPEN,
            severity__in=list(after),
            opened_at__lte=now - timedelta(minutes=min(after.values())),
        )
        .annotate(
            reopened_at=Subquery(reopens.order_by("-seq").values("created_at")[:1]),
            rounds=Coalesce(
                Subquery(
                    reopens.order_by()
                    .values("incident")
                    .annotate(n=Count("pk"))
                    .values("n")[:1],
                    output_field=IntegerField(),
                ),
                0,
            ),
        )
        .only("pk", "severity", "opened_at")
    )
    escalated = 0
    for incident in due:
        # A reopened incident's clock starts again at its reopening.
        start = max(incident.opened_at, incident.reopened_at or incident.opened_at)
        minutes = after[incident.severity]
        level = min(
            int((now - start) / timedelta(minutes=minutes)),
            settings.NOTIFY_ESCALATE_MAX_LEVEL,
        )
        if level >= 1:
            escalated += escalate(
                incident.pk, round_=incident.rounds, level=level, minutes=minutes
            )
    return escalated


def escalate(incident_id: int, *, round_: int, level: int, minutes: int) -> bool:
    """Escalate one incident to `level`, once: the incident's row lock orders two
    beats, and the audit log says whether this level already fired."""
    with transaction.atomic():
        incident = (
            Incident.objects.select_for_update(of=("self",))
            .select_related("playbook")
            .get(pk=incident_id)
        )
        fired = AuditEvent.objects.filter(
            incident=incident,
            verb="incident.escalated",
            data__round=round_,
            data__level=level,
        ).exists()
        if incident.status != Incident.Status.OPEN or fired:
            return False
        since = "it was reopened" if round_ else "it opened"
        queued = services.queue(
            incident=incident,
            event=Notification.Event.ESCALATE,
            round=round_,
            level=level,
            note=f"not acknowledged {level * minutes} minutes after {since} "
            f"(escalation level {level})",
        )
        audit.append(
            "incident.escalated",
            actor=services.NOTIFIER,
            incident=incident,
            obj=incident,
            data={
                "after_minutes": level * minutes,
                "level": level,
                "round": round_,
                "channels": [n.channel.name for n in queued],
            },
        )
    return True


def sweep_stale(now: datetime | None = None) -> int:
    """Rows whose message was lost (queued, not picked up for
    NOTIFY_STALE_AFTER seconds past when they were due) are handed to the workers
    again (the claim keeps a late original from sending twice); rows left
    `sending` by a worker that died are failed, never re-sent."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.NOTIFY_STALE_AFTER)
    lost = Notification.objects.filter(state=State.QUEUED, created_at__lt=stale).filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lt=stale)
    )
    resent = 0
    for pk in list(lost.values_list("pk", flat=True)[:100]):
        Notification.objects.filter(pk=pk).update(next_attempt_at=now)
        resent += services.dispatch(pk)
    stuck = Notification.objects.filter(
        state=State.SENDING, claimed_at__lt=stale
    ).select_related("channel", "incident")
    for notification in stuck[:100]:
        resent += services.fail_stuck(notification)
    return resent
