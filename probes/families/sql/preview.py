"""An SQL action's blast radius. Statements that change rows run inside a
transaction that is always rolled back, and the preview reports how many rows they
would change and the first of them. Statements that cannot be tried that way
(VACUUM, DROP, TRUNCATE, signalling a backend) get what is known instead: the
table's size and row estimate, or the backend's activity."""

from __future__ import annotations

import re

import psycopg

from ... import redaction
from ...binding import CommandLike
from ...family import Preview
from ...runtime import Context, table
from ...shell import split_sql
from ...tables import masked_rows
from .runner import _renumber, _values_for, bind, connect

ROW_CHANGING = re.compile(r"^\s*(UPDATE|DELETE|INSERT)\b", re.I)
TABLE_AFTER = re.compile(
    r"^\s*(?:DROP\s+TABLE(?:\s+IF\s+EXISTS)?|VACUUM(?:\s+FULL)?(?:\s+ANALYZE)?|"
    r"TRUNCATE(?:\s+TABLE)?|ANALYZE|REINDEX\s+TABLE|CLUSTER)\s+([\w.\"]+)",
    re.I,
)
SIGNALS = re.compile(r"pg_(cancel|terminate)_backend\s*\(\s*\$(\d+)", re.I)


def preview(command: CommandLike, params: dict[str, str], ctx: Context) -> Preview:
    sql, values = bind(command.spec["sql"], command.parameters, params)
    statements = [p.text for p in split_sql(sql).pieces]
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
                columns = [d.name for d in cur.description]
                shown.append(table(columns, masked_rows(columns, rows), limit=10))
    noun = "row" if total == 1 else "rows"
    return Preview(
        True,
        f"Would change {total} {noun} (tried in a transaction that was rolled back).",
        redaction.redact("\n\n".join(shown)),
        rows=total,
        nothing="" if total else "no row matches: it would change nothing",
    )


def _known_facts(conn, statements: list[str], values: list) -> Preview:  # noqa: ANN001
    facts = []
    # Backends a signal would reach that are not running, and whether every
    # statement is such a signal (only then is there surely nothing to act on).
    gone, only_signals = [], True
    for statement in statements:
        only_signals = only_signals and bool(SIGNALS.search(statement))
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
                facts.append(_backend_fact(pid, *row))
            else:
                gone.append(str(pid))
                facts.append(
                    f"backend {pid}: not found (the {signal} would do nothing)"
                )
    signals = sum(len(SIGNALS.findall(s)) for s in statements)
    nothing = ""
    if statements and only_signals and len(gone) == signals:
        pids = ", ".join(dict.fromkeys(gone))
        nothing = f"no backend has pid {pids} (not in pg_stat_activity)"
    return Preview(
        False,
        "No preview possible: this statement cannot be tried and rolled back.",
        facts=[redaction.redact(f) for f in facts],
        nothing=nothing,
    )


def _backend_fact(
    pid: object, user: str, state: str | None, since: object, query: str | None
) -> str:
    """One backend as a person reads it: a connection that never ran a query has
    no start time and no query, and says so instead of printing None."""
    fact = f"backend {pid}: user {user}, {state or 'no state'}"
    if since is not None:
        fact += f" for {str(since).split('.')[0]}"  # whole seconds
    return fact + (f", running: {query}" if query else ", no query yet")
