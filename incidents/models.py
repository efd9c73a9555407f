"""Runbook revisions and what they hold: playbooks, steps and commands."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.urls import reverse
from django.utils import timezone

from probes.families import FAMILIES

# The parser checks every field against these limits (so a dry run and an import
# agree); they are defined once, with the parser.
from .runbook.types import (
    EXECUTOR_MAX,
    LANGUAGE_MAX,
    PATH_MAX,
    PLAYBOOK_ANCHOR_MAX,
    PLAYBOOK_SLUG_MAX,
    PLAYBOOK_TITLE_MAX,
    RUNBOOK_KEY_MAX,
    RUNBOOK_TITLE_MAX,
    RUNBOOK_VERSION_MAX,
    SEVERITY_MAX,
    SEVERITY_NOTE_MAX,
    SEVERITY_TEXT_MAX,
    SOURCE_NAME_MAX,
    STEP_TITLE_MAX,
)


class Runbook(models.Model):
    """One imported revision of a runbook file. Re-importing a changed file adds a
    revision; incidents keep the revision they started with."""

    key = models.SlugField(
        max_length=RUNBOOK_KEY_MAX, help_text="Slug of the runbook's title."
    )
    revision = models.PositiveIntegerField()
    title = models.CharField(max_length=RUNBOOK_TITLE_MAX)
    version = models.CharField(max_length=RUNBOOK_VERSION_MAX, blank=True)
    sha256 = models.CharField(max_length=64)
    parser_version = models.PositiveIntegerField(default=1)
    source_name = models.CharField(max_length=SOURCE_NAME_MAX, blank=True)
    source = models.TextField(help_text="The Markdown as imported.")
    # A directory import: one entry per file read or skipped, in path order
    # ([{path, sha256, playbooks, skipped}]); empty for a single file.
    files = models.JSONField(default=list, blank=True)
    preamble = models.TextField(blank=True)
    sections = models.JSONField(default=list, blank=True)
    warnings = models.JSONField(default=list, blank=True)
    # What the importer read but did not understand (`PATH:LINE: how it was read`).
    not_understood = models.JSONField(default=list, blank=True)
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


class SeverityAlias(models.Model):
    """A word a runbook or an alert uses for a severity (`SEV-1`, `P2`, `urgent`)
    and the console's level it means. Added to the built-in aliases by an Admin."""

    class Level(models.TextChoices):
        CRITICAL = "critical"
        HIGH = "high"
        WARNING = "warning"
        INFO = "info"

    alias = models.CharField(
        max_length=SEVERITY_TEXT_MAX,
        unique=True,
        help_text="Lower case, as written without emoji or backticks: 'sev-1', 'urgent'.",
    )
    level = models.CharField(max_length=10, choices=Level.choices)

    class Meta:
        ordering = ["alias"]
        verbose_name_plural = "severity aliases"

    def __str__(self) -> str:
        return f"{self.alias} → {self.level}"

    def clean(self) -> None:
        self.alias = " ".join(self.alias.split()).lower()
        if not self.alias:
            raise ValidationError({"alias": "An alias cannot be empty."})


class PlaybookQuerySet(models.QuerySet):
    def current(self) -> PlaybookQuerySet:
        return self.filter(runbook__is_current=True)


