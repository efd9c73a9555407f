"""What every executor shares: the run context (timeouts, output cap) and the result.
Executors never raise past the task: a failure is a Result a tired responder can read."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings


@dataclass
class Context:
    """Limits for one run. Every external call must finish before Celery's soft
    time limit, so the worker can still record the outcome."""

    connect_timeout: float = 3.0
    timeout: float = 15.0
    output_cap: int = 64 * 1024
    started: float = field(default_factory=time.monotonic)

    @classmethod
    def from_settings(cls) -> Context:
        return cls(
            connect_timeout=settings.EXECUTION_CONNECT_TIMEOUT,
            timeout=settings.EXECUTION_TIMEOUT,
            output_cap=settings.EXECUTION_OUTPUT_CAP,
        )

    def remaining(self) -> float:
        return max(0.1, self.timeout - (time.monotonic() - self.started))


@dataclass
class Result:
    ok: bool
    summary: str
    output: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    timed_out: bool = False


class ParameterError(ValueError):
    """A responder's parameter that cannot be used as given."""


def cap(text: str, limit: int) -> str:
    """Trim to `limit` bytes (UTF-8), saying how much was cut."""
    raw = text.encode("utf-8", "replace")
    if len(raw) <= limit:
        return text
    kept = raw[:limit].decode("utf-8", "ignore")
    return f"{kept}\n… output trimmed: {len(raw) - limit} more bytes not kept"


def table(columns: list[str], rows: list[tuple], limit: int = 200) -> str:
    """A plain-text table, like psql's, for a <pre>."""
    shown = [["" if v is None else str(v) for v in row] for row in rows[:limit]]
    widths = [len(c) for c in columns]
    for row in shown:
        widths = [max(w, min(len(v), 80)) for w, v in zip(widths, row, strict=False)]
    line = " | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=False))
    out = [line, "-+-".join("-" * w for w in widths)]
    for row in shown:
        out.append(
            " | ".join(v[:80].ljust(w) for v, w in zip(row, widths, strict=False))
        )
    more = f" (first {limit} shown)" if len(rows) > limit else ""
    out.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''}{more})")
    return "\n".join(out)


def substitute(text: str, params: dict[str, str], *, quote=None) -> str:  # noqa: ANN001
    """Put responder parameters into `{name}` and `/:name` places, quoted for where
    they go (URL paths are percent-encoded, so a value cannot add a path or host)."""
    import re

    quote = quote or (lambda v: v)

    def brace(m: re.Match) -> str:
        return quote(params[m.group(1)]) if m.group(1) in params else m.group(0)

    text = re.sub(r"(?<![$\w{])\{([A-Za-z_][\w.-]*)\}(?!\})", brace, text)
    return re.sub(
        r"(?<=/):([A-Za-z_]\w*)",
        lambda m: quote(params[m.group(1)]) if m.group(1) in params else m.group(0),
        text,
    )
