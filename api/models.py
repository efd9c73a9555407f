"""Personal API tokens: a person's rights, lent to a script, read-only or not.

The token itself is shown once, when it is made, and never stored: the row keeps
its SHA-256 (as alert sources do), so a copy of the database lets nobody in."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ApiToken(models.Model):
    class Scope(models.TextChoices):
        READ = "read", "Read: list and read playbooks, incidents, runs, alerts"
        WRITE = "write", "Read and write: open incidents, tick, note, run (as you)"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(
        max_length=60, help_text="What uses it: a script, a chat bot, a laptop."
    )
    scope = models.CharField(max_length=5, choices=Scope.choices)
    sha256 = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Written at most once a minute (the rate window's first request).
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "name"],
                condition=models.Q(revoked_at__isnull=True),
                name="api_token_name_unique_while_live",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.scope}) of {self.user}"

    @property
    def live(self) -> bool:
        return self.revoked_at is None

    @property
    def may_write(self) -> bool:
        return self.scope == self.Scope.WRITE


class RateWindow(models.Model):
    """Requests of one token in one minute, counted in PostgreSQL: every web
    process sees the same count (a per-process cache would multiply the limit by
    the number of processes)."""

    token = models.ForeignKey(ApiToken, on_delete=models.CASCADE, related_name="+")
    minute = models.BigIntegerField()
    count = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["token", "minute"], name="api_rate_window_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.count} requests of token {self.token_id} in minute {self.minute}"