class Playbook(models.Model):
    runbook = models.ForeignKey(
        Runbook, on_delete=models.CASCADE, related_name="playbooks"
    )
    number = models.PositiveIntegerField()
    slug = models.SlugField(max_length=PLAYBOOK_SLUG_MAX)
    title = models.CharField(max_length=PLAYBOOK_TITLE_MAX)
    anchor = models.CharField(max_length=PLAYBOOK_ANCHOR_MAX, blank=True)
    alerts = models.JSONField(default=list, blank=True)
    alert_condition = models.TextField(blank=True)
    severity = models.CharField(max_length=SEVERITY_MAX, blank=True)
    severity_note = models.CharField(max_length=SEVERITY_NOTE_MAX, blank=True)
    # What the runbook wrote (`SEV-1`, `🔴 High`); `severity` is the console's level.
    severity_text = models.CharField(max_length=SEVERITY_TEXT_MAX, blank=True)
    # The file it came from, relative to the imported directory (`kubernetes/
    # KubePodCrashLooping.md`): an alert's runbook_url is routed by it.
    path = models.CharField(max_length=PATH_MAX, blank=True)
    escalation = models.JSONField(default=list, blank=True)
    context = models.JSONField(
        default=list, blank=True, help_text="[{title, markdown}]"
    )
    diagnosis = models.TextField(blank=True)
    line = models.PositiveIntegerField(default=1)
    # Bumped when an admin rebinds one of its commands: part of every cache key of
    # pages that show them.
    binding_version = models.PositiveIntegerField(default=0)

    objects = PlaybookQuerySet.as_manager()

    class Meta:
        ordering = ["runbook__key", "number"]
        # Granted per playbook (django-guardian) or, for probes, to a whole role.
        permissions = [
            ("run_probes", "Run this playbook's probes"),
            ("run_actions", "Run this playbook's actions"),
            ("approve_actions", "Approve this playbook's actions (four eyes)"),
        ]
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

    def found_in_text(self, query: str) -> str:
        """Where in the playbook's own text a search is found, in words ("" if
        nowhere): the alert condition, a context section (Symptoms, Impact), the
        Diagnosis. Steps and commands are asked in the database (the view)."""
        query = query.strip().lower()
        if not query:
            return ""
        if query in self.alert_condition.lower():
            return "the alert condition"
        for section in self.context or []:
            title = str(section.get("title", ""))
            if (
                query in title.lower()
                or query in str(section.get("markdown", "")).lower()
            ):
                return title or "its context"
        if query in self.diagnosis.lower():
            return "Diagnosis"
        return ""


class Step(models.Model):
    playbook = models.ForeignKey(
        Playbook, on_delete=models.CASCADE, related_name="steps"
    )
    number = models.PositiveIntegerField()
    title = models.CharField(max_length=STEP_TITLE_MAX)
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


def known_family(name: str) -> None:
    if name and name not in FAMILIES:
        raise ValidationError(
            f"No command family is named {name!r}; known: {', '.join(FAMILIES)}."
        )


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
    language = models.CharField(max_length=LANGUAGE_MAX, blank=True)
    text = models.TextField()
    comment = models.TextField(blank=True)
    context = models.TextField(blank=True)
    after = models.TextField(blank=True)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.MANUAL)
    # Checked against the families table, not by `choices`: a new family needs no
    # migration.
    executor = models.CharField(
        max_length=EXECUTOR_MAX, blank=True, validators=[known_family]
    )
    parameters = models.JSONField(default=list, blank=True)
    variables = models.JSONField(default=list, blank=True)
    spec = models.JSONField(default=dict, blank=True)
    requires_approval = models.BooleanField(
        default=False,
        help_text="A second person with approve_actions must approve each run.",
    )
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

    def fingerprint(self, params: dict[str, str]) -> str:
        """What a preview, a confirmation and an approval are bound to: the command
        as it stands (text and binding) and the exact parameters. Two halves (128
        bits each), so a refusal can say which of the two changed."""
        import hashlib
        import json

        def digest(value: object) -> str:
            payload = json.dumps(value, sort_keys=True, default=str)
            return hashlib.sha256(payload.encode()).hexdigest()[:32]

        binding = [self.pk, self.text, self.kind, self.executor, self.spec]
        return digest(binding) + digest(sorted(params.items()))

    def fingerprint_changes(self, fingerprint: str, params: dict[str, str]) -> str:
        """What differs between a stored fingerprint and this command with these
        parameters, in words: "", "the command", "the parameters" or both."""
        now = self.fingerprint(params)
        if fingerprint == now:
            return ""
        changed = []
        if fingerprint[:32] != now[:32]:
            changed.append("the command (its text or binding)")
        if fingerprint[32:] != now[32:]:
            changed.append("the parameters")
        return " and ".join(changed) or "the command"


class IncidentQuerySet(models.QuerySet):
    def active_first(self) -> IncidentQuerySet:
        """Open work first (open, acknowledged, mitigated), newest first within."""
        resolved = models.Case(
            models.When(status=Incident.Status.RESOLVED, then=1),
            default=0,
            output_field=models.IntegerField(),
        )
        return self.annotate(_resolved=resolved).order_by("_resolved", "-opened_at")


