"""The protocol every command family answers, and the small types it speaks in.

A family is one folder under `probes/families/<name>/` whose `__init__.py` exposes
`FAMILY`, an object with every member below. The engine asks the family, never a
table of `if executor == ...`: a family that forgot a part fails the protocol test
(tests/probes/test_families.py) instead of quietly falling back to the confirm word
"run" or to "No preview is possible"."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from .binding import Binding, CommandLike
from .runtime import Context, Result


@dataclass(frozen=True)
class Call:
    """One shell command as the dispatcher read it: the program's tokens with any
    `sudo`, `VAR=value` or `docker compose exec SERVICE` wrapper taken off, the
    command's whole text, the compose service it ran in, and the `| grep` filter its
    output went through (the engine applies that filter, not the family)."""

    tokens: list[str]
    text: str
    service: str | None = None
    grep: dict[str, Any] | None = None

    @property
    def program(self) -> str:
        return self.tokens[0]


@dataclass
class Preview:
    possible: bool  # did we see the exact effect (a rolled-back run)?
    headline: str
    detail: str = ""
    rows: int | None = None
    facts: list[str] = field(default_factory=list)
    # Why running it now would change nothing ("no backend has pid 4242", "no row
    # matches"): set only when the preview is sure. The console then offers no Run
    # and refuses one.
    nothing: str = ""


@runtime_checkable
class Family(Protocol):
    name: str  # the value stored in Command.executor
    label: str  # for people: "SQL statement (PostgreSQL)"
    programs: frozenset[str]  # shell programs whose commands it reads: {"curl"}
    languages: frozenset[str]  # code-fence languages it reads whole: {"sql"}
    # Texts it must recognise as its own (language, text); the protocol test runs
    # every member below on each of them.
    examples: tuple[tuple[str, str], ...]

    def recognise(self, call: Call) -> Binding | None:
        """A shell command whose program is in `programs`: its binding, a manual
        binding (recognised but not runnable), or None (not this family's)."""

    def recognise_text(self, text: str, language: str) -> Binding | None:
        """A whole text in one of `languages`, or a line that is a command with no
        program name (`PATCH /admin/x`, `SELECT 1;`); `language` is the fence's,
        "inline" for inline code, "comment" for a comment line."""

    def settle(self, bindings: list[Binding]) -> None:
        """A last pass over all of a runbook's bindings once each is recognised
        (HTTP gives path-only requests the base URL the runbook's curls use).
        Bindings of other families are in the list too: skip them."""

    def run(self, command: CommandLike, params: dict[str, str], ctx: Context) -> Result:
        """Run it against the target. Never raises: a failure is a Result."""

    def preview(
        self, command: CommandLike, params: dict[str, str], ctx: Context
    ) -> Preview:
        """What an action would do, before anyone confirms it. May raise
        TargetMissing, ParameterError or the client's own error: the engine turns
        those into a "No preview" line."""

    def confirm_word(self, command: CommandLike) -> str:
        """A short word from the command itself, typed to confirm an action."""

    def targets(self, command: CommandLike) -> list[str]:
        """The `${NAME}` target variables it needs beyond those in its text."""

    def needs_approval(self, command: CommandLike) -> bool:
        """Whether an action needs a second person by default (an admin can change
        it per command)."""

    def parameter_problem(
        self, command: CommandLike, params: dict[str, str]
    ) -> str | None:
        """Why these values cannot run it, in words; None when they can."""

    def display(self, command: CommandLike, params: dict[str, str], text: str) -> str:
        """The text shown and stored for a run, given the runbook's text with the
        parameters filled in (`text`): e.g. SQL notes the values it bound."""


class BaseFamily(ABC):
    """What a family must say for itself is abstract: how it recognises and runs a
    command, its preview, confirm word, targets and approval policy. The four parts
    below have a neutral answer that is right for a family that does not need them
    (no bare lines to claim, nothing to settle, no values it refuses, nothing to add
    to the shown text); a family that needs one overrides it."""

    name: str
    label: str
    programs: frozenset[str] = frozenset()
    languages: frozenset[str] = frozenset()
    examples: tuple[tuple[str, str], ...] = ()

    @abstractmethod
    def recognise(self, call: Call) -> Binding | None: ...

    @abstractmethod
    def run(
        self, command: CommandLike, params: dict[str, str], ctx: Context
    ) -> Result: ...

    @abstractmethod
    def preview(
        self, command: CommandLike, params: dict[str, str], ctx: Context
    ) -> Preview: ...

    @abstractmethod
    def confirm_word(self, command: CommandLike) -> str: ...

    @abstractmethod
    def targets(self, command: CommandLike) -> list[str]: ...

    @abstractmethod
    def needs_approval(self, command: CommandLike) -> bool: ...

    def recognise_text(self, text: str, language: str) -> Binding | None:
        return None  # it reads only its programs' shell commands

    def settle(self, bindings: list[Binding]) -> None:
        return None  # nothing to settle across a runbook's commands

    def parameter_problem(
        self, command: CommandLike, params: dict[str, str]
    ) -> str | None:
        return None  # its runner takes any text as a value, safely

    def display(self, command: CommandLike, params: dict[str, str], text: str) -> str:
        return text
