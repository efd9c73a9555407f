"""Yomira in a box: the stack and its parts, each its own OS process.

    stack = Stack(root)        # cheap: reads root/state.json
    stack.start()              # every part not running (idempotent; data kept)
    stack.part("redis").stop() # a real outage, from any process
    stack.env()                # TARGET_* for the console's worker

Ports are chosen once, below the kernel's ephemeral range, and never move, so the
environment handed to the console stays right after a part restarts; a restart
whose port is held waits, then fails saying who holds it.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

from . import database, disk, holder, migrations, process, state
from .parts import PARTS, Part

NAMES = ("database", "redis", "api", "s3", "smtp")


class Stack:
    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.state = state.read(self.root)

    def refresh(self) -> dict:
        self.state = state.read(self.root)
        return self.state

    def part(self, name: str) -> Part:
        if name not in PARTS:
            raise KeyError(f"no part {name!r}: one of {', '.join(NAMES)}")
        return PARTS[name](self.root)

    def parts(self) -> list[Part]:
        return [self.part(name) for name in NAMES]

    def start(self) -> None:
        """Start what is not running, the parts side by side. A part that fails
        to start is reported after the others have been tried."""
        with state.exclusive(self.root, "start"):
            self._start()

    def _start(self) -> None:
        state.ensure_secrets(self.root)
        migrations.publish(self.root)
        errors: list[str] = []

        def run(part: Part) -> None:
            try:
                if not part.running():
                    part.start()
            except Exception as exc:  # noqa: BLE001 - reported below, with the part
                errors.append(f"{part.name}: {exc}")

        threads = [threading.Thread(target=run, args=(p,)) for p in self.parts()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.refresh()
        if errors:
            raise RuntimeError("sandbox parts failed to start: " + "; ".join(errors))
        disk.ensure_volume(self.root, self.state["parts"]["database"]["socket"])

    def stop(self) -> None:
        holder.stop(self.root)
        for part in reversed(self.parts()):
            part.stop()
        self.refresh()

    def running(self) -> dict[str, bool]:
        return {p.name: p.running() for p in self.parts()}

    def database_url(self, *, user: str = database.ROLE) -> str:
        socket = self.refresh()["parts"]["database"]["socket"]
        return database.url(socket, user=user)

    def port(self, name: str) -> int:
        return int(self.refresh()["parts"][name]["port"])

    def env(self) -> dict[str, str]:
        """TARGET_* for every runnable command of runbooks/yomira.md."""
        s = self.refresh()
        if not s.get("parts", {}).get("database"):
            raise RuntimeError("the stack was never started: call start() first")
        api = f"http://127.0.0.1:{self.port('api')}"
        smtp = f"smtp://127.0.0.1:{self.port('smtp')}"
        return {
            "TARGET_DATABASE_URL": self.database_url(),
            "TARGET_REDIS_URL": f"redis://127.0.0.1:{self.port('redis')}/0",
            "TARGET_ADMIN_TOKEN": s["admin_token"],
            "TARGET_HOSTS": ",".join(
                [
                    f"api.yomira.app={api}",
                    f"cdn.yomira.app={api}",
                    f"smtp.yomira.app={smtp}",
                    f"smtp.fallback.com={smtp}",
                ]
            ),
            "TARGET_S3_ENDPOINT_URL": f"http://127.0.0.1:{self.port('s3')}",
            "TARGET_AWS_ACCESS_KEY_ID": s["aws_access_key_id"],
            "TARGET_AWS_SECRET_ACCESS_KEY": s["aws_secret_access_key"],
            "TARGET_AWS_REGION": "us-east-1",
            "TARGET_DISK_VOLUMES": str(disk.report_path(self.root)),
            "TARGET_MIGRATIONS_ROOT": str(self.root),  # the files' "checkout"
        }

    def control_token(self) -> str:
        return self.refresh()["control_token"]

    def destroy(self) -> None:
        """Stop everything and delete the data (tests, `make clean`)."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def free_port() -> int:
    return process.free_port()
