"""Severity words -> the console's four levels (critical, high, warning, info).

Runbooks and alerts write severities many ways (`P1`, `SEV-1`, `` `critical` ``,
`🔴 High`). The built-in aliases below cover the common ones; an Admin adds more
(incidents.models.SeverityAlias), which callers pass in as `extra`."""

from __future__ import annotations

from collections.abc import Mapping

LEVELS = ("critical", "high", "warning", "info")

BUILTIN: dict[str, str] = {
    **dict.fromkeys(
        ["critical", "crit", "fatal", "emergency", "page", "blocker", "p0", "p1"]
        + ["sev0", "sev1", "sev-0", "sev-1", "sev 0", "sev 1", "s0", "s1"],
        "critical",
    ),
    **dict.fromkeys(["high", "error", "major", "urgent"], "high"),
    **dict.fromkeys(
        ["warning", "warn", "medium", "moderate", "minor", "p2", "p3", "sev2"]
        + ["sev3", "sev-2", "sev-3", "sev 2", "sev 3", "s2", "s3"],
        "warning",
    ),
    **dict.fromkeys(
        ["info", "informational", "notice", "low", "none", "p4", "p5", "sev4"]
        + ["sev-4", "sev 4", "s4"],
        "info",
    ),
}


def _word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def clean(text: str) -> str:
    """The alias key a written severity is looked up by: emoji, bullets, quotes and
    markup around the word dropped (`🔴 High`, `**critical**`), spaces collapsed.
    (Scanned by hand: a regex for "non-word characters at the end" is searched
    from every position of a long run of them.)"""
    start = next((i for i, ch in enumerate(text) if _word(ch)), len(text))
    end = next((i for i in range(len(text), start, -1) if _word(text[i - 1])), start)
    return " ".join(text[start:end].split()).lower()


def level_of(text: str, extra: Mapping[str, str] | None = None) -> str:
    """The console's level for a written severity, or "" when no alias knows it.
    The whole text is tried first (`sev 1`), then its first word (`High (paged)`)."""
    key = clean(text)
    if not key:
        return ""
    aliases = {**BUILTIN, **(extra or {})}
    if key in aliases:
        return aliases[key]
    first = key.split(" ", 1)[0]
    return aliases.get(first, "")
