"""Pure-Python runbook importer: Markdown in, dataclasses out. No Django imports."""

from .parse import parse_runbook
from .types import (
    ACTION,
    KINDS,
    MANUAL,
    PARSER_VERSION,
    PROBE,
    Command,
    Playbook,
    Runbook,
    RunbookError,
    Section,
    Step,
)

__all__ = [
    "PARSER_VERSION",
    "ACTION",
    "KINDS",
    "MANUAL",
    "PROBE",
    "Command",
    "Playbook",
    "Runbook",
    "RunbookError",
    "Section",
    "Step",
    "parse_runbook",
]
