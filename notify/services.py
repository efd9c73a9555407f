"""Notifications, from a row to a message: queueing the rows for a playbook's
escalation names, handing them to the workers after commit, and the worker's
part (claim, send, record). Every send, failure and suppression is an audit event
on the incident's timeline; the channel's secret is in none of them."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from urllib.parse import urlsplit

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.db.models.functions import Lower
from django.utils import timezone

from incidents import audit
from incidents.actors import Actor
from incidents.models import Incident, StepExecution
from probes import redaction

from . import content
from .channels import kind
from .channels.base import Answer, NotConfigured
from .models import Channel, Notification

log = logging.getLogger(__name__)

NOTIFIER = Actor.system("notifier")
SEND_TASK = "notify.tasks.send_notification"
# A dead broker must not hold up the request that opened the incident: one quick
# retry, then the row stays queued for the beat's sweep (escalation.sweep_stale).
RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.1,
    "interval_max": 0.2,
}
# How many times a first message waits for Diagnosis probes still running.
DIAGNOSIS_WAITS = 2
State = Notification.State


@dataclass(frozen=True)
class Outcome:
    """What a delivery did: the row's state after it ("duplicate" when another
    delivery had it), and whether to run again after `retry_in` seconds (a send
    that may succeed later) or `wait` seconds (Diagnosis still running)."""

    state: str
    retry_in: float | None = None
    wait: float | None = None


# --- queueing (the web process, after the incident's change committed) -------------


def channels_for(names: list[str]) -> tuple[list[Channel], list[str]]:
    """The channels the runbook's escalation names map to (case-insensitive), and
    the names that map to none."""
    lowered = {str(name).lower() for name in names}
    found = list(Channel.objects.annotate(key=Lower("name")).filter(key__in=lowered))
    mapped = {channel.key for channel in found}
    return found, [name for name in names if str(name).lower() not in mapped]


def queue(
    *,
    incident: Incident,
    event: str,
    round: int = 0,
    level: int = 0,
    note: str = "",
) -> list[Notification]:
    """One queued row per channel of the playbook's escalation whose kind tells
    about `event`; a row that exists already (the same incident, channel, event,
    round and level) is not made again. The new rows go to the workers once the
    transaction commits. On a trigger, each name that maps to no channel is
    recorded: nobody was told through it."""
    channels, unmapped = channels_for(incident.playbook.escalation)
    created = []
    with transaction.atomic():
        for channel in channels:
            if event not in kind(channel.kind).events:
                continue
            notification, new = Notification.objects.get_or_create(
                incident=incident,
                channel=channel,
                event=event,
                round=round,
                level=level,
                defaults={
                    "note": note[:200],
                    "dedup_key": Notification.dedup_key_for(incident.pk),
                },
            )
            if new:
                created.append(notification)
                transaction.on_commit(partial(dispatch, notification.pk))
        if event == Notification.Event.TRIGGER:
            for name in unmapped:
                audit.append(
                    "notification.suppressed",
                    actor=NOTIFIER,
                    incident=incident,
                    data={
                        "channel": name,
                        "event": event,
                        "why": "no notification channel has this name",
                    },
                )
    return created


def dispatch(notification_id: int, countdown: float | None = None) -> bool:
    """Hand a queued row to the workers. A broker that is down leaves it queued
    (the beat sends it again), never an error for the person who acted."""
    try:
        # By name through the app's registry: no import of tasks (which imports
        # this module), and eager mode in tests applies it like a worker would.
        current_app.tasks[SEND_TASK].apply_async(
            args=[notification_id],
            countdown=countdown,
            retry=True,
            retry_policy=RETRY_POLICY,
        )
    except Exception:  # noqa: BLE001 - kombu raises several kinds; all mean "not sent"
        log.exception("notification %s not handed to the workers", notification_id)
        return False
    return True


# --- delivering (the worker) ------------------------------------------------------


def deliver(notification_id: int, *, waited: int = 0) -> Outcome:
    """Send one notification at most once: a drill incident's goes to the drill
    sink; suppressed when sending is off or the channel disabled; otherwise
    claimed (queued -> sending, one conditional UPDATE: a duplicate delivery
    finds nothing to claim), sent, and recorded."""
    notification = (
        Notification.objects.select_related("channel", "incident__playbook")
        .filter(pk=notification_id)
        .first()
    )
    if notification is None or notification.state != State.QUEUED:
        return Outcome("duplicate")
    channel = notification.channel
    # First, before any setting or channel is looked at: a drill's message never
    # leaves the console, whatever NOTIFY_SEND says.
    if notification.incident.drill:
        return to_drill_sink(notification)
    if not settings.NOTIFY_SEND:
        return suppress(notification, "NOTIFY_SEND is off: nothing leaves the console")
    if not channel.enabled:
        return suppress(notification, "the channel is disabled")
    decided = no_longer_waiting(notification)
    if decided:
        return suppress(notification, decided)
    wait = diagnosis_wait(notification, waited)
    if wait is not None:
        return Outcome(State.QUEUED, wait=wait)
    if not claim(notification_id):
        return Outcome("duplicate")
    attempt = notification.attempts + 1
    secret = ""
    try:
        secret = secret_for(channel)
        message = content.brief(notification)
        answer = kind(channel.kind).send(message, channel, secret)
    except NotConfigured as exc:
        answer = Answer(None, str(exc))
    except Exception as exc:  # noqa: BLE001 - a failure is a result, never a crash
        # No traceback: a message about a malformed webhook URL quotes the URL.
        answer = Answer(None, f"{type(exc).__name__}: {exc}")
        log.error(
            "notification %s: %s failed: %s",
            notification_id,
            channel.kind,
            mask(answer.text, secret),
        )
    return record(notification, attempt, answer, secret)


def no_longer_waiting(notification: Notification) -> str:
    """Why an approval notice should not go out any more ("" if it should): the
    request was decided, expired or cancelled before a worker got to it."""
    if notification.execution_id is None:
        return ""
    state = (
        StepExecution.objects.filter(pk=notification.execution_id)
        .values_list("state", flat=True)
        .first()
    )
    if state == StepExecution.State.AWAITING_APPROVAL:
        return ""
    label = StepExecution.State(state).label.lower() if state else "gone"
    return f"the request is no longer waiting for approval (it is {label})"


def claim(notification_id: int) -> bool:
    return (
        Notification.objects.filter(pk=notification_id, state=State.QUEUED).update(
            state=State.SENDING,
            attempts=F("attempts") + 1,
            claimed_at=timezone.now(),
        )
        == 1
    )


def secret_for(channel: Channel) -> str:
    """The channel's secret from the environment, or why it cannot be had."""
    if not channel.needs_secret:
        return ""
    problem = channel.secret_problem()
    if problem:
        raise NotConfigured(problem)
    value = channel.secret()
    if not value:
        what = "webhook URL" if channel.kind == Channel.Kind.SLACK else "routing key"
        raise NotConfigured(
            f"Set {channel.secret_env} (the {what} of the channel '{channel.name}') "
            "in the environment of the console and its workers: it is not set."
        )
    return value


