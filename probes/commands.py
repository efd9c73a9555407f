"""What a person sees of a command before and after running it: the runbook's text
with parameters filled, `${NAME}` left as the name and secrets masked, and the word
an action asks them to type."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from incidents.models import Command

from . import redaction, targets
from .executors.base import ParameterError, substitute
from .executors.sql import bind


def display_text(command: Command, params: dict[str, str] | None = None) -> str:
    """The runbook's text with the parameters filled in, every secret masked. It is
    stored with the run and shown in the timeline and the exports, so nothing in it
    comes from a target value: `${NAME}` stays the name, and the runbook's hosts stay
    the runbook's (TARGET_HOSTS is where they are sent, not what was asked)."""
    params = params or {}
    text = substitute(command.text, params)
    positional = {k: v for k, v in params.items() if k.startswith("$")}
    if positional:
        bound = ", ".join(f"{k} = {v!r}" for k, v in sorted(positional.items()))
        text += f"\n-- bound: {bound}"
    named = {
        k: v
        for k, v in params.items()
        if not k.startswith("$")
        and f"{{{k}}}" not in command.text
        and f":{k}" not in command.text
    }
    if named and command.executor == "sql":
        text += "\n-- bound: " + ", ".join(
            f"{k} = {v!r}" for k, v in sorted(named.items())
        )
    return redaction.redact(text)


def parameter_problem(command: Command, params: dict[str, str]) -> str | None:
    """Why these values cannot run this command, in words; None when they can.
    Asked when the run is requested and previewed, so a value the executor would
    refuse (a pid that is not a number) never waits for an approval first."""
    if command.executor == "sql":
        try:
            bind((command.spec or {}).get("sql", ""), command.parameters, params)
        except ParameterError as exc:
            return str(exc)
    return None


def confirm_word(command: Command) -> str:
    """A short word from the command itself, typed to confirm an action."""
    spec = command.spec or {}
    if command.executor == "sql":
        calls = re.findall(r"pg_(cancel|terminate)_backend", spec.get("sql", ""), re.I)
        if calls:
            return calls[0].lower()
        first = spec.get("sql", "").split(None, 1)
        return first[0].lower() if first else "run"
    if command.executor == "http":
        # The last real path segment: "revoke-all", "pause", "reset-stuck".
        path = urlsplit(spec.get("url", "")).path
        segments = [
            seg for seg in path.split("/") if re.fullmatch(r"[A-Za-z][A-Za-z-]*", seg)
        ]
        segments = [seg for seg in segments if seg not in {"api", "admin"}]
        return (segments[-1] if segments else spec.get("method", "run")).lower()
    if command.executor == "redis":
        return str(spec.get("command", "run")).split()[0].lower()
    if command.executor == "migrate":
        return str(spec.get("subcommand", "run"))
    return "run"


def missing_targets(command: Command) -> list[str]:
    """TARGET_* variables this command needs that are not set (never their values)."""
    needed = list(command.variables)
    if command.executor == "sql" or command.executor == "migrate":
        needed.append(command.spec.get("target") or "DATABASE_URL")
    if command.executor == "redis":
        needed.append(command.spec.get("target") or "REDIS_URL")
    return [
        targets.PREFIX + n for n in dict.fromkeys(needed) if targets.value(n) is None
    ]
