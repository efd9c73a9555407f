"""Notification channels (where a playbook's escalation names go) and every
notification the console sent, or chose not to send, for an incident.

A channel names the environment variable that holds its secret (a Slack webhook
URL, a PagerDuty routing key), never the secret: the database, the admin, the
audit log and the pages never see it."""

from __future__ import annotations

import os
import re

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone

from incidents.models import Incident, StepExecution

CHANNEL_NAME_MAX = 100
ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")


class Channel(models.Model):
    class Kind(models.TextChoices):
        SLACK = "slack", "Slack (incoming webhook)"
        PAGERDUTY = "pagerduty", "PagerDuty (Events API v2)"
        EMAIL = "email", "Email (the console's EMAIL_* settings)"

    # The variable's name must say what it holds: an admin cannot point a channel
    # at SECRET_KEY or DATABASE_URL and have it sent to a third party.
    SECRET_SUFFIX = {Kind.SLACK: "_WEBHOOK_URL", Kind.PAGERDUTY: "_ROUTING_KEY"}
    # The kinds whose messages ask approvers (see notify.channels: their events).
    APPROVAL_KINDS = frozenset({Kind.SLACK, Kind.EMAIL})

    name = models.CharField(
        max_length=CHANNEL_NAME_MAX,
        help_text="As the runbook's escalation names it (PagerDuty, Slack, "
        "Security team); matched without regard to case.",
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    enabled = models.BooleanField(
        default=True,
        help_text="A disabled channel records its notifications as suppressed.",
    )
    secret_env = models.CharField(
        "secret (environment variable)",
        max_length=100,
        blank=True,
        help_text="Slack and PagerDuty: the NAME of the environment variable that "
        "holds the webhook URL (…_WEBHOOK_URL) or routing key (…_ROUTING_KEY), set "
        "for the web console and its workers. The secret never enters the database.",
    )
    recipients = models.TextField(
        blank=True, help_text="Email: addresses, separated by commas."
    )
    # Critical playbooks often escalate to PagerDuty alone, which carries no
    # approval requests: such a channel is where their approvers are asked.
    all_approvals = models.BooleanField(
        "every approval request",
        default=False,
        help_text="Slack and email: also tell this channel about every playbook's "
        "approval requests, not only those of playbooks whose escalation names it.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(Lower("name"), name="notify_channel_name_unique")
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        problem = self.secret_problem()
        if problem and self.kind in self.SECRET_SUFFIX:
            raise ValidationError({"secret_env": problem})
        if self.all_approvals and self.kind not in self.APPROVAL_KINDS:
            raise ValidationError(
                {
                    "all_approvals": "Only Slack and email channels carry approval "
                    "requests (PagerDuty pages for incidents, not for questions)."
                }
            )
        if self.kind == self.Kind.EMAIL:
            addresses = self.recipient_list()
            if not addresses:
                raise ValidationError({"recipients": "Give at least one address."})
            for address in addresses:
                try:
                    validate_email(address)
                except ValidationError:
                    raise ValidationError(
                        {"recipients": f"{address!r} is not an email address."}
                    ) from None

    def secret_problem(self) -> str:
        """Why `secret_env` cannot be used for this kind ("" if it can)."""
        suffix = self.SECRET_SUFFIX.get(self.kind)
        if suffix is None:
            return ""
        if not ENV_NAME.match(self.secret_env or "") or not self.secret_env.endswith(
            suffix
        ):
            return (
                f"A {self.get_kind_display()} channel names an environment variable "
                f"ending in {suffix} (for example SLACK{suffix})."
            )
        return ""

    @property
    def needs_secret(self) -> bool:
        return self.kind in self.SECRET_SUFFIX

    def secret(self) -> str:
        """The secret from the environment, "" when unset: read at each send and
        never kept."""
        return os.environ.get(self.secret_env, "") if self.secret_env else ""

    def recipient_list(self) -> list[str]:
        return [a.strip() for a in self.recipients.split(",") if a.strip()]


class Notification(models.Model):
    """One message to one channel about one incident (or, for an approval
    request, about that request). Created `queued` by the subscription (or the
    escalation beat); a worker claims it (queued -> sending, one conditional
    UPDATE) before it sends, so a redelivered task sends nothing twice, and the
    unique constraints make a second row for the same message impossible."""

    class Event(models.TextChoices):
        TRIGGER = "trigger", "Trigger"
        ACKNOWLEDGE = "acknowledge", "Acknowledge"
        RESOLVE = "resolve", "Resolve"
        ESCALATE = "escalate", "Escalate"
        APPROVAL = "approval", "Approval requested"

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        SUPPRESSED = "suppressed", "Suppressed"
        # A drill incident's message: recorded in the drill sink, never sent.
        DRILL = "drill", "Drill — not sent"

    channel = models.ForeignKey(
        Channel, on_delete=models.PROTECT, related_name="notifications"
    )
    incident = models.ForeignKey(
        Incident, on_delete=models.PROTECT, related_name="notifications"
    )
    event = models.CharField(max_length=20, choices=Event.choices)
    # The incident's opening this belongs to: 0, then one more per reopening (a
    # reopened incident is triggered, acknowledged and resolved again).
    round = models.PositiveIntegerField(default=0)
    # Escalation level (k fires k times N minutes after the opening); 0 otherwise.
    level = models.PositiveIntegerField(default=0)
    state = models.CharField(max_length=20, choices=State.choices, default=State.QUEUED)
    note = models.CharField(
        max_length=200, blank=True, help_text="Why it was sent (who acknowledged)."
    )
    attempts = models.PositiveIntegerField(default=0)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    answer = models.TextField(blank=True, help_text="Capped and redacted.")
    dedup_key = models.CharField(max_length=100)
    created_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    # The approval request an `approval` notification asks about; empty otherwise.
    execution = models.ForeignKey(
        StepExecution,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="notifications",
    )

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["incident", "channel", "event", "round", "level"],
                condition=Q(execution__isnull=True),
                name="notify_notification_once",
            ),
            # An incident may ask for many approvals: one message per request.
            models.UniqueConstraint(
                fields=["execution", "channel"],
                condition=Q(execution__isnull=False),
                name="notify_approval_notice_once",
            ),
        ]
        indexes = [models.Index(fields=["state", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.channel} {self.event} #{self.incident_id} {self.state}"

    @staticmethod
    def dedup_key_for(incident_id: int) -> str:
        """One key per incident for all its events: PagerDuty folds trigger,
        acknowledge and resolve into one alert by it."""
        return f"yomira-incident-{incident_id}"
