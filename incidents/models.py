"""Runbook revisions and what they hold: playbooks, steps and commands."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse

from probes.registry import EXECUTOR_CHOICES


class Runbook(models.Model):
    """One imported revision of a runbook file. Re-importing a changed file adds a
    revision; incidents keep the revision they started with."""

    key = models.SlugField(max_length=200, help_text="Slug of the runbook's title.")
    revision = models.PositiveIntegerField()
    title = models.CharField(max_length=300)
    version = models.CharField(max_length=50, blank=True)
    sha256 = models.CharField(max_length=64)
    parser_version = models.PositiveIntegerField(default=1)
    source_name = models.CharField(max_length=500, blank=True)
    source = models.TextField(help_text="The Markdown as imported.")
    preamble = models.TextField(blank=True)
    sections = models.JSONField(default=list, blank=True)
    warnings = models.JSONField(default=list, blank=True)
    is_current = models.BooleanField(default=True)
    imported_at = models.DateTimeField(auto_now_add=True)
    imported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )

    class Meta:
        ordering = ["key", "-revision"]
        constraints = [
            models.UniqueConstraint(
                fields=["key", "revision"], name="runbook_revision_unique"
            ),
            models.UniqueConstraint(
                fields=["key"],
                condition=models.Q(is_current=True),
                name="runbook_one_current_revision",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.title} (revision {self.revision})"


class PlaybookQuerySet(models.QuerySet):
    def current(self) -> PlaybookQuerySet:
        return self.filter(runbook__is_current=True)


class Playbook(models.Model):
    runbook = models.ForeignKey(
        Runbook, on_delete=models.CASCADE, related_name="playbooks"
    )
    number = models.PositiveIntegerField()
    slug = models.SlugField(max_length=200)
    title = models.CharField(max_length=300)
    anchor = models.CharField(max_length=300, blank=True)
    alerts = models.JSONField(default=list, blank=True)
    alert_condition = models.TextField(blank=True)
    severity = models.CharField(max_length=30, blank=True)
    severity_note = models.CharField(max_length=300, blank=True)
    escalation = models.JSONField(default=list, blank=True)
    context = models.JSONField(
        default=list, blank=True, help_text="[{title, markdown}]"
    )
    diagnosis = models.TextField(blank=True)
    line = models.PositiveIntegerField(default=1)

    objects = PlaybookQuerySet.as_manager()

    class Meta:
        ordering = ["runbook__key", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["runbook", "number"], name="playbook_number_unique"
            ),
            models.UniqueConstraint(
                fields=["runbook", "slug"], name="playbook_slug_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"§{self.number} {self.title}"

    def get_absolute_url(self) -> str:
        return reverse("incidents:playbook_detail", args=[self.slug])

    def matches(self, query: str) -> bool:
        """The library's search: title, slug, number and alert names."""
        query = query.strip().lower().lstrip("§")
        if not query:
            return True
        haystack = [self.title, self.slug, str(self.number), *self.alerts]
        return any(query in value.lower() for value in haystack)


class Step(models.Model):
    playbook = models.ForeignKey(
        Playbook, on_delete=models.CASCADE, related_name="steps"
    )
    number = models.PositiveIntegerField()
    title = models.CharField(max_length=500)
    body = models.TextField(blank=True)
    links = models.JSONField(default=list, blank=True, help_text="Playbook numbers.")
    line = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["playbook", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["playbook", "number"], name="step_number_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.playbook.number}.{self.number} {self.title}"


class Command(models.Model):
    class Kind(models.TextChoices):
        PROBE = "probe", "Probe (read-only)"
        ACTION = "action", "Action (changes something)"
        MANUAL = "manual", "Manual (copy and run by hand)"

    playbook = models.ForeignKey(
        Playbook, on_delete=models.CASCADE, related_name="commands"
    )
    step = models.ForeignKey(
        Step,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="commands",
        help_text="Empty for the playbook's Diagnosis commands.",
    )
    position = models.PositiveIntegerField()
    block = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Code block index in the step; empty if inline.",
    )
    language = models.CharField(max_length=30, blank=True)
    text = models.TextField()
    comment = models.TextField(blank=True)
    context = models.TextField(blank=True)
    after = models.TextField(blank=True)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.MANUAL)
    executor = models.CharField(max_length=20, choices=EXECUTOR_CHOICES, blank=True)
    parameters = models.JSONField(default=list, blank=True)
    variables = models.JSONField(default=list, blank=True)
    spec = models.JSONField(default=dict, blank=True)
    line = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["playbook", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["playbook", "position"], name="command_position_unique"
            ),
            models.CheckConstraint(
                condition=models.Q(kind="manual") | ~models.Q(executor=""),
                name="command_runnable_has_executor",
            ),
        ]

    def __str__(self) -> str:
        first = self.text.splitlines()[0] if self.text else ""
        return f"[{self.kind}] {first[:80]}"

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        errors = {}
        if self.kind != self.Kind.MANUAL and not self.executor:
            errors["executor"] = (
                "A probe or an action needs an executor; otherwise mark it manual."
            )
        if not isinstance(self.parameters, list) or not all(
            isinstance(p, str) and p.strip() for p in self.parameters
        ):
            errors["parameters"] = 'Parameters are a JSON list of names, e.g. ["pid"].'
        if errors:
            raise ValidationError(errors)

    @property
    def is_runnable(self) -> bool:
        return self.kind != self.Kind.MANUAL and bool(self.executor)
