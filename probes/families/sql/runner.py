"""SQL against the target database (psycopg 3).

Probes run in a READ ONLY transaction with statement_timeout and lock_timeout and
return their rows as a table; actions run in their own transaction and report rows
affected; statements PostgreSQL refuses inside a transaction (VACUUM) run alone.
Responder parameters are always bound ($1, or a placeholder put where the runbook
named `pid`), never pasted into the SQL."""

from __future__ import annotations

import re

import psycopg
from psycopg import errors

from ... import targets
from ...runtime import (
    Context,
    Deadline,
    ParameterError,
    Result,
    clip,
    first_line,
    table,
)
from ...shell import split_sql
from ...tables import masked_rows, sql_table
from .recognise import SIDE_EFFECT_CALL

INTEGER_ARGS = {"pg_cancel_backend", "pg_terminate_backend"}


def bind(sql: str, parameters: list[str], params: dict[str, str]) -> tuple[str, list]:
    """SQL with `$n` placeholders and the values to bind, in order."""
    values: list = []
    positional = sorted(
        {p for p in parameters if p.startswith("$")}, key=lambda p: int(p[1:])
    )
    for name in positional:
        values.append(params[name])
    named = [p for p in parameters if not p.startswith("$")]

    def place(m: re.Match) -> str:
        function, args = m.group(1), m.group(2).strip()
        if args not in named:
            return m.group(0)
        value = params[args]
        if function.lower() in INTEGER_ARGS:
            if not re.fullmatch(r"\d{1,10}", value.strip()):
                raise ParameterError(
                    f"{args} must be a backend process id (a number), not {value[:40]!r}"
                    + ("…" if len(value) > 40 else "")
                    + "."
                )
            value = int(value)
            values.append(value)
            return f"{function}(${len(values)}::integer)"
        values.append(value)
        return f"{function}(${len(values)})"

    return SIDE_EFFECT_CALL.sub(place, sql), values


def target_variable(spec: dict) -> str:
    """The target variable this command runs against: the one TARGET_PG_HOSTS names
    for its host (`psql -h HOST`), else its own (`${NAME}`, DATABASE_URL by
    default). A host with no entry raises TargetMissing naming the host: it never
    falls back to DATABASE_URL."""
    host = spec.get("target_host")
    if not host:
        return spec.get("target") or "DATABASE_URL"
    found = targets.pg_variable(host, spec.get("target_port"))
    if found is None:
        raise targets.TargetMissing([targets.pg_unmapped(host)])
    return found


def connect(spec: dict, ctx: Context) -> psycopg.Connection:
    dsn = targets.require(target_variable(spec))
    # The database the runbook named with its host (`psql -h HOST -d orders`): the
    # target says where and as whom, the runbook which database there.
    more = {"dbname": spec["target_dbname"]} if spec.get("target_dbname") else {}
    return psycopg.connect(
        dsn,
        connect_timeout=max(1, int(ctx.connect_timeout)),
        application_name="yomira-console",
        **more,
    )


def run(command, params: dict[str, str], ctx: Context) -> Result:  # noqa: ANN001
    spec = command.spec
    sql, values = bind(spec["sql"], command.parameters, params)
    timeout_ms = int(ctx.remaining() * 1000)
    statements = [p.text for p in split_sql(sql).pieces]
    # The grace lets statement_timeout (the clearer message) fire first.
    deadline = Deadline(ctx, grace=0.5)
    try:
        with deadline, connect(spec, ctx) as conn:
            # statement_timeout bounds each statement; the deadline bounds the call
            # (several statements, or rows trickling back after the statement ran).
            deadline.on_expiry(conn.cancel_safe)
            conn.autocommit = True  # transactions below are explicit
            conn.execute(f"SET statement_timeout = {timeout_ms}")
            conn.execute("SET lock_timeout = 5000")
            if spec.get("transaction") is False:
                return _run_outside_transaction(conn, statements, values, ctx)
            return _run_in_transaction(conn, statements, values, command.kind, ctx)
    except errors.QueryCanceled as exc:
        if "statement timeout" in str(exc):
            message = f"Cancelled by statement_timeout after {timeout_ms / 1000:.0f} s."
        else:  # our deadline: the statements together took too long
            message = f"Cancelled: the statements took more than {ctx.timeout:g} s."
        return Result(False, message, timed_out=True)
    except errors.LockNotAvailable:
        return Result(False, "Gave up waiting 5 s for a lock (lock_timeout).")
    except errors.ReadOnlySqlTransaction:
        return Result(
            False, "Refused: this probe tried to write inside a read-only transaction."
        )
    except psycopg.OperationalError as exc:
        if deadline.expired:
            return Result(False, f"No result within {ctx.timeout:g} s.", timed_out=True)
        return Result(False, f"Cannot reach the target database: {first_line(exc)}")
    except psycopg.Error as exc:
        return Result(False, f"{type(exc).__name__}: {first_line(exc)}")


def _run_in_transaction(conn, statements, values, kind, ctx) -> Result:  # noqa: ANN001
    outputs, affected, summary, tables = [], 0, "", []
    with conn.transaction():
        if kind == "probe":
            conn.execute("SET TRANSACTION READ ONLY")
        for statement in statements:
            used = _values_for(statement, values)
            cur = psycopg.RawCursor(conn)
            cur.execute(_renumber(statement), used or None)
            if cur.description:
                columns = [d.name for d in cur.description]
                rows = masked_rows(columns, cur.fetchmany(1000))
                outputs.append(table(columns, rows))
                tables.append(sql_table(columns, rows, str(cur.statusmessage or "")))
                summary = f"{len(rows)} row{'s' if len(rows) != 1 else ''}"
                if len(rows) == 1 and len(columns) == 1:
                    summary = f"{columns[0]} = {rows[0][0]}"
            else:
                affected += max(cur.rowcount, 0)
                outputs.append(f"{cur.statusmessage}")
                tables.append(sql_table([], [], str(cur.statusmessage or "")))
                plural = "s" if cur.rowcount != 1 else ""
                summary = str(cur.statusmessage)
                if cur.rowcount >= 0:  # -1: a statement without a row count (DDL)
                    summary += f" ({cur.rowcount} row{plural} affected)"
    data = {"rows_affected": affected} if kind == "action" else {}
    return Result(
        True,
        summary or "done",
        clip("\n\n".join(outputs), ctx),
        data,
        # Data only when some statement returned rows: a status alone reads as well.
        structured={"tables": tables} if any(t["columns"] for t in tables) else {},
    )


def _run_outside_transaction(conn, statements, values, ctx) -> Result:  # noqa: ANN001
    outputs = []
    for statement in statements:
        cur = psycopg.RawCursor(conn)
        cur.execute(_renumber(statement), _values_for(statement, values) or None)
        outputs.append(cur.statusmessage or "done")
    return Result(True, outputs[-1], clip("\n".join(outputs), ctx))


def _values_for(statement: str, values: list) -> list:
    used = sorted({int(n) for n in re.findall(r"\$(\d+)", statement)})
    return [values[n - 1] for n in used if n - 1 < len(values)]


def _renumber(statement: str) -> str:
    """Each statement is sent alone: its placeholders count from $1."""
    used = sorted({int(n) for n in re.findall(r"\$(\d+)", statement)})
    mapping = {old: new for new, old in enumerate(used, start=1)}
    return re.sub(r"\$(\d+)", lambda m: f"${mapping[int(m.group(1))]}", statement)
