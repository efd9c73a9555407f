"""The Yomira schema as golang-migrate files (sandbox/migrations/NNNNNN_name.up.sql)
and golang-migrate's bookkeeping: one row in schema_migrations (version, dirty).
The console runs `migrate ... version` and `force N` itself; `up` needs the files,
so a drill's "simulate" of `migrate ... up 1` calls `up()` here."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import psycopg

FILES = Path(__file__).parent / "migrations"
# Where the runbook's `-path src/common/DML/migrations` finds them, relative to the
# stack's root (a person can run the real `migrate` from there).
RUNBOOK_PATH = Path("src/common/DML/migrations")
NAME = re.compile(r"^(\d+)_(\w+)\.(up|down)\.sql$")


def files(direction: str = "up") -> dict[int, Path]:
    found = {}
    for path in sorted(FILES.iterdir()):
        m = NAME.match(path.name)
        if m and m.group(3) == direction:
            found[int(m.group(1))] = path
    return found


def latest() -> int:
    return max(files())


def publish(root: Path) -> Path:
    """The files where the runbook's -path points, under the stack's root."""
    target = root / RUNBOOK_PATH
    target.mkdir(parents=True, exist_ok=True)
    for path in FILES.glob("*.sql"):
        shutil.copyfile(path, target / path.name)
    return target


def state(conn: psycopg.Connection) -> tuple[int | None, bool]:
    row = conn.execute("SELECT version, dirty FROM schema_migrations").fetchone()
    return (row[0], row[1]) if row else (None, False)


def set_state(conn: psycopg.Connection, version: int | None, dirty: bool) -> None:
    conn.execute("DELETE FROM schema_migrations")
    if version is not None:
        conn.execute(
            "INSERT INTO schema_migrations (version, dirty) VALUES (%s, %s)",
            [version, dirty],
        )


def up(conn: psycopg.Connection, steps: int | None = None) -> list[int]:
    """Apply the next `steps` files (all when None), as migrate does: mark the
    version dirty, run the file, clear dirty. Refuses on a dirty database, like
    migrate ("Dirty database version 5. Fix and force version.")."""
    version, dirty = state(conn)
    if dirty:
        raise RuntimeError(f"Dirty database version {version}. Fix and force version.")
    pending = [n for n in sorted(files()) if version is None or n > version]
    applied = []
    for number in pending[:steps] if steps is not None else pending:
        with conn.transaction():
            set_state(conn, number, True)
        with conn.transaction():
            conn.execute(files()[number].read_text())
            set_state(conn, number, False)
        applied.append(number)
    return applied
