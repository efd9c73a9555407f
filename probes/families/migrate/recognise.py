"""golang-migrate: `migrate ... version` is a probe; force/up/down/goto/drop actions."""

from __future__ import annotations

from ...binding import ACTION, MANUAL, PROBE, Binding
from ...text import brace_parameters, target_of, unique, variables_in


def recognise_migrate(tokens: list[str], text: str) -> Binding:
    target, path = "DATABASE_URL", None
    rest: list[str] = []
    it = iter(tokens[1:])
    for tok in it:
        if tok in {"-database", "--database"}:
            target = target_of(next(it, ""), "DATABASE_URL")
        elif tok in {"-path", "--path", "-source", "--source"}:
            path = next(it, "")
        elif tok.startswith("-"):
            continue
        else:
            rest.append(tok)
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
