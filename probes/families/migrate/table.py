"""golang-migrate's bookkeeping in the target database, as its postgres driver
keeps it: one row (version, dirty) in `schema_migrations`, rewritten in its own
transaction (TRUNCATE, INSERT), and an advisory lock whose key is derived the way
the driver derives it, so the console and a person's `migrate` exclude each other."""

from __future__ import annotations

import zlib

import psycopg

from .plan import NIL

TABLE = "schema_migrations"
# database.GenerateAdvisoryLockId's salt (golang-migrate/database/util.go).
LOCK_SALT = 1486364155


def state(conn: psycopg.Connection) -> tuple[int, bool]:
    """(version, dirty); (NIL, False) when no version is recorded or no table."""
    exists = conn.execute("SELECT to_regclass(%s)", [TABLE]).fetchone()[0]
    if exists is None:
        return NIL, False
    row = conn.execute(f"SELECT version, dirty FROM {TABLE} LIMIT 1").fetchone()
    return (int(row[0]), bool(row[1])) if row else (NIL, False)


def shown(version: int, dirty: bool) -> str:
    if version == NIL:
        return "no version" + (" (dirty)" if dirty else "")
    return f"{version}{' (dirty)' if dirty else ''}"


def ensure(conn: psycopg.Connection) -> None:
    """The table golang-migrate creates on first use."""
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {TABLE} "
        "(version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL)"
    )


def set_version(conn: psycopg.Connection, version: int, dirty: bool) -> None:
    """SetVersion: its own transaction, committed before the migration runs (so a
    failed migration leaves the dirty mark behind). A dirty "no version" is kept
    as -1, as the driver does, so a failed first down is not mistaken for clean."""
    with conn.transaction():
        conn.execute(f"TRUNCATE {TABLE}")
        if version >= 0 or dirty:
            conn.execute(
                f"INSERT INTO {TABLE} (version, dirty) VALUES (%s, %s)",
                [version, dirty],
            )


def lock_key(conn: psycopg.Connection) -> int:
    database, schema = conn.execute(
        "SELECT current_database(), current_schema()"
    ).fetchone()
    name = "\x00".join([schema or "", TABLE, database])
    return (zlib.crc32(name.encode()) * LOCK_SALT) & 0xFFFFFFFF


def try_lock(conn: psycopg.Connection) -> bool:
    """golang-migrate waits for the lock without end; here another migrate at work
    is said at once instead (a person re-runs when it is done)."""
    return bool(
        conn.execute("SELECT pg_try_advisory_lock(%s)", [lock_key(conn)]).fetchone()[0]
    )
