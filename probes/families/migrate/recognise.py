"""golang-migrate: `migrate ... version` is a probe; force/up/down/goto/drop actions."""

from __future__ import annotations

from ...binding import ACTION, MANUAL, PROBE, Binding
from ...text import brace_parameters, target_of, unique, variables_in

# golang-migrate's flags that take a value (Go's flag package: `-path x` or
# `-path=x`, one dash or two); the others (-verbose, -help) stand alone.
VALUED = {"database", "path", "source", "prefetch", "lock-timeout"}


def recognise_migrate(tokens: list[str], text: str) -> Binding:
    target, path = "DATABASE_URL", None
    rest: list[str] = []
    it = iter(tokens[1:])
    for tok in it:
        if not tok.startswith("-") or (rest and tok[1:].isdigit()):  # force -1
            rest.append(tok)
            continue
        name, has_value, value = tok.lstrip("-").partition("=")
        if name not in VALUED:
            continue
        if not has_value:
            value = next(it, "")
        if name == "database":
            target = target_of(value, "DATABASE_URL")
        elif name in {"path", "source"}:
            path = value
    if not rest or rest[0] not in {"version", "force", "up", "down", "goto", "drop"}:
        return Binding(MANUAL, None, brace_parameters(text), variables_in(text), {})
    sub, argument = rest[0], (rest[1] if len(rest) > 1 else None)
    spec = {"target": target, "subcommand": sub, "path": path}
    if argument is not None:
        spec["argument"] = argument
    kind = PROBE if sub == "version" else ACTION
    return Binding(
        kind,
        "migrate",
        brace_parameters(text),
        unique([target, *variables_in(text)]),
        spec,
    )
