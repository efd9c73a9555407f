"""The crawler's bulk writer gone wrong: `python -m sandbox.holder --root R --n N`
opens N connections (application_name yomira-crawler), each left idle in a
transaction after an INSERT, as a worker that forgot to commit. It exits when
every one of them was terminated (pg_terminate_backend, or the crawler paused)."""

from __future__ import annotations

import argparse
import select
import signal
import time
from pathlib import Path

import psycopg

from . import process, state

APPLICATION = "yomira-crawler"


def hold(dsn: str, n: int) -> None:
    held = []
    for i in range(n):
        conn = psycopg.connect(dsn, application_name=APPLICATION, connect_timeout=5)
        # Bound on the client, so pg_stat_activity shows the statement as sent.
        psycopg.ClientCursor(conn).execute(
            "INSERT INTO crawler.log (jobid, level, message) "
            "VALUES ((SELECT max(id) FROM crawler.job), 'INFO', %s)",
            [f"bulk upsert batch {i + 1}: 500 chapters"],
        )  # psycopg opened a transaction; it is never committed
        held.append(conn)
    stopping: list[int] = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    while held and not stopping:
        # An idle connection hears from the server only when it is terminated.
        readable, _, _ = select.select([c.pgconn.socket for c in held], [], [], 0.5)
        for conn in [c for c in held if c.pgconn.socket in readable]:
            held.remove(conn)
            conn.close()
    for conn in held:
        conn.close()


def start(root: Path, dsn: str, n: int) -> int:
    stop(root)
    args = process.python("sandbox.holder", "--root", str(root), "--n", str(n))
    pid = process.spawn(args, root / "logs" / "holder.log", env={"HOLDER_DSN": dsn})
    with state.locked(root) as s:
        s["holder"] = {"pid": pid}
    deadline = time.monotonic() + 30
    with psycopg.connect(dsn, autocommit=True) as conn:
        while time.monotonic() < deadline:
            idle = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
                "AND state = 'idle in transaction'",
                [APPLICATION],
            ).fetchone()[0]
            if idle >= n:
                return pid
            if not process.alive(pid, str(root)):
                raise RuntimeError("the holder exited: see logs/holder.log")
            time.sleep(0.1)
    raise RuntimeError(f"only {idle} of {n} connections opened in 30 s")


def stop(root: Path) -> None:
    pid = state.read(root).get("holder", {}).get("pid")
    process.stop(pid, str(root))


def main() -> None:
    import os

    parser = argparse.ArgumentParser()
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--n", type=int, default=50)
    args = parser.parse_args()
    hold(os.environ["HOLDER_DSN"], args.n)


if __name__ == "__main__":
    main()
