"""Show an action's blast radius before anyone confirms it.

SQL that changes rows runs inside a transaction that is always rolled back, and the
preview reports how many rows it would change and the first of them. Statements that
cannot be previewed that way (VACUUM, DROP, TRUNCATE, signalling a backend) get what
is known instead: the table's size and row estimate, or the backend's activity. HTTP
actions show the exact request (secrets masked); redis and migrate actions the exact
command and the current state."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import psycopg

from incidents.models import Command
from incidents.runbook.split import split_sql

from . import redaction, targets
from .executors.base import Context, ParameterError, table
from .executors.http import request_parts, shown_parts
from .executors.sql import _renumber, _values_for, bind, connect
from .targets import TargetMissing

ROW_CHANGING = re.compile(r"^\s*(UPDATE|DELETE|INSERT)\b", re.I)
TABLE_AFTER = re.compile(
    r"^\s*(?:DROP\s+TABLE(?:\s+IF\s+EXISTS)?|VACUUM(?:\s+FULL)?(?:\s+ANALYZE)?|"
    r"TRUNCATE(?:\s+TABLE)?|ANALYZE|REINDEX\s+TABLE|CLUSTER)\s+([\w.\"]+)",
    re.I,
)
SIGNALS = re.compile(r"pg_(cancel|terminate)_backend\s*\(\s*\$(\d+)", re.I)


@dataclass
class Preview:
    possible: bool  # did we see the exact effect (a rolled-back run)?
    headline: str
    detail: str = ""
    rows: int | None = None
    facts: list[str] = field(default_factory=list)


def preview(command: Command, params: dict[str, str]) -> Preview:
    """What the action would do. Every line of it passes through redaction here,
    at the one way out: a preview is shown and its headline stored in the audit
    log, so nothing derived from a target value may leave unmasked."""
    shown = _preview(command, params)
    shown.headline = redaction.redact(shown.headline)
    shown.detail = redaction.redact(shown.detail)
    shown.facts = [redaction.redact(f) for f in shown.facts]
    return shown


def _preview(command: Command, params: dict[str, str]) -> Preview:
    try:
        if command.executor == "sql":
            return _sql(command, params)
        if command.executor == "http":
            return _http(command, params)
        if command.executor == "redis":
            args = " ".join(command.spec.get("args", []))
            return Preview(
                False,
                f"Will send to Redis: {args}",
                facts=[f"target: TARGET_{command.spec.get('target', 'REDIS_URL')}"],
            )
        if command.executor == "migrate":
            return _migrate(command)
    except (TargetMissing, ParameterError) as exc:
        return Preview(False, f"No preview: {exc}")
    except psycopg.Error as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return Preview(
            False, f"No preview: the database said {redaction.redact(first)}"
        )
    return Preview(False, "No preview is possible for this kind of command.")


def _sql(command: Command, params: dict[str, str]) -> Preview:
    sql, values = bind(command.spec["sql"], command.parameters, params)
    statements = [p.text for p in split_sql(sql).pieces]
    ctx = Context.from_settings()
    with connect(command.spec, ctx) as conn:
        conn.autocommit = True
        conn.execute(f"SET statement_timeout = {int(ctx.remaining() * 1000)}")
        conn.execute("SET lock_timeout = 3000")
        if all(ROW_CHANGING.match(s) for s in statements):
            return _rolled_back(conn, statements, values)
        return _known_facts(conn, statements, values)


def _rolled_back(conn, statements: list[str], values: list) -> Preview:  # noqa: ANN001
    total, shown = 0, []
    tx = conn.transaction(force_rollback=True)  # never commits, whatever happens
    with tx:
        for statement in statements:
            text = _renumber(statement).rstrip().rstrip(";")
            if not re.search(r"\bRETURNING\b", text, re.I):
                text += " RETURNING *"
            cur = psycopg.RawCursor(conn)
            cur.execute(text, _values_for(statement, values) or None)
            rows = cur.fetchmany(10)
            total += max(cur.rowcount, 0)
            if cur.description:
                shown.append(table([d.name for d in cur.description], rows, limit=10))
    noun = "row" if total == 1 else "rows"
    return Preview(
        True,
        f"Would change {total} {noun} (tried in a transaction that was rolled back).",
        redaction.redact("\n\n".join(shown)),
        rows=total,
    )


def _known_facts(conn, statements: list[str], values: list) -> Preview:  # noqa: ANN001
    facts = []
    for statement in statements:
        if m := TABLE_AFTER.match(statement):
            name = m.group(1)
            row = conn.execute(
                "SELECT pg_size_pretty(pg_total_relation_size(c.oid)), c.reltuples::bigint "
                "FROM pg_class c WHERE c.oid = to_regclass(%s)",
                [name],
            ).fetchone()
            if row:
                facts.append(
                    f"{name}: {row[0]} on disk, about {max(row[1], 0)} rows (estimate)"
                )
            else:
                facts.append(f"{name}: no such table (nothing to do)")
        for signal, index in SIGNALS.findall(statement):
            pid = values[int(index) - 1] if int(index) - 1 < len(values) else None
            row = conn.execute(
                "SELECT usename, state, now() - query_start, left(query, 200) "
                "FROM pg_stat_activity WHERE pid = %s",
                [pid],
            ).fetchone()
            if row:
                facts.append(
                    f"backend {pid}: user {row[0]}, {row[1]} for {row[2]}, running: {row[3]}"
                )
            else:
                facts.append(
                    f"backend {pid}: not found (the {signal} would do nothing)"
                )
    return Preview(
        False,
        "No preview possible: this statement cannot be tried and rolled back.",
        facts=[redaction.redact(f) for f in facts],
    )


def _http(command: Command, params: dict[str, str]) -> Preview:
    """The request as the runbook writes it (`${NAME}` left as the name, the
    runbook's host), and where TARGET_HOSTS sends it. The real request is built
    only to check it can be (every target configured), and never shown."""
    request_parts(command.spec, params)  # raises TargetMissing if one is unset
    method, url, headers, body = shown_parts(command.spec, params)
    lines = [f"{method} {url}"] + [f"{k}: {v}" for k, v in headers.items()]
    if body is not None:
        lines += ["", body]
    facts = []
    runbook_host = urlsplit(url).hostname
    if not command.spec.get("base_variable") and runbook_host:
        base = targets.host_map().get(runbook_host.lower())
        if base:
            facts.append(f"{runbook_host} is reached at {base} (TARGET_HOSTS)")
    elif command.spec.get("base_variable"):
        name = command.spec["base_variable"]
        facts.append(f"${{{name}}} is the base URL in TARGET_{name}")
    return Preview(False, f"Will send {method} {url}", "\n".join(lines), facts=facts)


def _migrate(command: Command) -> Preview:
    dsn = targets.require(command.spec.get("target") or "DATABASE_URL")
    with psycopg.connect(dsn, connect_timeout=3) as conn:
        # A preview runs in the web request: a table locked by a migration must
        # not hold it.
        conn.execute("SET statement_timeout = 3000")
        row = conn.execute(
            "SELECT version, dirty FROM schema_migrations LIMIT 1"
        ).fetchone()
    now = f"{row[0]}{' (dirty)' if row[1] else ''}" if row else "no version"
    return Preview(
        False,
        f"schema_migrations is at {now}; will become "
        f"{command.spec.get('argument')}, dirty=false (no SQL runs)",
    )
