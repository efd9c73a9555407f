"""Running the bundled runbook's commands straight through the engine (no Celery,
no console database), as the worker would."""

from __future__ import annotations

from incidents.runbook import Command, parse_runbook
from probes import commands
from probes.runtime import Context, Result
from tests.conftest import YOMIRA_RUNBOOK


def runbook_commands() -> list[tuple[int, int | None, Command]]:
    """(playbook, step or None for diagnosis, command) in runbook order."""
    found = []
    for playbook in parse_runbook(YOMIRA_RUNBOOK.read_bytes()).playbooks:
        found += [(playbook.number, None, c) for c in playbook.diagnosis_commands]
        for step in playbook.steps:
            found += [(playbook.number, step.number, c) for c in step.commands]
    return found


def command(playbook: int, starts: str, step: int | None = None) -> Command:
    for number, at, found in runbook_commands():
        same_step = step is None or at == step
        if number == playbook and found.text.startswith(starts) and same_step:
            return found
    raise LookupError(f"no command in §{playbook} starting {starts!r}")


def run(playbook: int, starts: str, params: dict | None = None, **kw: object) -> Result:
    found = command(playbook, starts, **kw)
    return commands.run(found, params or {}, Context(connect_timeout=3, timeout=15))
