"""Names in a command's text: `${NAME}` target variables, `{name}` and `/:name`
parameters, and the words that make an action need a second person."""

from __future__ import annotations

import re

VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# `{userId}`, `{previous-sha}`, but never `${NAME}` (a target variable) or JSON.
BRACE_PARAM = re.compile(r"(?<![$\w{])\{([A-Za-z_][\w.-]*)\}(?!\})")
PATH_PARAM = re.compile(r"(?:^|/):([A-Za-z_]\w*)")
# Actions that delete, drop, truncate, terminate backends or revoke sessions need a
# second person by default (an admin can change it per command). Each family looks
# for these words in what it sends.
DESTRUCTIVE = re.compile(
    r"\b(DELETE|DROP|TRUNCATE)\b|pg_terminate_backend|revoke|FLUSHALL|FLUSHDB", re.I
)


def unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def variables_in(text: str) -> list[str]:
    return unique(VARIABLE.findall(text))


def brace_parameters(text: str) -> list[str]:
    return unique(BRACE_PARAM.findall(text))


def target_of(value: str | None, default: str) -> str:
    """`"${DATABASE_URL}"` -> DATABASE_URL; anything else keeps the default name."""
    if value and (m := VARIABLE.fullmatch(value.strip())):
        return m.group(1)
    return default
