"""What importing a runbook would change, against the current revision of the same
runbook: read before the upload's Confirm, and recorded with the import.

Only reads. The import itself stays `services.runbooks.import_runbook`;
`import_reviewed` calls it only while the revision the person reviewed is still
the current one."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import Prefetch
from guardian.models import GroupObjectPermission, UserObjectPermission

from .. import access
from .. import runbook as rb
from ..actors import Actor
from ..models import Command, Incident, Playbook, Runbook, Step
from ..runbook.slugs import slugify
from .runbooks import (
    IMPORTERS,
    ImportResult,
    RunbookSource,
    import_runbook,
    same_reading,
)

# The audit event keeps counts and at most this many names per list.
SUMMARY_NAMES = 50
# The page names at most this many open incidents (and says how many more).
INCIDENTS_SHOWN = 20

# A playbook's fields the diff compares, with the words the page shows.
FIELDS = {
    "number": "number",
    "title": "title",
    "alerts": "alerts",
    "severity": "severity",
    "path": "file",
    "escalation": "escalation",
}


@dataclass(frozen=True)
class FieldChange:
    name: str  # the word shown: "title", "alerts", ...
    old: Any
    new: Any

    @property
    def old_text(self) -> str:
        return _shown(self.old)

    @property
    def new_text(self) -> str:
        return _shown(self.new)


def _shown(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or "none"
    return str(value) if value not in ("", None) else "none"


@dataclass(frozen=True)
class StepRef:
    number: int
    title: str


@dataclass(frozen=True)
class StepChange:
    number: int
    old_title: str
    new_title: str
    title_changed: bool
    body_changed: bool


@dataclass(frozen=True)
class CommandChange:
    """A command found in both revisions (same text) bound differently."""

    text: str
    where: str  # "step 3" or "Diagnosis", in the new revision
    old_kind: str
    new_kind: str
    old_executor: str
    new_executor: str

    @property
    def kind_changed(self) -> bool:
        return self.old_kind != self.new_kind

    @property
    def executor_changed(self) -> bool:
        return self.old_executor != self.new_executor


@dataclass
class PlaybookChange:
    slug: str
    number: int
    title: str
    fields: list[FieldChange] = field(default_factory=list)
    steps_added: list[StepRef] = field(default_factory=list)
    steps_removed: list[StepRef] = field(default_factory=list)
    steps_changed: list[StepChange] = field(default_factory=list)
    commands_rebound: list[CommandChange] = field(default_factory=list)
    commands_added: int = 0
    commands_removed: int = 0

    def __bool__(self) -> bool:
        return bool(
            self.fields
            or self.steps_added
            or self.steps_removed
            or self.steps_changed
            or self.commands_rebound
            or self.commands_added
            or self.commands_removed
        )


@dataclass(frozen=True, order=True)
class Grant:
    """A per-playbook grant (django-guardian) on a playbook of the current revision."""

    playbook: str  # its slug
    holder: str  # "person" or "group"
    name: str  # the username or the group's name
    permission: str  # the codename: run_actions, approve_actions, ...

    def __str__(self) -> str:
        return f"{self.holder} {self.name}: {self.permission} on {self.playbook}"


@dataclass
class RunbookDiff:
    key: str
    parsed: rb.Runbook
    current: Runbook | None
    unchanged: bool = False
    added: list[rb.Playbook] = field(default_factory=list)
    removed: list[Playbook] = field(default_factory=list)
    changed: list[PlaybookChange] = field(default_factory=list)
    unchanged_count: int = 0
    carried: list[Grant] = field(default_factory=list)
    lost: list[Grant] = field(default_factory=list)
    open_incidents: list[Incident] = field(default_factory=list)
    open_incident_count: int = 0

    @property
    def is_new(self) -> bool:
        """No revision of this runbook yet: the import makes revision 1."""
        return self.current is None

    @property
    def next_revision(self) -> int:
        return (self.current.revision + 1) if self.current else 1

    @property
    def version_change(self) -> tuple[str, str] | None:
        if self.current and self.current.version != self.parsed.version:
            return (self.current.version, self.parsed.version)
        return None

    def step_counts(self) -> dict[str, int]:
        return {
            "added": sum(len(c.steps_added) for c in self.changed),
            "removed": sum(len(c.steps_removed) for c in self.changed),
            "changed": sum(len(c.steps_changed) for c in self.changed),
        }

    def rebound(self) -> list[tuple[str, CommandChange]]:
        return [(c.slug, r) for c in self.changed for r in c.commands_rebound]

    def summary(self) -> dict[str, Any]:
        """For the import's audit event: counts, and names up to SUMMARY_NAMES per
        list (a 5,000-playbook upload still makes a small record)."""
        rebound = self.rebound()
        return {
            "runbook": self.key,
            "new": self.is_new,
            "unchanged": self.unchanged,
            "from_revision": self.current.revision if self.current else None,
            "from_sha256": self.current.sha256 if self.current else None,
            "to_sha256": self.parsed.sha256,
            "playbooks": {
                "added": _names([p.slug for p in self.added]),
                "removed": _names([p.slug for p in self.removed]),
                "changed": _names([c.slug for c in self.changed]),
                "unchanged": self.unchanged_count,
            },
            "steps": self.step_counts(),
            "commands_rebound": {
                "count": len(rebound),
                "items": [
                    {
                        "playbook": slug,
                        "text": change.text[:200],
                        "kind": [change.old_kind, change.new_kind],
                        "executor": [change.old_executor, change.new_executor],
                    }
                    for slug, change in rebound[:SUMMARY_NAMES]
                ],
            },
            "grants": {
                "carried": _names([str(g) for g in self.carried]),
                "lost": _names([str(g) for g in self.lost]),
            },
            "open_incidents": {
                "count": self.open_incident_count,
                "names": [i.pk for i in self.open_incidents],
            },
        }


def _names(items: Sequence[Any]) -> dict[str, Any]:
    return {"count": len(items), "names": list(items[:SUMMARY_NAMES])}


def reading_of(parsed: rb.Runbook) -> str:
    """A digest of how the runbook was read (playbooks, steps, commands and their
    bindings): the same bytes read differently (a new severity alias, a new
    parser) give another digest."""
    contract = json.dumps(parsed.to_contract(), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(contract.encode("utf-8", "surrogatepass")).hexdigest()


def runbook_key(parsed: rb.Runbook) -> str:
    """The runbook a parse would become a revision of (as the import decides)."""
    return slugify(parsed.title) or "runbook"


def current_revision(key: str) -> Runbook | None:
    return (
        Runbook.objects.filter(key=key, is_current=True)
        .only("pk", "key", "revision", "sha256", "parser_version", "version", "title")
        .first()
    )


def diff_runbook(parsed: rb.Runbook) -> RunbookDiff:
    """What importing `parsed` would change against the current revision of the same
    runbook (or that it would be a new runbook). Reads only."""
    key = runbook_key(parsed)
    current = current_revision(key)
    diff = RunbookDiff(key=key, parsed=parsed, current=current)
    if current is None:
        diff.added = list(parsed.playbooks)
        return diff
    if same_reading(current, parsed):
        # The same rule as the import: nothing would change.
        diff.unchanged = True
        diff.unchanged_count = len(parsed.playbooks)
        return diff

    old = {p.slug: p for p in _playbooks_of(current)}
    new = {p.slug: p for p in parsed.playbooks}
    diff.added = [p for slug, p in new.items() if slug not in old]
    diff.removed = [p for slug, p in old.items() if slug not in new]
    for slug, parsed_playbook in new.items():
        if slug not in old:
            continue
        change = _compare(old[slug], parsed_playbook)
        if change:
            diff.changed.append(change)
        else:
            diff.unchanged_count += 1
    diff.carried, diff.lost = _grants(old, kept=set(new))
    incidents = (
        Incident.objects.filter(playbook__runbook=current)
        .exclude(status=Incident.Status.RESOLVED)
        .select_related("playbook")
        .order_by("-opened_at")
    )
    diff.open_incident_count = incidents.count()
    diff.open_incidents = list(incidents[:INCIDENTS_SHOWN])
    return diff


def _playbooks_of(runbook: Runbook) -> list[Playbook]:
    """The revision's playbooks with their steps and commands: three queries."""
    return list(
        runbook.playbooks.order_by("number").prefetch_related(
            Prefetch("steps", queryset=Step.objects.order_by("number")),
            Prefetch(
                "commands",
                queryset=Command.objects.select_related("step").order_by("position"),
            ),
        )
    )


