"""Processes of the stack: spawned in their own session (an outage is a real dead
process, and stopping the stack never signals whoever started it), found again
from any process by pid, and told apart from an unrelated process that got the
same pid after a reboot by a marker in their command line."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_free(port: int) -> bool:
    """Free for a server, which sets SO_REUSEADDR as every part does (the
    connections of its previous run may linger in TIME_WAIT)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def spawn(args: list[str], log: Path, env: dict[str, str] | None = None) -> int:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
            close_fds=True,
        )
    return process.pid


def python(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def _reap(pid: int) -> None:
    """A child of this process that died stays a zombie until waited for."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def alive(pid: int | None, marker: str = "") -> bool:
    if not pid:
        return False
    _reap(pid)
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return False
    if stat.rsplit(")", 1)[-1].split()[0] in {"Z", "X"}:
        return False
    return marker.encode() in cmdline


def stop(pid: int | None, marker: str = "", sig: int = signal.SIGTERM) -> None:
    """Signal, wait up to 10 s, then SIGKILL."""
    if not alive(pid, marker):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if not alive(pid, marker):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    while alive(pid, marker):
        time.sleep(0.05)


def wait_port(port: int, pid: int, marker: str, seconds: float = 20) -> None:
    """Until something accepts on the port, or the process died (its log says why)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        if not alive(pid, marker):
            raise RuntimeError(f"process {pid} exited before listening on {port}")
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {seconds:g} s")
