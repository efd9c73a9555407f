"""A run's result as data, beside its text: an SQL result's columns and rows, an
HTTP answer's status, timing and headers. The console draws tables and pickers from
it, so it obeys the output's rules: every string redacted before it is kept, and
the whole bounded by the output cap.

Shapes (one key says which):
  {"tables": [{"columns": [...], "rows": [[str | None, ...]], "count": n,
               "status": "SELECT 3"}]}
  {"http": {"method": "GET", "status": 200, "reason": "OK", "elapsed_ms": 12.5,
            "headers": [[name, value], ...], "truncated": false}}
An HTTP answer's body is not kept twice: it is the output after the status line,
the headers and one blank line (see `http_body`)."""

from __future__ import annotations

import datetime
import json
from decimal import Decimal
from typing import Any

from . import redaction

# A cell longer than this is cut (its whole text was never needed to act on it;
# the text output keeps 80 characters of it).
CELL_CAP = 2000
CUT = "…"


def cell(value: Any) -> str | None:
    """A database value as a person reads it (None stays None: NULL, not "")."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()
    if isinstance(value, dict | list):
        return json.dumps(value, default=str, ensure_ascii=False)
    if isinstance(value, float | Decimal | int):
        return str(value)
    if isinstance(value, datetime.datetime):
        return value.isoformat(sep=" ")
    return str(value)


def secret_columns(columns: list[str]) -> set[int]:
    """Columns whose name says they hold a secret (`token`, `password`, `api_key`):
    their values are masked whole, as a JSON value under such a key is."""
    return {i for i, name in enumerate(columns) if redaction.SECRET_NAME.search(name)}


def masked_rows(columns: list[str], rows: list[tuple]) -> list[tuple]:
    """Rows with the values of secret-named columns masked whole (the text table
    and the data are both drawn from these)."""
    hidden = secret_columns(columns)
    if not hidden:
        return rows
    return [
        tuple(
            redaction.MASK if i in hidden and v not in (None, "") else v
            for i, v in enumerate(row)
        )
        for row in rows
    ]


def sql_table(columns: list[str], rows: list[tuple], status: str = "") -> dict:
    """One statement's rows as data, every cell redacted then cut."""
    return {
        "columns": [redaction.redact(c) for c in columns],
        "rows": [[_kept(cell(v)) for v in row] for row in masked_rows(columns, rows)],
        "count": len(rows),
        "status": status,
    }


def _kept(text: str | None) -> str | None:
    if text is None:
        return None
    text = redaction.redact(text)  # redact, then cut: a cut secret is not recognised
    return text if len(text) <= CELL_CAP else text[:CELL_CAP] + CUT


def safe(structured: dict | None, limit: int) -> dict:
    """What may be stored: every string redacted again (the one way out, as for the
    output), secret-named columns masked, rows dropped from the end until the whole
    fits in `limit` characters of JSON. Anything not in a known shape is dropped."""
    if not isinstance(structured, dict):
        return {}
    if isinstance(structured.get("tables"), list):
        tables = [_safe_table(t) for t in structured["tables"] if isinstance(t, dict)]
        return {"tables": _within(tables, limit)}
    if isinstance(structured.get("http"), dict):
        answer = structured["http"]
        return {
            "http": {
                "method": redaction.redact(str(answer.get("method", ""))),
                "status": _number(answer.get("status")),
                "reason": redaction.redact(str(answer.get("reason", ""))),
                "elapsed_ms": _number(answer.get("elapsed_ms")),
                "headers": [
                    [redaction.redact(str(h[0])), redaction.redact(str(h[1]))]
                    for h in answer.get("headers") or []
                    if isinstance(h, list | tuple) and len(h) == 2
                ][:200],
                "truncated": bool(answer.get("truncated")),
            }
        }
    return {}


def _safe_table(table: dict) -> dict:
    columns = [redaction.redact(str(c)) for c in table.get("columns") or []]
    hidden = secret_columns(columns)
    rows = [
        [
            redaction.MASK
            if i in hidden and v not in (None, "")
            else _kept(None if v is None else str(v))
            for i, v in enumerate(row)
        ]
        for row in table.get("rows") or []
        if isinstance(row, list)
    ]
    return {
        "columns": columns,
        "rows": rows,
        "count": _number(table.get("count")) or len(rows),
        "status": redaction.redact(str(table.get("status") or "")),
    }


def _within(tables: list[dict], limit: int) -> list[dict]:
    """Drop rows from the end (last table first) until the JSON fits `limit`."""
    size = len(json.dumps(tables, ensure_ascii=False))
    for table in reversed(tables):
        while size > limit and table["rows"]:
            dropped = table["rows"].pop()
            size -= len(json.dumps(dropped, ensure_ascii=False)) + 1
    return tables


def _number(value: Any) -> int | float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value if value == value and abs(value) != float("inf") else None


def http_head(status: str, headers: list[tuple[str, str]]) -> str:
    """The output's first lines: the status, one line per header, one blank line."""
    return "\n".join([f"HTTP {status}", *(f"{k}: {v}" for k, v in headers), "", ""])


def http_body(output: str, headers: int) -> str | None:
    """The body in an HTTP run's output, after its status line, `headers` header
    lines and one blank line; None when the output is not in that shape (a `| grep`
    filtered it, or the cap cut it inside the headers)."""
    lines = output.split("\n", headers + 2)
    if len(lines) < headers + 2 or not lines[0].startswith("HTTP "):
        return None
    if lines[headers + 1] != "":
        return None
    return lines[headers + 2] if len(lines) > headers + 2 else ""
