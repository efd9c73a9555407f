"""What recognition produces and what the engine reads back from a stored command."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

PROBE = "probe"
ACTION = "action"
MANUAL = "manual"
KINDS = (PROBE, ACTION, MANUAL)


@dataclass
class Binding:
    """What a command is bound to: its kind, family and the inputs it needs."""

    kind: str = MANUAL
    executor: str | None = None  # the family's name; None for manual commands
    parameters: list[str] = field(default_factory=list)
    variables: list[str] = field(default_factory=list)
    spec: dict[str, Any] = field(default_factory=dict)


class CommandLike(Protocol):
    """A bound command as the engine needs it: the parser's dataclass and the
    console's model both answer this."""

    text: str
    kind: str
    executor: str | None
    parameters: list[str]
    variables: list[str]
    spec: dict[str, Any]
