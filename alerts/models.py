"""Alert sources, what they sent, and the alerts and groups it describes.

An alert occurrence is (fingerprint, startsAt): Alertmanager keeps the fingerprint
of a label set across a flap and gives the new firing a new startsAt. A group is
(source, groupKey), opaque; one group holds one incident at a time."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone

from incidents.models import Incident, Playbook

SOURCE_NAME_MAX = 64


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class AlertSource(models.Model):
    class Kind(models.TextChoices):
        ALERTMANAGER = "alertmanager", "Alertmanager (webhook version 4)"
        GRAFANA = "grafana", "Grafana contact point (webhook version 1)"

    name = models.SlugField(max_length=SOURCE_NAME_MAX, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    enabled = models.BooleanField(default=True)
    # SHA-256 of the bearer token: the token is 256 random bits, so a plain hash
    # is as good as a slow one and costs nothing per request. The token itself is
    # shown once, when it is made.
    token_sha256 = models.CharField(max_length=64, editable=False)
    token_rotated_at = models.DateTimeField(default=timezone.now, editable=False)
    hmac_secret_env = models.CharField(
        "HMAC secret (environment variable)",
        max_length=100,
        blank=True,
        validators=[
            RegexValidator(
                r"^[A-Z][A-Z0-9_]*_HMAC_SECRET$",
                "Name an environment variable ending in _HMAC_SECRET, e.g. "
                "GRAFANA_HMAC_SECRET (the console's own keys cannot be used).",
            )
        ],
        help_text="Grafana only: the name of the environment variable holding the "
        "HMAC-SHA256 secret, ending in _HMAC_SECRET (the secret never enters the "
        "database, and is masked in all output). Empty: no signature is required.",
    )
    signature_header = models.CharField(
        max_length=100, default="X-Grafana-Alerting-Signature", blank=True
    )
    timestamp_header = models.CharField(
        max_length=100,
        default="X-Grafana-Alerting-Timestamp",
        blank=True,
        help_text="When set, the signature covers 'timestamp:body' and the "
        "timestamp must be within ±5 minutes.",
    )
    rate_limit_per_minute = models.PositiveIntegerField(
        default=600,
        validators=[MinValueValidator(1)],
        help_text="Requests a minute; more are answered 503 with Retry-After, "
        "which Alertmanager retries (it never retries a 4xx).",
    )
    drill = models.BooleanField(
        default=False,
        help_text="A drill source: every incident its alerts open is a drill "
        "(marked DRILL everywhere; its notifications are never sent). Incidents "
        "already open keep what they were.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Receipt(models.Model):
    """One authenticated webhook request, stored as received before anything else."""

    class State(models.TextChoices):
        PENDING = "pending", "Waiting to be processed"
        PROCESSED = "processed", "Processed"
        INVALID = "invalid", "Refused (invalid)"
        FAILED = "failed", "Processing failed"

    # No database constraint: checking it would lock the source's row on every
    # webhook (and sources are never deleted while receipts point at them:
    # PROTECT holds in the ORM, and the admin deletes nothing here).
    source = models.ForeignKey(
        AlertSource,
        on_delete=models.PROTECT,
        related_name="receipts",
        db_constraint=False,
    )
    received_at = models.DateTimeField(default=timezone.now)
    body = models.TextField()
    state = models.CharField(
        max_length=20, choices=State.choices, default=State.PENDING
    )
    error = models.TextField(blank=True)
    alert_count = models.PositiveIntegerField(default=0)
    # Times the database refused to apply it (failed after a few).
    attempts = models.PositiveSmallIntegerField(default=0)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        # Every webhook inserts a row: one small partial index (the receipts
        # still to apply, which the drain and the sweeper read) instead of two
        # over the whole table.
        indexes = [
            models.Index(
                fields=["id"],
                condition=models.Q(state="pending"),
                name="receipt_pending",
            )
        ]

    def __str__(self) -> str:
        return f"receipt {self.pk} from {self.source}"


class Route(models.Model):
    """An admin's rule for alerts the runbook does not name: label matchers, all of
    which must hold, in priority order (lowest first)."""

    name = models.CharField(max_length=100)
    priority = models.PositiveIntegerField(default=100)
    enabled = models.BooleanField(default=True)
    matchers = models.TextField(
        help_text='One per line or comma-separated: label="value", label!="value", '
        'label=~"regex", label!~"regex" (Alertmanager\'s syntax).'
    )
    playbook = models.CharField(
        max_length=100,
        help_text="Slug or number of a playbook in the current runbook revision.",
    )

    class Meta:
        ordering = ["priority", "id"]

    def __str__(self) -> str:
        return f"{self.priority}: {self.name} → {self.playbook}"


class AlertGroup(models.Model):
    class Triage(models.TextChoices):
        NONE = "", "Routed"
        WAITING = "waiting", "Waiting for a responder"
        PICKED = "picked", "Playbook picked"
        DISMISSED = "dismissed", "Dismissed"

    source = models.ForeignKey(
        AlertSource, on_delete=models.PROTECT, related_name="groups"
    )
    group_key = models.TextField()
    key_sha256 = models.CharField(max_length=64)
    receiver = models.CharField(max_length=200, blank=True)
    group_labels = models.JSONField(default=dict, blank=True)
    incident = models.ForeignKey(
        Incident,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="alert_groups",
    )
    playbook = models.ForeignKey(
        Playbook, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    rule = models.CharField(max_length=40, blank=True)
    reason = models.TextField(blank=True)
    candidates = models.JSONField(default=list, blank=True)
    triage = models.CharField(
        max_length=20, choices=Triage.choices, default="", blank=True
    )
    triage_note = models.TextField(blank=True)
    triaged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    firing = models.BooleanField(default=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    flaps = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-updated_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "key_sha256"], name="alert_group_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.source}: {self.group_key[:80]}"


class Alert(models.Model):
    class Status(models.TextChoices):
        FIRING = "firing", "Firing"
        RESOLVED = "resolved", "Resolved"

    group = models.ForeignKey(
        AlertGroup, on_delete=models.CASCADE, related_name="alerts"
    )
    fingerprint = models.CharField(max_length=64)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices)
    name = models.CharField(max_length=200, blank=True)
    severity = models.CharField(max_length=40, blank=True)
    labels = models.JSONField(default=dict)
    annotations = models.JSONField(default=dict, blank=True)
    generator_url = models.TextField(blank=True)
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)
    # The newest receipt that changed this row: an older one arriving late (a
    # retry) never overrides it.
    last_receipt = models.ForeignKey(
        Receipt, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-starts_at", "fingerprint"]
        constraints = [
            models.UniqueConstraint(
                fields=["group", "fingerprint", "starts_at"],
                name="alert_occurrence_unique",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name or self.fingerprint} ({self.status})"

    @property
    def is_firing(self) -> bool:
        return self.status == self.Status.FIRING

    def timeline_data(self, source: str) -> dict:
        """What its `alert.firing` / `alert.resolved` event records."""
        return {
            "alert": self.name,
            "fingerprint": self.fingerprint,
            "labels": self.labels,
            "starts_at": self.starts_at.isoformat(),
            "ends_at": self.ends_at.isoformat() if self.ends_at else None,
            "source": source,
        }

    def shown_labels(self) -> list[tuple[str, str]]:
        """Labels to show beside the alert's name: sorted, without the name and
        severity (shown on their own)."""
        return sorted(
            (k, v) for k, v in self.labels.items() if k not in {"alertname", "severity"}
        )


class PlaybookPolicy(models.Model):
    """Per playbook (by runbook key and slug, so it survives re-imports): what an
    alert-opened incident does when its source resolves."""

    runbook_key = models.SlugField(max_length=100)
    playbook_slug = models.SlugField(max_length=100)
    resolve_with_source = models.BooleanField(
        default=False,
        help_text="Resolve the incident when every alert of its group has ended. "
        "Off: the timeline says 'source resolved' and a person resolves it.",
    )

    class Meta:
        verbose_name_plural = "playbook policies"
        constraints = [
            models.UniqueConstraint(
                fields=["runbook_key", "playbook_slug"], name="playbook_policy_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.runbook_key}/{self.playbook_slug}"
