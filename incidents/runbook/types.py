"""The parsed runbook as plain dataclasses (no Django), and the importer's error."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from probes import commands
from probes.binding import ACTION, KINDS, MANUAL, PROBE, Binding

# Bump when the parser reads the same file differently: re-importing an unchanged
# file then makes a new revision instead of keeping the old reading.
PARSER_VERSION = 4

__all__ = ["ACTION", "KINDS", "MANUAL", "PROBE", "Binding"]

# The longest text each length-limited column holds. Defined here, once: the models
# use them as their max_length and the parser checks every field against them, so a
# dry run and an import always agree (PostgreSQL refuses what does not fit).
RUNBOOK_KEY_MAX = 200  # the slug of the runbook's title
RUNBOOK_TITLE_MAX = 300
RUNBOOK_VERSION_MAX = 50
SOURCE_NAME_MAX = 500
PLAYBOOK_SLUG_MAX = 200
PLAYBOOK_TITLE_MAX = 300
PLAYBOOK_ANCHOR_MAX = 300
SEVERITY_MAX = 30
SEVERITY_NOTE_MAX = 300
SEVERITY_TEXT_MAX = 100  # the severity as the runbook wrote it (`🔴 High`, `SEV-1`)
PATH_MAX = 500  # a playbook's file, relative to the imported directory
STEP_TITLE_MAX = 500
LANGUAGE_MAX = 30
EXECUTOR_MAX = 20


class RunbookError(ValueError):
    """A runbook that cannot be imported; always names the line at fault, and the
    file (relative to the imported directory) when there are several."""

    def __init__(self, message: str, line: int = 1, path: str = "") -> None:
        super().__init__(f"line {line}: {message}")
        self.message = message
        self.line = line
        self.path = path

    def where(self, default: str = "") -> str:
        """`PATH:LINE` (the form editors and terminals jump to)."""
        return f"{self.path or default or '<runbook>'}:{self.line}"


class NotARunbook(RunbookError):
    """A Markdown file that holds no playbook at all (an index page, a README, a
    template): refused on its own, skipped (and listed) in a directory import."""


@dataclass
class Command:
    """One runnable or copyable command found in a code block or inline code."""

    language: str
    text: str
    line: int
    kind: str = MANUAL
    executor: str | None = None
    parameters: list[str] = field(default_factory=list)
    variables: list[str] = field(default_factory=list)
    spec: dict[str, Any] = field(default_factory=dict)
    comment: str = ""  # a trailing comment on the command's own line
    context: str = ""  # comment lines just before it in its block
    after: str = ""  # comments or sample output after it (end of block)
    block: int | None = None  # index of its code block in the step; None = inline

    @property
    def requires_approval(self) -> bool:
        return commands.needs_approval(self)

    def bind(self, binding: Binding) -> None:
        self.kind = binding.kind
        self.executor = binding.executor
        self.parameters = binding.parameters
        self.variables = binding.variables
        self.spec = binding.spec

    def to_contract(self) -> dict[str, Any]:
        return {
            "language": self.language,
            "text": self.text,
            "kind": self.kind,
            "executor": self.executor,
            "parameters": list(self.parameters),
        }


@dataclass
class Section:
    """Context the parser keeps as Markdown: Impact, Symptoms, unknown headings."""

    title: str
    markdown: str
    line: int


@dataclass
class Step:
    number: int
    title: str
    body: str
    line: int
    links: list[int] = field(default_factory=list)
    commands: list[Command] = field(default_factory=list)

    def to_contract(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "title": self.title,
            "links": list(self.links),
            "commands": [c.to_contract() for c in self.commands],
        }


@dataclass
class Playbook:
    number: int
    title: str
    slug: str
    anchor: str
    line: int
    alerts: list[str] = field(default_factory=list)
    alert_condition: str = ""
    severity: str = ""  # the console's level: critical, high, warning, info or ""
    severity_text: str = ""  # as the runbook wrote it
    severity_note: str = ""
    path: str = ""  # the file, relative to the imported directory
    escalation: list[str] = field(default_factory=list)
    context: list[Section] = field(default_factory=list)
    diagnosis: str = ""
    diagnosis_commands: list[Command] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)

    @property
    def commands(self) -> list[Command]:
        return self.diagnosis_commands + [c for s in self.steps for c in s.commands]

    def to_contract(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "slug": self.slug,
            "title": self.title,
            "alerts": list(self.alerts),
            "severity": self.severity,
            "severity_text": self.severity_text,
            "path": self.path,
            "escalation": list(self.escalation),
            "diagnosis": [c.to_contract() for c in self.diagnosis_commands],
            "steps": [s.to_contract() for s in self.steps],
        }


@dataclass
class Runbook:
    title: str
    version: str
    sha256: str
    preamble: str = ""
    sections: list[Section] = field(default_factory=list)
    playbooks: list[Playbook] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # What the importer read but did not understand as a runbook part, each
    # `PATH:LINE: what and how it was read`: the import summary always lists them.
    not_understood: list[str] = field(default_factory=list)
    # How the file was read (`numbered playbooks`, `one alert per file`, ...); for
    # a directory, one entry per file: {path, sha256, shape, playbooks, skipped}.
    shape: str = ""
    files: list[dict[str, Any]] = field(default_factory=list)

    def to_contract(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "version": self.version,
            "sha256": self.sha256,
            "shape": self.shape,
            "playbooks": [p.to_contract() for p in self.playbooks],
            "not_understood": list(self.not_understood),
            **({"files": [dict(f) for f in self.files]} if self.files else {}),
        }