class Incident(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        MITIGATED = "mitigated", "Mitigated"
        RESOLVED = "resolved", "Resolved"

    # Forward moves may skip a stage (a false alarm goes open -> resolved);
    # reopening returns to open from mitigated or resolved.
    ORDER = [Status.OPEN, Status.ACKNOWLEDGED, Status.MITIGATED, Status.RESOLVED]

    playbook = models.ForeignKey(
        Playbook, on_delete=models.PROTECT, related_name="incidents"
    )
    title = models.CharField(max_length=200)
    severity = models.CharField(max_length=SEVERITY_MAX, blank=True)  # the playbook's
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.OPEN
    )
    commander = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="commanded_incidents",
    )
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="opened_incidents",
    )
    opened_at = models.DateTimeField(default=timezone.now)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    mitigated_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    # A practice incident (a drill): set once, when it is opened, and shown on
    # every page, export and notification; its notifications are never sent.
    drill = models.BooleanField(default=False, db_index=True, editable=False)

    objects = IncidentQuerySet.as_manager()

    class Meta:
        ordering = ["-opened_at"]
        permissions = [
            ("tick_step", "Tick checklist steps (done, skipped, reopened)"),
            ("add_note", "Add notes to an incident"),
            ("command_incident", "Change an incident's status and commander"),
            ("export_incident", "Export post-mortem and timeline"),
            ("break_glass", "Run an approval-required action alone, with a reason"),
        ]
        indexes = [models.Index(fields=["status", "opened_at"])]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title}"

    def get_absolute_url(self) -> str:
        return reverse("incidents:incident_detail", args=[self.pk])

    @property
    def is_active(self) -> bool:
        return self.status != self.Status.RESOLVED

    def allowed_statuses(self) -> list[str]:
        """Where the status may go from here."""
        here = self.ORDER.index(self.status)
        forward = self.ORDER[here + 1 :]
        reopens = self.status in {self.Status.MITIGATED, self.Status.RESOLVED}
        return forward + ([self.Status.OPEN] if reopens else [])

    def ended_at(self) -> datetime | None:
        return self.resolved_at if self.status == self.Status.RESOLVED else None

    def duration(self, now: datetime | None = None) -> timedelta:
        return (self.ended_at() or now or timezone.now()) - self.opened_at


class StepExecution(models.Model):
    """One run of a command or one tick of a step. A step's checklist state is
    derived from these rows, never stored twice."""

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        TIMED_OUT = "timed_out", "Timed out"
        DISPATCH_FAILED = "dispatch_failed", "Dispatch failed"
        OUTCOME_UNKNOWN = "outcome_unknown", "Outcome unknown"
        CANCELLED = "cancelled", "Cancelled"
        REJECTED = "rejected", "Rejected"
        DONE = "done", "Done"
        SKIPPED = "skipped", "Skipped"
        REOPENED = "reopened", "Reopened"

    # The three kinds of state, defined once: a tick of a step; a run still going
    # (it holds its command: no second run of it with the same parameters); a run
    # that has ended.
    TICKS = frozenset({State.DONE, State.SKIPPED, State.REOPENED})
    IN_FLIGHT = frozenset({State.QUEUED, State.AWAITING_APPROVAL, State.RUNNING})
    TERMINAL = frozenset(
        {
            State.SUCCEEDED,
            State.FAILED,
            State.TIMED_OUT,
            State.DISPATCH_FAILED,
            State.OUTCOME_UNKNOWN,
            State.CANCELLED,
            State.REJECTED,
        }
    )

    incident = models.ForeignKey(
        Incident, on_delete=models.PROTECT, related_name="executions"
    )
    step = models.ForeignKey(
        Step,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="executions",
        help_text="Empty for a run of a Diagnosis command.",
    )
    command = models.ForeignKey(
        Command,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="executions",
    )
    state = models.CharField(max_length=20, choices=State.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="requested_executions",
    )
    # The system identity that asked when no person did: "diagnosis", for the
    # Diagnosis probes an alert-opened incident runs at once.
    requested_as = models.CharField(max_length=150, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="approved_executions",
    )
    parameters = models.JSONField(default=dict, blank=True)
    command_text = models.TextField(blank=True, help_text="As run, secrets masked.")
    reason = models.TextField(blank=True)
    summary = models.CharField(max_length=500, blank=True)
    output = models.TextField(blank=True)
    # The output as data (probes/tables.py): an SQL result's columns and rows, an
    # HTTP answer's status and timing; redacted and capped like the output.
    result = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    task_id = models.CharField(max_length=100, blank=True)
    # The Run form's one-time key: a double click sends it twice, runs once.
    request_key = models.CharField(max_length=64, blank=True, db_index=True)
    fingerprint = models.CharField(max_length=64, blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    approval_expires_at = models.DateTimeField(null=True, blank=True)
    break_glass = models.BooleanField(default=False)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["incident", "step", "created_at"])]

    def __str__(self) -> str:
        return f"{self.step} {self.state}"

    @property
    def requester_name(self) -> str:
        """Who asked, in words: a person's username, a system identity, or
        "someone" (an account deleted since)."""
        if self.requested_by is not None:
            return self.requested_by.get_username()
        return self.requested_as or "someone"

    @property
    def is_tick(self) -> bool:
        return self.state in self.TICKS

    @property
    def is_terminal(self) -> bool:
        return self.state in self.TERMINAL or self.state in self.TICKS

    @property
    def duration_ms(self) -> int | None:
        if self.started_at and self.finished_at:
            return int((self.finished_at - self.started_at).total_seconds() * 1000)
        return None