def diagnosis_wait(notification: Notification, waited: int) -> float | None:
    """Seconds to wait before a first message that carries the Diagnosis results
    while they are still to come (content.diagnosis_pending); None to send now.
    At most DIAGNOSIS_WAITS waits, never past NOTIFY_DIAGNOSIS_WAIT_SECONDS after
    the row was made: then it goes with whatever is there."""
    waits = kind(notification.channel.kind).waits_for_diagnosis
    budget = settings.NOTIFY_DIAGNOSIS_WAIT_SECONDS
    if notification.event not in waits or waited >= DIAGNOSIS_WAITS or budget <= 0:
        return None
    left = budget - (timezone.now() - notification.created_at).total_seconds()
    if left <= 0 or not content.diagnosis_pending(notification.incident):
        return None
    return min(left, budget / DIAGNOSIS_WAITS)


def mask(text: str, secret: str) -> str:
    """The answer as it may be stored: the console's redaction, and this channel's
    secret in every encoding a server might echo it in (for a webhook URL, its
    path too: that is where Slack's token is)."""
    secrets = [secret]
    if "://" in secret:
        try:
            secrets.append(urlsplit(secret).path)
        except ValueError:
            # A URL urlsplit refuses (`http://[host/...`): its path all the same,
            # or masking the send's own error would raise that error again.
            secrets.append("/" + secret.split("://", 1)[1].partition("/")[2])
    for value in secrets:
        if len(value) < 8:
            continue
        for form in sorted(redaction.encoded_forms(value), key=len, reverse=True):
            text = text.replace(form, redaction.MASK)
    return redaction.redact(text)


