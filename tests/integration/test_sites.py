"""Two sites, two real Celery workers: the default one (the session's worker, queue
`celery`) and site b's, started with WORKER_SITE=b and no -Q. A command whose
target is at site b runs on b's worker: b's worker alone is told to reach the
runbook's api.yomira.app at an HTTP server that signs its answers "site b", so the
stored output says who ran it. Then b's worker stops: the checklist says so next
to Run, and a Run is refused before anything is queued."""

from __future__ import annotations

import json
import re
import time

import pytest
import redis
from django.conf import settings
from pytest_httpserver import HTTPServer

from incidents.actors import Actor
from incidents.models import Command, StepExecution, WorkerHeartbeat
from incidents.services import RunRefused, import_runbook, open_incident, request_run
from incidents.services import workers as heartbeats
from tests.conftest import IMPORTER, ROOT, YOMIRA_RUNBOOK, signed_in
from tests.stack import database_url as stack_database_url
from yomira_console import worker as worker_process

from .conftest import wait_for

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("worker"),  # the default site's worker
]
SITE_B_LOG = ROOT / "test-artifacts" / "worker-site-b.log"
HEALTH = "curl https://api.yomira.app/health/ready"


@pytest.fixture
def site_b_api():  # noqa: ANN201
    """The API as seen from inside site b's network."""
    server = HTTPServer(host="127.0.0.1", port=0)
    server.expect_request("/health/ready").respond_with_data(
        json.dumps({"status": "ok", "database": "ok", "served_to": "site-b-worker"}),
        content_type="application/json",
    )
    server.start()
    yield server
    server.clear()
    server.stop()


@pytest.fixture
def site_b_worker(target_env, site_b_api):  # noqa: ANN001, ANN201
    """A worker started as a site's would be: WORKER_SITE=b, no -Q."""
    env = {
        **target_env,
        "DATABASE_URL": stack_database_url(settings.DATABASES["default"]),
        "WORKER_SITE": "b",
        "TARGET_HOSTS": f"api.yomira.app=http://127.0.0.1:{site_b_api.port}",
    }
    hostname = "siteb@%h"
    process = worker_process.start(
        worker_process.command(hostname=hostname, pool="prefork", alone=True),
        env=env,
        log=SITE_B_LOG,
        own_session=True,
    )
    worker_process.wait_ready(process, hostname, log=SITE_B_LOG)
    yield process
    worker_process.stop(process)


def heartbeat_of(prefix: str, seconds: float = 20) -> WorkerHeartbeat:
    """The worker's row once it has beaten (it beats as soon as it is ready)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        row = WorkerHeartbeat.objects.filter(hostname__startswith=prefix).first()
        if row is not None and row.stopped_at is None:
            return row
        time.sleep(0.05)
    raise AssertionError(f"no heartbeat from {prefix}* in {seconds} s")


def stopped_row(prefix: str, seconds: float = 20) -> WorkerHeartbeat:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        row = WorkerHeartbeat.objects.filter(hostname__startswith=prefix).first()
        if row is not None and row.stopped_at is not None:
            return row
        time.sleep(0.05)
    raise AssertionError(f"{prefix}* did not mark itself stopped in {seconds} s")


def test_a_command_for_site_b_runs_on_bs_worker_and_b_down_is_said_before_the_click(
    site_b_worker, make_user, monkeypatch
):
    # The console's view: api.yomira.app is at site b.
    monkeypatch.setenv("TARGET_SITES", "api.yomira.app=b")
    heartbeats.forget_cache()
    cole = make_user("cole", "Commander")
    runbook = import_runbook(source=YOMIRA_RUNBOOK.read_bytes(), actor=IMPORTER).runbook
    command = Command.objects.get(playbook__runbook=runbook, text=HEALTH)
    incident = open_incident(
        playbook=command.playbook, title="5xx at the edge", actor=Actor.person(cole)
    )

    b = heartbeat_of("siteb@")
    assert b.queues == ["site.b"]  # WORKER_SITE alone chose its queue
    assert b.site == "b"

    execution = request_run(
        incident=incident, command=command, params={}, actor=Actor.person(cole)
    ).execution
    execution = wait_for(execution)
    assert execution.state == StepExecution.State.SUCCEEDED, execution.summary
    assert "site-b-worker" in execution.output  # b's worker ran it, via b's network

    # b's worker stops (a clean shutdown marks it stopped at once).
    worker_process.stop(site_b_worker)
    assert stopped_row("siteb@").queues == ["site.b"]
    heartbeats.forget_cache()  # the console's few-seconds memory of who is live

    page = signed_in(cole).get(f"/incidents/{incident.pk}/").content.decode()
    panel = page[page.index(f'id="run-{command.pk}"') :]
    panel = panel[: panel.index("</form>")]
    assert re.search(
        r"site b has no live worker \(last seen (under a minute|\d+ min) ago\): "
        r"a run would wait\.",
        panel,
    ), panel

    runs_before = StepExecution.objects.count()
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    with pytest.raises(RunRefused, match=r"^Not sent: site b has no live worker"):
        request_run(
            incident=incident, command=command, params={}, actor=Actor.person(cole)
        )
    assert StepExecution.objects.count() == runs_before  # nothing queued
    assert broker.llen("site.b") == 0

    # Through the page's own form too: the refusal is the answer, nothing queued.
    client = signed_in(cole)
    answer = client.post(
        f"/incidents/{incident.pk}/commands/{command.pk}/run",
        {"request_key": "k1"},
        HTTP_HX_REQUEST="true",
    )
    assert "site b has no live worker" in answer.content.decode()
    assert StepExecution.objects.count() == runs_before
