"""Show an action's blast radius before anyone confirms it: the family says what it
would do (SQL tried in a transaction that is rolled back, the exact HTTP request,
the Redis command, the migration version), and everything it says is masked here,
at the one way out."""

from __future__ import annotations

from . import redaction
from .binding import CommandLike
from .families import family
from .family import Preview
from .runtime import Context, ParameterError
from .targets import TargetMissing

__all__ = ["Preview", "preview"]


def preview(
    command: CommandLike, params: dict[str, str], ctx: Context | None = None
) -> Preview:
    """What the action would do. Every line of it passes through redaction here:
    a preview is shown and its headline stored in the audit log, so nothing
    derived from a target value may leave unmasked."""
    shown = _preview(command, params, ctx or Context())
    shown.headline = redaction.redact(shown.headline)
    shown.detail = redaction.redact(shown.detail)
    shown.facts = [redaction.redact(f) for f in shown.facts]
    shown.nothing = redaction.redact(shown.nothing)
    return shown


def _preview(command: CommandLike, params: dict[str, str], ctx: Context) -> Preview:
    if not command.executor:
        return Preview(False, "A manual command: nothing here runs it.")
    try:
        return family(command.executor).preview(command, params, ctx)
    except (TargetMissing, ParameterError) as exc:
        return Preview(False, f"No preview: {exc}")