def backoff(attempt: int, retry_after: float | None) -> float:
    """Seconds before the next attempt: what the server asked for (Retry-After),
    or exponential from NOTIFY_RETRY_BASE_SECONDS; never more than
    NOTIFY_RETRY_MAX_SECONDS."""
    wanted = (
        retry_after
        if retry_after is not None
        else settings.NOTIFY_RETRY_BASE_SECONDS * 2 ** (attempt - 1)
    )
    return float(min(wanted, settings.NOTIFY_RETRY_MAX_SECONDS))


def _about(notification: Notification) -> dict[str, str]:
    """What every notification event on the timeline names."""
    return {
        "channel": notification.channel.name,
        "kind": notification.channel.kind,
        "event": notification.event,
    }


def record(
    notification: Notification, attempt: int, answer: Answer, secret: str
) -> Outcome:
    """The claimed row's outcome and its audit event, in one transaction."""
    text = mask(answer.text, secret)[: settings.NOTIFY_ANSWER_MAX]
    now = timezone.now()
    data = {
        **_about(notification),
        "status_code": answer.status,
        "attempt": attempt,
    }
    if notification.level:
        data["level"] = notification.level
    fields = {"status_code": answer.status, "answer": text, "claimed_at": None}
    retry_in = None
    if answer.ok:
        verb, fields["state"], fields["sent_at"] = "notification.sent", State.SENT, now
    else:
        will_retry = answer.retry and attempt < settings.NOTIFY_MAX_ATTEMPTS
        verb, fields["state"] = "notification.failed", State.FAILED
        data.update(error=text[:500], will_retry=will_retry)
        if will_retry:
            retry_in = backoff(attempt, answer.retry_after)
            data["retry_in"] = retry_in
            fields["state"] = State.QUEUED
            fields["next_attempt_at"] = now + timedelta(seconds=retry_in)
    with transaction.atomic():
        Notification.objects.filter(pk=notification.pk, state=State.SENDING).update(
            **fields
        )
        audit.append(
            verb,
            actor=NOTIFIER,
            incident=notification.incident,
            obj=notification,
            data=data,
        )
    return Outcome(fields["state"], retry_in=retry_in)


def suppress(notification: Notification, why: str) -> Outcome:
    """Recorded, not sent: nothing leaves the machine."""
    return _record_unsent(
        notification, State.SUPPRESSED, "notification.suppressed", why, {"why": why}
    )


def to_drill_sink(notification: Notification) -> Outcome:
    """A drill incident's notification: recorded with what it would have said
    (marked [DRILL]), state `drill`, and on the timeline; no channel is called."""
    text = content.drill_text(content.brief(notification, with_diagnosis=False))
    return _record_unsent(
        notification, State.DRILL, "notification.drill", text, {"text": text}
    )


def _record_unsent(
    notification: Notification, state: str, verb: str, answer: str, data: dict
) -> Outcome:
    """A queued notification ends unsent (at most once) and says so on the timeline."""
    with transaction.atomic():
        if not Notification.objects.filter(
            pk=notification.pk, state=State.QUEUED
        ).update(state=state, answer=answer):
            return Outcome("duplicate")
        audit.append(
            verb,
            actor=NOTIFIER,
            incident=notification.incident,
            obj=notification,
            data={**_about(notification), **data},
        )
    return Outcome(state)


def fail_stuck(notification: Notification) -> bool:
    """A row left `sending` by a worker that died mid-send: it may have arrived,
    so it is never sent again; the timeline says so."""
    why = (
        "The worker stopped while sending: it may or may not have arrived. "
        "Not sent again."
    )
    with transaction.atomic():
        if not Notification.objects.filter(
            pk=notification.pk, state=State.SENDING
        ).update(state=State.FAILED, answer=why, claimed_at=None):
            return False
        audit.append(
            "notification.failed",
            actor=NOTIFIER,
            incident=notification.incident,
            obj=notification,
            data={
                **_about(notification),
                "status_code": None,
                "attempt": notification.attempts,
                "error": why,
                "will_retry": False,
            },
        )
    return True
