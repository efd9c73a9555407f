"""What the engine does with a bound command, whatever its family: the text a person
sees (parameters filled, `${NAME}` left as the name, secrets masked), the word an
action asks them to type, the targets it needs, whether a second person must
approve it, whether the values given can run it, and running it."""

from __future__ import annotations

import re

from . import redaction, targets
from .binding import ACTION, PROBE, CommandLike
from .families import family
from .runtime import Context, Result, apply_filter, substitute


def display_text(command: CommandLike, params: dict[str, str] | None = None) -> str:
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
    if command.executor:
        text = family(command.executor).display(command, params, text)
    return redaction.redact(text)


def parameter_problem(command: CommandLike, params: dict[str, str]) -> str | None:
    """Why these values cannot run this command, in words; None when they can.
    Asked when the run is requested and previewed, so a value the runner would
    refuse (a pid that is not a number) never waits for an approval first."""
    if not command.executor:
        return None
    return family(command.executor).parameter_problem(command, params)


# A parameter whose name alone says little (`/sources/:id`) is known by the
# resource it names instead: `sourceid` or `source_id`, never any `id` column.
GENERIC_NAMES = frozenset({"id", "uuid"})


def parameter_columns(command: CommandLike) -> dict[str, frozenset[str]]:
    """For each parameter, the result-column names (lower case) whose values it
    takes: its own name; what the runbook compares a `$n` with (`userid = $1`);
    for a generic name in a URL path, the resource before it (`/sources/:id` ->
    `sourceid`, `source_id`). A parameter no column can name is left out."""
    hints = command.spec.get("parameter_hints") or {}
    found: dict[str, frozenset[str]] = {}
    for name in command.parameters:
        names = set()
        if not name.startswith("$"):
            names.add(name.lower())
        if hint := hints.get(name):
            names.add(str(hint).lower())
        if name.lower() in GENERIC_NAMES:
            names = {n for n in names if n not in GENERIC_NAMES}
            place = (
                rf"/([A-Za-z][\w-]*)/(?:\{{{re.escape(name)}\}}|:{re.escape(name)}\b)"
            )
            for m in re.finditer(place, command.text):
                resource = m.group(1).lower().replace("-", "_")
                resource = resource[:-1] if resource.endswith("s") else resource
                names |= {f"{resource}{name.lower()}", f"{resource}_{name.lower()}"}
        if names:
            found[name] = frozenset(names)
    return found


def confirm_word(command: CommandLike) -> str:
    """A short word from the command itself, typed to confirm an action."""
    return family(command.executor).confirm_word(command) if command.executor else "run"


def heavy_reason(command: CommandLike) -> str:
    """Why this probe, although it only reads, may hurt production (`KEYS *`, a
    whole-table scan): "" for a probe that should not, and for anything that is
    not a probe (an action has its own preview and confirmation). The family put
    the reason in the spec when it recognised the command."""
    if command.kind != PROBE or not command.executor:
        return ""
    return str(command.spec.get("heavy") or "")


def needs_approval(command: CommandLike) -> bool:
    """Whether an action needs a second person by default (an admin can change it
    per command): the family decides from what the command sends."""
    if command.kind != ACTION or not command.executor:
        return False
    return family(command.executor).needs_approval(command)


def missing_targets(command: CommandLike) -> list[str]:
    """TARGET_* variables this command needs that are not set (never their values)."""
    needed = list(command.variables)
    if command.executor:
        needed += family(command.executor).targets(command)
    return [
        targets.PREFIX + n for n in dict.fromkeys(needed) if targets.value(n) is None
    ]


def run(command: CommandLike, params: dict[str, str], ctx: Context) -> Result:
    """Run a bound command through its family. Raises TargetMissing or
    ParameterError before anything is sent; every other failure is a Result. A
    `| grep` the runbook wrote after the command filters what it printed."""
    result = family(command.executor).run(command, params, ctx)
    if rule := command.spec.get("filter"):
        result.output = apply_filter(result.output, rule)
        result.structured = {}  # the data would show what the filter left out
    return result
