"""What comes before the Markdown is read: YAML front matter and HTML comments.

Both are blanked, not removed, so every line keeps its number (errors name lines)."""

from __future__ import annotations

from typing import Any

import yaml

from .types import RunbookError

FENCE_MARKERS = ("```", "~~~")
SCALARS = (str, int, float, bool)
# Front matter holds a few fields; more is not a runbook's header (and YAML
# aliases could make a small text a huge value).
FRONT_MATTER_MAX = 64 * 1024
LIST_MAX = 200


def _plain(value: Any) -> Any:
    """A scalar, or a flat list of scalars; anything else (mappings, nested lists,
    alias bombs) is dropped, never turned into text."""
    if isinstance(value, SCALARS):
        return value
    flat = isinstance(value, list) and len(value) <= LIST_MAX
    if flat and all(isinstance(v, SCALARS) for v in value):
        return value
    return None


def front_matter(lines: list[str]) -> dict[str, Any]:
    """Read and blank a leading `---` ... `---` YAML block (Hugo, Jekyll, MkDocs).
    Lines are blanked in place. A block that is not a mapping is refused."""
    if not lines or lines[0].strip() != "---":
        return {}
    for end in range(1, len(lines)):
        if lines[end].strip() in ("---", "..."):
            break
    else:
        return {}  # no closing line: a thematic break, not front matter
    text = "\n".join(lines[1:end])
    if len(text) > FRONT_MATTER_MAX:
        raise RunbookError(
            f"the front matter is {len(text)} characters long; at most "
            f"{FRONT_MATTER_MAX} are read (is the closing '---' missing?)",
            1,
        )
    try:
        data = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = (mark.line + 2) if mark is not None else 1
        reason = getattr(exc, "problem", None) or "it is not valid YAML"
        raise RunbookError(f"the front matter cannot be read: {reason}", line) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RunbookError(
            "the front matter between the '---' lines is not a list of 'key: value' "
            "fields",
            2,
        )
    for i in range(end + 1):
        lines[i] = ""
    return {
        str(k).lower(): plain
        for k, v in data.items()
        if (plain := _plain(v)) is not None
    }


def blank_html_comments(lines: list[str]) -> None:
    """`<!-- ... -->` outside code blocks is a note to the writer (licence headers,
    `<!--DS: downstream text-->` markers), not runbook text: blanked in place."""
    fence = ""
    inside = False
    for i, line in enumerate(lines):
        stripped = line.lstrip()
        if not inside:
            if fence:
                if stripped.startswith(fence) and not stripped.strip(fence[0]).strip():
                    fence = ""
                continue
            marker = next((m for m in FENCE_MARKERS if stripped.startswith(m)), "")
            if marker:
                run = len(stripped) - len(stripped.lstrip(marker[0]))
                fence = marker[0] * run
                continue
        out: list[str] = []
        at = 0
        while True:
            if inside:
                end = line.find("-->", at)
                if end == -1:
                    break
                inside, at = False, end + 3
            else:
                start = line.find("<!--", at)
                if start == -1:
                    out.append(line[at:])
                    break
                out.append(line[at:start])
                inside, at = True, start + 4
        lines[i] = "".join(out)


def field_list(value: Any) -> list[str]:
    """A front-matter field as a list of strings (`alert: X` or `alerts: [X, Y]`)."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value if str(v).strip()]
    return [part.strip() for part in str(value).split(",") if part.strip()]
