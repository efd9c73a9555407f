"""A migrate action: the version schema_migrations is at and what it will become."""

from __future__ import annotations

import psycopg

from ... import targets
from ...binding import CommandLike
from ...family import Preview
from ...runtime import Context


def preview(command: CommandLike, ctx: Context) -> Preview:
    dsn = targets.require(command.spec.get("target") or "DATABASE_URL")
    with psycopg.connect(dsn, connect_timeout=max(1, int(ctx.connect_timeout))) as conn:
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
