"""A Celery worker process for the console, started and stopped the same way by
`runconsole` (what `make run` serves with), the integration tests and the benchmarks.

    process = worker.start(worker.command(hostname="tests@%h"), log=path)
    worker.wait_ready(process, "tests@%h", log=path)
    ...
    worker.stop(process)

Nothing here names a task module: the worker finds the tasks through the app."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class WorkerDidNotStart(RuntimeError):
    pass


def command(
    *,
    hostname: str = "celery@%h",
    queues: Iterable[str] = (),
    concurrency: int = 2,
    pool: str | None = None,
    loglevel: str = "INFO",
    beat: bool = False,
    alone: bool = False,
) -> list[str]:
    """The `celery worker` command line. `alone`: no gossip or mingle with other
    workers (a test's or a benchmark's worker starts faster and hears nobody)."""
    argv = [sys.executable, "-m", "celery", "-A", "yomira_console", "worker"]
    if beat:
        argv.append("--beat")
    argv += ["--loglevel", loglevel, "--concurrency", str(concurrency)]
    if pool:
        argv += ["--pool", pool]
    if queues:
        argv += ["-Q", ",".join(queues)]
    if alone:
        argv += ["--without-gossip", "--without-mingle"]
    return [*argv, "--hostname", hostname]


def start(
    argv: list[str],
    *,
    env: Mapping[str, str] | None = None,
    log: Path | None = None,
    own_session: bool = False,
) -> subprocess.Popen:
    """Start the worker in the project's root, with this process's environment plus
    `env`. Its output goes to `log` (truncated) when given, else to this process's.
    `own_session`: a process group of its own, so `stop` reaches the pool's children
    too and a terminal's Ctrl-C does not."""
    output = None
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        output = log.open("w")
    try:
        return subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=output,
            stderr=subprocess.STDOUT if output else None,
            start_new_session=own_session,
        )
    finally:
        if output is not None:
            output.close()  # the worker has its own copy


def wait_ready(
    process: subprocess.Popen,
    hostname: str = "celery@%h",
    *,
    log: Path | None = None,
    timeout: float = 30.0,
) -> None:
    """Return once the worker answers a ping addressed to it (at any log level; it
    answers from its event loop, so it is consuming tasks by then). Otherwise stop
    it and raise WorkerDidNotStart with the end of its log. Needs a broker with
    broadcast (Redis), and this process's Celery app configured like the worker's."""
    from celery.utils.nodenames import default_nodename, host_format
    from kombu.exceptions import OperationalError

    from yomira_console.celery import app

    node = host_format(default_nodename(hostname))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if app.control.ping(destination=[node], timeout=0.5):
                return
        except OperationalError:  # the broker is not answering (yet)
            time.sleep(0.1)
    stop(process)
    tail = log.read_text(errors="replace")[-3000:] if log is not None else ""
    raise WorkerDidNotStart(f"the worker {node} did not start:\n{tail}")


def stop(
    process: subprocess.Popen, *, sig: int = signal.SIGTERM, grace: float = 15.0
) -> None:
    """Send `sig` (SIGTERM: a warm shutdown, running tasks finish), to its whole
    group if it has its own; after `grace` seconds, SIGKILL."""
    if process.poll() is not None:
        return
    try:
        own_group = os.getpgid(process.pid) == process.pid
    except ProcessLookupError:  # ended just now
        own_group = False

    def send(signum: int) -> None:
        try:
            if own_group:
                os.killpg(process.pid, signum)
            else:
                process.send_signal(signum)
        except ProcessLookupError:  # gone meanwhile
            pass

    send(sig)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        send(signal.SIGKILL)
        process.wait(5)
