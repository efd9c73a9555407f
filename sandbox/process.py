"""Processes of the stack: spawned in their own session (an outage is a real dead
process, and stopping the stack never signals whoever started it), found again
from any process by pid, and told apart from an unrelated process that got the
same pid after a reboot by a marker in their command line."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Servers of the stack listen below the kernel's ephemeral range: an outgoing
# connection (a client of any program on this machine) is given a port from that
# range, so it can never take a stopped part's port before the part restarts.
SERVER_PORTS_FROM = 20000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ephemeral_range() -> tuple[int, int]:
    """The ports the kernel hands to outgoing connections (Linux's default when
    it cannot be read)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


# Every stack on this machine records the ports it chose here (one file per port
# holding the stack's folder): while one stack's part is stopped (an outage), its
# port is free, and another stack (a second `make run`, a test run next to it)
# must not take it. A claim whose folder is gone is stale and reused.
CLAIMS = Path(tempfile.gettempdir()) / "yomira-sandbox-ports"


def claimed_elsewhere(port: int, root: Path | None) -> bool:
    try:
        owner = (CLAIMS / str(port)).read_text()
    except OSError:
        return False
    return owner != str(root) and Path(owner).exists()


def claim(port: int, root: Path) -> None:
    with contextlib.suppress(OSError):  # a claim is a courtesy, never a failure
        CLAIMS.mkdir(mode=0o777, exist_ok=True)
        (CLAIMS / str(port)).write_text(str(root))


def server_port(taken: set[int] = frozenset(), root: Path | None = None) -> int:
    """A free port for a part's server, chosen at random below the ephemeral
    range (and not in `taken`, the ports other parts have recorded, nor claimed by
    another stack on this machine). Where that range leaves no room (it starts at
    or below 20001), a port above it, and failing that any free one."""
    low, high = ephemeral_range()
    spans = [(SERVER_PORTS_FROM, low - 1), (high + 1, 65535)]
    for first, last in spans:
        if last - first < 100:
            continue
        for _ in range(200):
            port = random.randint(first, last)  # noqa: S311 - not a secret
            if (
                port not in taken
                and not claimed_elsewhere(port, root)
                and port_free(port)
            ):
                if root is not None:
                    claim(port, root)
                return port
    return free_port()


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


TCP_STATES = {
    "01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECV", "04": "FIN_WAIT1",
    "05": "FIN_WAIT2", "06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT",
    "09": "LAST_ACK", "0A": "LISTEN", "0B": "CLOSING",
}  # fmt: skip


def _sockets_on(port: int) -> list[tuple[str, str]]:
    """(state, inode) of every TCP socket whose local port is `port`."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and int(fields[1].rsplit(":", 1)[1], 16) == port:
                found.append((TCP_STATES.get(fields[3], fields[3]), fields[9]))
    return found


def _owners(inodes: set[str]) -> dict[str, tuple[int, str]]:
    """inode -> (pid, command line) for the processes this user may look into."""
    wanted = {f"socket:[{inode}]": inode for inode in inodes if inode != "0"}
    owners: dict[str, tuple[int, str]] = {}
    for entry in Path("/proc").iterdir():
        if not wanted or not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (entry / "fd").iterdir():
                inode = wanted.get(os.readlink(fd))
                if inode and inode not in owners:
                    raw = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
                    command = " ".join(raw.decode(errors="replace").split())[:120]
                    owners[inode] = (int(entry.name), command)
    return owners


def listeners(port: int) -> set[int] | None:
    """The pids listening on a port (None when a listener's owner is hidden)."""
    inodes = {inode for tcp_state, inode in _sockets_on(port) if tcp_state == "LISTEN"}
    owners = _owners(inodes)
    if set(owners) != inodes:
        return None
    return {pid for pid, _ in owners.values()}


def port_holder(port: int) -> str:
    """Who holds a port, in words, as far as /proc tells (for the error that says
    why a part could not start on it)."""
    sockets = _sockets_on(port)
    if not sockets:
        return "nothing this machine shows (it may have let go since)"
    owners = _owners({inode for _, inode in sockets})
    said = []
    for tcp_state, inode in sockets:
        if inode in owners:
            who = "pid {} ({})".format(*owners[inode])
        elif inode == "0":
            who = "no process (a closed connection the kernel keeps)"
        else:
            who = "a process this user cannot see"
        said.append(f"{who}, {tcp_state}")
    return "; ".join(dict.fromkeys(said))


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


class Exited(RuntimeError):
    """The process died before it listened (its log says why)."""


def wait_port(port: int, pid: int, marker: str, seconds: float = 20) -> None:
    """Until the process listens on the port, or it died. Someone else listening
    there does not count: the process will fail to bind and exit."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(0.2)
            accepted = sock.connect_ex(("127.0.0.1", port)) == 0
        if accepted:
            pids = listeners(port)
            if pids is None or pid in pids:
                return
        if not alive(pid, marker):
            raise Exited(f"process {pid} exited before listening on {port}")
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {seconds:g} s")
