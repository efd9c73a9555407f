"""golang-migrate's state in the target database: the `schema_migrations` table.

`version` reads the version and dirty flag (a probe). `force N` does what
`migrate force` does: set the version, clear dirty, run no SQL (an action). `up`,
`down N` and `goto V` run the migration files of the worker's checkout
(apply.py). `drop` stays with a person."""

from __future__ import annotations

import psycopg

from ... import targets
from ...runtime import Context, Deadline, ParameterError, Result
from . import apply
from .table import TABLE


def run(command, params: dict[str, str], ctx: Context) -> Result:  # noqa: ANN001
    spec = command.spec
    sub = spec["subcommand"]
    if sub in apply.WITH_FILES:
        return apply.run(command, params, ctx)
    if sub not in {"version", "force"}:
        return Result(
            False,
            f"`migrate {sub}` deletes everything in the database: run it by hand "
            "if you mean it (the console runs version, force, up, down N, goto V).",
        )
    dsn = targets.require(spec.get("target") or "DATABASE_URL")
    deadline = Deadline(ctx, grace=0.5)  # statement_timeout first
    try:
        with (
            deadline,
            psycopg.connect(
                dsn, connect_timeout=max(1, int(ctx.connect_timeout))
            ) as conn,
        ):
            deadline.on_expiry(conn.cancel_safe)  # one deadline for the whole call
            conn.execute(f"SET statement_timeout = {int(ctx.remaining() * 1000)}")
            if sub == "version":
                row = conn.execute(
                    f"SELECT version, dirty FROM {TABLE} LIMIT 1"
                ).fetchone()
                if row is None:
                    return Result(
                        True, "no migration", "error: no migration", {"version": None}
                    )
                version, dirty = row
                text = f"{version}{' (dirty)' if dirty else ''}"
                return Result(True, text, text, {"version": version, "dirty": dirty})
            argument = str(spec.get("argument", ""))
            if not argument.lstrip("-").isdigit():
                raise ParameterError(f"force needs a version number, not {argument!r}")
            with conn.transaction():
                before = conn.execute(f"SELECT version, dirty FROM {TABLE}").fetchone()
                conn.execute(f"DELETE FROM {TABLE}")
                if int(argument) >= 0:  # force -1 means "no version"
                    conn.execute(
                        f"INSERT INTO {TABLE} (version, dirty) VALUES (%s, false)",
                        [int(argument)],
                    )
            was = f"{before[0]}{' (dirty)' if before[1] else ''}" if before else "none"
            return Result(
                True,
                f"forced version {argument} (was {was})",
                f"version {argument}, dirty=false (was {was})",
                {"version": int(argument), "was": was},
            )
    except psycopg.errors.UndefinedTable:
        return Result(False, f"No {TABLE} table in the target database.")
    except psycopg.errors.QueryCanceled:
        return Result(False, f"No result within {ctx.timeout:g} s.", timed_out=True)
    except psycopg.OperationalError as exc:
        if deadline.expired:
            return Result(False, f"No result within {ctx.timeout:g} s.", timed_out=True)
        return Result(
            False, f"Cannot reach the target database: {str(exc).splitlines()[0]}"
        )
    except psycopg.Error as exc:
        return Result(False, f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
