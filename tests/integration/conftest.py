"""The execution tests' world: real targets (see targets.py), the console's TARGET_*
environment pointing at them, and a real Celery worker process."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import redis
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Sink
from django.conf import settings
from moto.server import ThreadedMotoServer
from pytest_httpserver import HTTPServer
from pytest_httpserver.httpserver import METHOD_ALL

from incidents.models import StepExecution
from sandbox import migrations as sandbox_migrations
from tests.conftest import ROOT
from tests.stack import database_url as stack_database_url
from yomira_console import worker as worker_process

from . import targets

TARGET_REDIS_URL = os.environ.get("TARGET_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
WORKER_LOG = ROOT / "test-artifacts" / "worker.log"


@pytest.fixture(scope="session")
def target_database(django_db_setup):  # noqa: ANN001, ANN201
    console = os.environ.get(
        "DATABASE_URL", "postgres://postgres@127.0.0.1:5432/yomira"
    )
    url = targets.create_target_database(console)
    # Trust auth ignores the password; it is here as a canary for redaction.
    with_password = url.replace(
        "://postgres@", f"://postgres:{targets.DB_PASSWORD_CANARY}@"
    )
    yield with_password
    targets.drop_target_database(console)


@pytest.fixture
def seeded_target(target_database):  # noqa: ANN001, ANN201
    """The target database with its seeded rows as they were at the start."""
    targets.reset_target_data(target_database)
    return target_database


@pytest.fixture(scope="session")
def api_server():  # noqa: ANN201
    server = HTTPServer(host="127.0.0.1", port=0)
    server.expect_request(re.compile(r"^/.*"), method=METHOD_ALL).respond_with_handler(
        targets.yomira_api
    )
    server.start()
    yield server
    server.clear()
    server.stop()


@pytest.fixture(scope="session")
def s3_server():  # noqa: ANN201
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def smtp_server():  # noqa: ANN201
    port = targets.free_port()
    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    yield port
    controller.stop()


@pytest.fixture(scope="session")
def silent_server():  # noqa: ANN201
    server = targets.SilentServer()
    yield server
    server.close()


@pytest.fixture(scope="session")
def target_env(
    target_database, api_server, s3_server, smtp_server, silent_server, tmp_path_factory
):  # noqa: ANN001, ANN201
    """TARGET_* for this process (the console's checks) and for the worker."""
    migrations_root = tmp_path_factory.mktemp("checkout")
    sandbox_migrations.publish(migrations_root)
    api = f"http://127.0.0.1:{api_server.port}"
    closed = targets.free_port()  # nothing listens here
    env = {
        # Short limits so the fault tests finish quickly (same rules as production).
        "EXECUTION_TIMEOUT": "3",
        "EXECUTION_CONNECT_TIMEOUT": "1",
        "WORKER_FORGETS_CONTENT_TYPES": "true",
        "TARGET_DEAD_DB_URL": f"postgres://postgres@127.0.0.1:{closed}/nothing",
        "TARGET_DEAD_API": f"http://127.0.0.1:{closed}",
        "TARGET_SILENT_API": f"http://127.0.0.1:{silent_server.port}",
        "TARGET_DATABASE_URL": target_database,
        "TARGET_REDIS_URL": TARGET_REDIS_URL,
        "TARGET_ADMIN_TOKEN": targets.ADMIN_TOKEN,
        "TARGET_HOSTS": f"api.yomira.app={api},cdn.yomira.app={api},"
        f"smtp.yomira.test=smtp://127.0.0.1:{smtp_server}",
        "TARGET_S3_ENDPOINT_URL": s3_server,
        # The application's checkout on the worker: where `migrate -path` points
        # (the simulated Yomira's migration files, as the sandbox publishes them).
        "TARGET_MIGRATIONS_ROOT": str(migrations_root),
        "TARGET_AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
        "TARGET_AWS_SECRET_ACCESS_KEY": "canary/secret/key/wJalrXUtnFEMIK7MDENG",
        "TARGET_AWS_REGION": "us-east-1",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield env
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def start_worker(
    env: dict, *, queue: str = "celery", log: Path = WORKER_LOG
) -> subprocess.Popen:
    """A real `celery worker` process on the test database and the test broker."""
    db = settings.DATABASES["default"]
    database_url = stack_database_url(db)
    hostname = f"{queue}@%h"
    process = worker_process.start(
        worker_process.command(
            hostname=hostname, queues=[queue], pool="prefork", alone=True
        ),
        env={**env, "DATABASE_URL": database_url},
        log=log,
        own_session=True,
    )
    worker_process.wait_ready(process, hostname, log=log)
    return process


class Worker:
    """The session's worker; a test may kill it, then start it again."""

    def __init__(self, env: dict) -> None:
        self.env = env
        self.process = start_worker(env)

    def kill(self) -> None:
        worker_process.stop(self.process, sig=signal.SIGKILL)

    def restart(self) -> None:
        worker_process.stop(self.process)
        self.process = start_worker(self.env)


@pytest.fixture(scope="session")
def worker(target_env):  # noqa: ANN001, ANN201
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()  # no stale messages
    handle = Worker(target_env)
    yield handle
    worker_process.stop(handle.process)


@pytest.fixture
def target_redis(target_env):  # noqa: ANN001, ANN201
    client = redis.Redis.from_url(TARGET_REDIS_URL, decode_responses=True)
    client.flushdb()
    client.set("warm", "1")
    policy = client.config_get("maxmemory-policy")["maxmemory-policy"]
    yield client
    client.config_set("maxmemory-policy", policy)  # the shared server as we found it
    client.flushdb()


def wait_for(execution: StepExecution, seconds: float = 20) -> StepExecution:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        execution.refresh_from_db()
        if execution.is_terminal:
            return execution
        time.sleep(0.05)
    raise AssertionError(
        f"execution {execution.pk} still {execution.state} after {seconds} s"
    )
