"""Helpers for the alert tests that run against real processes: a Celery worker
on the test database, Debian's Alertmanager 0.25 as a subprocess, and polling for
a condition with a generous deadline (never a timed assertion: the machine is
shared and noisy)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import redis
from django.conf import settings

from tests.conftest import ROOT
from tests.stack import database_url as stack_database_url
from yomira_console import worker as worker_process

ALERTMANAGER = os.environ.get("ALERTMANAGER_PATH", "/usr/bin/prometheus-alertmanager")
ARTIFACTS = ROOT / "test-artifacts"
DEADLINE = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def closed_url(scheme: str) -> str:
    """A URL nobody listens on: probes sent there fail at once (connection refused)."""
    return f"{scheme}://127.0.0.1:{free_port()}/nothing"


def wait_until(
    check: Callable[[], object], what: str, seconds: float = DEADLINE
) -> object:
    """Poll `check` until it returns something true; fail naming `what` if it never
    does within `seconds`. Returns what `check` returned."""
    deadline = time.monotonic() + seconds
    last: object = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(
        f"after {seconds:.0f} s, still not true: {what} (last: {last!r})"
    )


def audit_mark() -> int:
    """The audit log's last sequence number now. The log outlives a transactional
    test's flush (its rows cannot be deleted), so a test counts events after its
    mark: `AuditEvent.objects.filter(seq__gt=mark)`."""
    from incidents.models import AuditEvent

    return (
        AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    )


def iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- a real Celery worker --------------------------------------------------------------


def start_worker(
    name: str, *, concurrency: int = 2, env: dict[str, str] | None = None
) -> subprocess.Popen:
    """A `celery worker` on this run's test database and broker, started afresh (the
    broker's queue emptied first: no stale messages from earlier tests). Stop it with
    `stop_worker` before the module ends: it consumes the default queue, which the
    integration tests' worker (other settings) consumes later in the run."""
    db = settings.DATABASES["default"]
    database_url = stack_database_url(db)
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
    hostname = f"{name}@%h"
    log = ARTIFACTS / f"{name}-worker.log"
    process = worker_process.start(
        worker_process.command(
            hostname=hostname, pool="prefork", concurrency=concurrency, alone=True
        ),
        env={
            "DATABASE_URL": database_url,
            # The tests flush and recreate content types between tests.
            "WORKER_FORGETS_CONTENT_TYPES": "true",
            "EXECUTION_TIMEOUT": "3",
            "EXECUTION_CONNECT_TIMEOUT": "1",
            **(env or {}),
        },
        log=log,
        own_session=True,
    )
    worker_process.wait_ready(process, hostname, log=log, timeout=60)
    return process


def stop_worker(process: subprocess.Popen) -> None:
    worker_process.stop(process)


# --- a real Alertmanager ---------------------------------------------------------------


def alertmanager_config(
    *,
    webhook: str,
    token: str,
    group_wait: str = "1s",
    group_interval: str = "1s",
    repeat_interval: str = "1h",
    resolve_timeout: str = "5m",
) -> str:
    """Like tests/fixtures/alertmanager/alertmanager.yml: fast delivery, one
    receiver posting to the console with the source's bearer token. JSON is YAML."""
    config = {
        "global": {"resolve_timeout": resolve_timeout},
        "route": {
            "receiver": "console",
            "group_by": ["alertname", "service"],
            "group_wait": group_wait,
            "group_interval": group_interval,
            "repeat_interval": repeat_interval,
        },
        "receivers": [
            {
                "name": "console",
                "webhook_configs": [
                    {
                        "url": webhook,
                        "send_resolved": True,
                        "http_config": {
                            "authorization": {"type": "Bearer", "credentials": token}
                        },
                    }
                ],
            }
        ],
    }
    return json.dumps(config, indent=2)


class Alertmanager:
    """`prometheus-alertmanager` on a free port, with its own storage directory and
    no clustering; driven through its API v2."""

    def __init__(self, config: str) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="yomira-am-"))
        (self.dir / "alertmanager.yml").write_text(config)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.dir / "alertmanager.log"
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                [
                    ALERTMANAGER,
                    f"--config.file={self.dir / 'alertmanager.yml'}",
                    f"--storage.path={self.dir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--cluster.listen-address=",
                    "--log.level=debug",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            wait_until(self._ready, "Alertmanager answers /-/ready", 30)
        except AssertionError:
            self.stop()
            raise AssertionError(f"Alertmanager did not start:\n{self.log()}") from None

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"Alertmanager exited:\n{self.log()}")
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def post(self, *alerts: dict) -> None:
        """POST /api/v2/alerts: each {labels, annotations, startsAt, endsAt?}."""
        response = httpx.post(
            f"{self.url}/api/v2/alerts", json=list(alerts), timeout=10
        )
        assert response.status_code == 200, (response.status_code, response.text)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        ARTIFACTS.mkdir(exist_ok=True)
        shutil.copy(self.log_path, ARTIFACTS / "alertmanager.log")
        shutil.rmtree(self.dir, ignore_errors=True)


def alert(
    *,
    name: str = "HighErrorRate",
    starts: datetime,
    ends: datetime | None = None,
    **labels: str,
) -> dict:
    body = {
        "labels": {"alertname": name, "severity": "critical", **labels},
        "annotations": {"summary": f"{name} on {labels.get('service', '?')}"},
        "startsAt": iso(starts),
        "generatorURL": "",
    }
    if ends is not None:
        body["endsAt"] = iso(ends)
    return body
