"""A drill: one run of a scenario against the simulated stack, and its incident."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone

from incidents.models import Incident


class DrillQuerySet(models.QuerySet):
    def of_scenario(self, slug: str) -> DrillQuerySet:
        return self.filter(scenario=slug)

    def running(self) -> DrillQuerySet:
        return self.filter(state=Drill.State.RUNNING)


class Drill(models.Model):
    """States: running (the fault is in, the drill's probes do not pass yet) ->
    healed (they passed: the playbook worked) or abandoned (someone stopped it,
    and the stack was healed for them). `ended_at`: abandoned, or healed with its
    incident resolved."""

    class State(models.TextChoices):
        RUNNING = "running", "Running"
        HEALED = "healed", "Healed"
        ABANDONED = "abandoned", "Abandoned"

    # The scenario's file name and title as they were when the drill started: a
    # scenario edited or removed later leaves its drills readable.
    scenario = models.SlugField(max_length=80, db_index=True)
    title = models.CharField(max_length=200)
    playbook_number = models.PositiveIntegerField()
    incident = models.OneToOneField(
        Incident,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="drill_run",
        help_text="Empty when the alert opened no incident (it waits in triage).",
    )
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="drills_started",
    )
    started_at = models.DateTimeField(default=timezone.now)
    healed_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    state = models.CharField(
        max_length=20, choices=State.choices, default=State.RUNNING
    )
    # What the start did (faults injected, the alert's receipt), for the page.
    injected = models.JSONField(default=list, blank=True)
    # The latest health check: when, and per probe ok / what is still wrong.
    last_check = models.JSONField(default=dict, blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    # Kept when the drill heals and again when its incident resolves; a running
    # drill's is computed when shown.
    scorecard = models.JSONField(default=dict, blank=True)

    objects = DrillQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            # One running drill per scenario: two would fight over one fault.
            models.UniqueConstraint(
                fields=["scenario"],
                condition=models.Q(state="running"),
                name="drill_one_running_per_scenario",
            )
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.get_state_display().lower()})"

    def get_absolute_url(self) -> str:
        return reverse("drills:drill_detail", args=[self.pk])

    @property
    def is_running(self) -> bool:
        return self.state == self.State.RUNNING
