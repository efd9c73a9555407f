"""The drills' world: a real simulated Yomira stack (sandbox/, each part its own
process) in a scratch folder, the console's TARGET_* pointing at it, a real Celery
worker with the same environment, and the personas who run drills."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings as django_settings
from django.contrib.auth.models import Group

from tests.conftest import ROOT, grant
from tests.integration.conftest import start_worker
from yomira_console import worker as worker_process

WORKER_LOG = ROOT / "test-artifacts" / "drills-worker.log"


# Package scope, not session: the drills' worker consumes the same broker queue as
# every other test's worker, so it must be gone before the next package's tests
# (its targets are the simulated stack's, not theirs).
@pytest.fixture(scope="package")
def drill_stack():  # noqa: ANN201
    """The simulated stack for the session, and TARGET_* for this process."""
    from sandbox.stack import Stack

    root = Path(tempfile.mkdtemp(prefix="drills-stack-"))
    stack = Stack(root)
    stack.start()
    env = {
        **stack.env(),
        "EXECUTION_TIMEOUT": "10",
        "EXECUTION_CONNECT_TIMEOUT": "2",
        "WORKER_FORGETS_CONTENT_TYPES": "true",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield stack, env
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    stack.destroy()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="package")
def drill_worker(django_db_setup, drill_stack):  # noqa: ANN001, ANN201
    """A real worker whose targets are the simulated stack, on the test database
    (hence after django_db_setup), logging to a file of its own."""
    _stack, env = drill_stack
    redis.Redis.from_url(django_settings.CELERY_BROKER_URL).flushdb()
    process = start_worker(env, log=WORKER_LOG)
    yield process
    worker_process.stop(process)


@pytest.fixture
def worker_at_rest(transactional_db, drill_worker):  # noqa: ANN001, ANN201
    """The drills' worker, and, after the test, a wait until it has nothing left
    to do: a task it was still running held locks that the flush's TRUNCATE then
    deadlocked with. Set up after the database fixture, so torn down (this wait)
    before its flush."""
    from django.db import connection

    from incidents.models import StepExecution as Execution

    yield drill_worker
    # Between tasks is not enough: opening a drill's incident queues its diagnosis
    # probes, and a worker idle at the instant of the check could pick the next
    # one up during the TRUNCATE (CI saw that deadlock). So wait until nothing is
    # queued or running, and then until no other connection is busy.
    pending = (Execution.State.QUEUED, Execution.State.RUNNING)
    broker = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        # A message waiting in the queue, or taken but not acknowledged (the
        # drills' checks acknowledge late), is work the worker has yet to finish.
        in_broker = broker.llen("celery") + broker.hlen("unacked")
        if not in_broker and not Execution.objects.filter(state__in=pending).exists():
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                    "current_database() AND pid <> pg_backend_pid() AND state IN "
                    "('active', 'idle in transaction')"
                )
                if cursor.fetchone()[0] == 0:
                    return
        time.sleep(0.05)


@pytest.fixture
def sandbox_on(settings, drill_stack):  # noqa: ANN001, ANN201
    """SANDBOX on for this test (tests run with DEBUG off, as production does:
    the setting itself refuses SANDBOX without DEBUG at start-up)."""
    stack, _env = drill_stack
    settings.SANDBOX = True
    settings.SANDBOX_DIR = stack.root
    return stack


@pytest.fixture
def drillers(make_user, yomira):  # noqa: ANN001, ANN201
    """cole and ana, Commanders with every playbook's actions (ana approves)."""
    cole = make_user("cole", "Commander")
    ana = make_user("ana", "Commander")
    grant(Group.objects.get(name="Commander"), "run_actions", "approve_actions")
    return cole, ana


def restore(stack) -> None:  # noqa: ANN001
    """Back to a healthy stack for the next test: every part running, every
    fault healed. A part restarted in quick succession can lose its port to a
    client's ephemeral one and exit (reported to the sandbox's owner): tried
    again, so one test's clean-up does not fail the next."""
    from sandbox import faults

    for attempt in range(3):
        try:
            stack.start()
            break
        except RuntimeError:
            if attempt == 2:
                raise
    for name in faults.active(stack):
        faults.heal(stack, name)