def _compare(old: Playbook, new: rb.Playbook) -> PlaybookChange:
    change = PlaybookChange(slug=new.slug, number=new.number, title=new.title)
    for attribute, word in FIELDS.items():
        before, after = getattr(old, attribute), getattr(new, attribute)
        if before != after:
            change.fields.append(FieldChange(word, before, after))

    old_steps = {s.number: s for s in old.steps.all()}
    new_steps = {s.number: s for s in new.steps}
    change.steps_added = [
        StepRef(n, s.title) for n, s in new_steps.items() if n not in old_steps
    ]
    change.steps_removed = [
        StepRef(n, s.title) for n, s in old_steps.items() if n not in new_steps
    ]
    for number, step in new_steps.items():
        if number not in old_steps:
            continue
        before = old_steps[number]
        title_changed = before.title != step.title
        body_changed = before.body != step.body
        if title_changed or body_changed:
            change.steps_changed.append(
                StepChange(
                    number, before.title, step.title, title_changed, body_changed
                )
            )

    old_commands = _by_text(
        (c.text, c.kind, c.executor or "", _where(c.step.number if c.step else None))
        for c in old.commands.all()
    )
    new_commands = _by_text(
        (c.text, c.kind, c.executor or "", where) for where, c in _parsed_commands(new)
    )
    change.commands_added = len(new_commands.keys() - old_commands.keys())
    change.commands_removed = len(old_commands.keys() - new_commands.keys())
    for text, (kind, executor, where) in new_commands.items():
        if text not in old_commands:
            continue
        old_kind, old_executor, _ = old_commands[text]
        if (old_kind, old_executor) != (kind, executor):
            change.commands_rebound.append(
                CommandChange(text, where, old_kind, kind, old_executor, executor)
            )
    return change