# A step nobody has ticked (or that was reopened): derived, never stored.
STEP_PENDING = "pending"


def step_state(executions: list[StepExecution]) -> tuple[str, StepExecution | None]:
    """A step's checklist state from its executions: the latest tick decides
    (done, skipped; reopened means pending again)."""
    ticks = [e for e in executions if e.state in StepExecution.TICKS]
    if not ticks:
        return STEP_PENDING, None
    latest = max(ticks, key=lambda e: (e.created_at, e.pk))
    reopened = latest.state == StepExecution.State.REOPENED
    return (STEP_PENDING if reopened else latest.state), latest


class AuditEvent(models.Model):
    """The append-only, HMAC-chained audit log (see incidents/audit.py).

    Unmanaged on purpose: after migration 0002 created the table and its triggers,
    Django's `flush` (used between transactional tests) leaves it alone, and nothing
    in the application deletes from it. Foreign keys carry no database constraint,
    so deleting a user or an incident can never be blocked by, or rewrite, history.
    To change this model: set managed=True, makemigrations, set it back."""

    seq = models.BigIntegerField(unique=True)
    created_at = models.DateTimeField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor_name = models.CharField(max_length=150, blank=True)
    verb = models.CharField(max_length=60, db_index=True)
    incident = models.ForeignKey(
        Incident,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        # The (incident, seq) index below serves every look-up by incident. A
        # second one on incident alone gave the poll's prepared statement a plan
        # that sorted an incident's whole history (migration 0020).
        db_index=False,
        related_name="events",
    )
    object_type = models.CharField(max_length=60, blank=True)
    object_id = models.CharField(max_length=60, blank=True)
    data = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    prev_mac = models.CharField(max_length=64)
    mac = models.CharField(max_length=64)

    class Meta:
        managed = False
        ordering = ["seq"]
        indexes = [models.Index(fields=["incident", "seq"])]

    def __str__(self) -> str:
        return f"#{self.seq} {self.verb} by {self.actor_name or 'system'}"


class AuditCheckpoint(models.Model):
    """The audit log's head, anchored outside the audit table (see incidents/audit.py).

    The HMAC chain proves every row links to the one before it, but says nothing about
    rows cut from the end: delete the last N rows and what is left is still a valid
    chain. Each append writes its (seq, mac) here in the same transaction, and logs it,
    so `verify_audit` can name a missing tail. Append-only and unmanaged for the same
    reasons as AuditEvent (triggers refuse UPDATE, DELETE, TRUNCATE; flush skips it)."""

    seq = models.BigIntegerField(primary_key=True)
    mac = models.CharField(max_length=64)
    created_at = models.DateTimeField()

    class Meta:
        managed = False
        ordering = ["seq"]

    def __str__(self) -> str:
        return f"checkpoint #{self.seq}"


class WorkerHeartbeat(models.Model):
    """A Celery worker's (or the beat sweeper's) latest sign of life, written by the
    process itself every few seconds (incidents/services/workers.py). The database
    is the store because `make run` may use kombu's filesystem broker, which has no
    broadcast to ask the workers. A worker that stops cleanly marks its row
    stopped (kept, so the console can say when a site was last seen); one that is
    killed simply stops beating and goes stale."""

    class Kind(models.TextChoices):
        WORKER = "worker", "Celery worker"
        SWEEPER = "sweeper", "Beat's sweeper (last run)"

    hostname = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.WORKER)
    site = models.CharField(max_length=40, blank=True)
    queues = models.JSONField(default=list, blank=True)
    pid = models.PositiveIntegerField(null=True, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    beat_at = models.DateTimeField(default=timezone.now)
    stopped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["hostname"]

    def __str__(self) -> str:
        return f"{self.hostname} ({self.kind}) at {self.beat_at:%H:%M:%S}"
