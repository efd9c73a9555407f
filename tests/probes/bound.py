"""A command as recognition binds it, without the console's database: what the
engine's tests hand to `probes.commands.run` and the families."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from probes.recognise import recognise


@dataclass
class Cmd:
    """A bound command as the engine reads it (the CommandLike protocol)."""

    text: str
    kind: str
    executor: str | None
    parameters: list[str] = field(default_factory=list)
    variables: list[str] = field(default_factory=list)
    spec: dict[str, Any] = field(default_factory=dict)


def bind(text: str, language: str = "bash") -> Cmd:
    """`text` recognised as a runbook's shell (or SQL) line would be."""
    found = recognise(text, language)
    return Cmd(
        text, found.kind, found.executor, found.parameters, found.variables, found.spec
    )