def _where(step_number: int | None) -> str:
    return f"step {step_number}" if step_number else "Diagnosis"


def _parsed_commands(playbook: rb.Playbook) -> Iterable[tuple[str, rb.Command]]:
    for command in playbook.diagnosis_commands:
        yield "Diagnosis", command
    for step in playbook.steps:
        for command in step.commands:
            yield _where(step.number), command


def _by_text(
    commands: Iterable[tuple[str, str, str, str]],
) -> dict[str, tuple[str, str, str]]:
    """Commands by their text (the first one, when a text repeats)."""
    found: dict[str, tuple[str, str, str]] = {}
    for text, kind, executor, where in commands:
        found.setdefault(text, (kind, executor, where))
    return found


def _grants(
    old: dict[str, Playbook], *, kept: set[str]
) -> tuple[list[Grant], list[Grant]]:
    """The per-playbook grants on the current revision: those `carry_grants` copies
    to the new revision (their playbook's slug is kept) and those left behind."""
    slug_of = {str(p.pk): slug for slug, p in old.items()}
    on_these = {
        "content_type": ContentType.objects.get_for_model(Playbook),
        "object_pk__in": list(slug_of),
    }
    rows = [
        (slug_of[pk], "person", name, codename)
        for pk, codename, name in UserObjectPermission.objects.filter(
            **on_these
        ).values_list("object_pk", "permission__codename", "user__username")
    ] + [
        (slug_of[pk], "group", name, codename)
        for pk, codename, name in GroupObjectPermission.objects.filter(
            **on_these
        ).values_list("object_pk", "permission__codename", "group__name")
    ]
    grants = sorted(Grant(*row) for row in rows)
    return (
        [g for g in grants if g.playbook in kept],
        [g for g in grants if g.playbook not in kept],
    )


class RevisionMoved(Exception):
    """What the person reviewed is no longer what the import would do: the
    runbook's current revision changed, or the upload is now read differently."""


def import_reviewed(
    *,
    tree: RunbookSource,
    actor: Actor,
    reviewed: tuple[int, str] | None,
    reading: str | None = None,
    via: str = "upload",
) -> ImportResult:
    """Import `tree` only if the runbook's current revision is still `reviewed`
    ((pk, sha256), or None for "no revision yet") and, given `reading`, the
    upload is still read as it was (`reading_of`), with the diff in the audit
    event. The revisions are locked while comparing, so no other import slips in
    between the check and the import. Raises RevisionMoved otherwise (and
    RunbookError, PermissionDenied as import_runbook does); writes nothing then."""
    # Checked before the transaction, so a denial's record is not rolled back.
    access.check(actor, access.IMPORT_RUNBOOKS, systems=IMPORTERS)
    parsed = tree.parse()
    if reading is not None and reading_of(parsed) != reading:
        raise RevisionMoved(runbook_key(parsed))
    key = runbook_key(parsed)
    with transaction.atomic():
        revisions = Runbook.objects.select_for_update().filter(key=key)
        current = [
            (r.pk, r.sha256)
            for r in revisions.only("pk", "sha256", "is_current")
            if r.is_current
        ]
        if (current[0] if current else None) != (tuple(reviewed) if reviewed else None):
            raise RevisionMoved(key)
        diff = diff_runbook(parsed)
        return import_runbook(
            tree=tree,
            actor=actor,
            audit_data={"diff": diff.summary(), "via": via},
        )
