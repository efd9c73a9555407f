"""/metrics as a real Prometheus sees it: Debian's `prometheus` scrapes the live
console with the bearer token (and loads the example alert rules) while a real
Celery worker runs a probe; the run then shows in Prometheus's own answer."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from incidents.actors import Actor
from incidents.models import Command, StepExecution
from incidents.services import request_run
from probes.commands import confirm_word
from tests.conftest import ROOT
from tests.stack import PROMETHEUS

from .conftest import wait_for
from .targets import free_port

pytestmark = [
    pytest.mark.skipif(
        not Path(PROMETHEUS).exists(),
        reason=f"Debian's prometheus is not installed at {PROMETHEUS} (make test "
        "installs it when it may: sudo apt-get install -y --no-install-recommends "
        "prometheus)",
    ),
    pytest.mark.django_db(transaction=True),
]
TOKEN = "scrape-token-for-the-test"
RULES = ROOT / "deploy" / "prometheus" / "yomira-rules.yml"
PROMETHEUS_LOG = ROOT / "test-artifacts" / "prometheus.log"


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 - our own
        return json.load(answer)


def until(what: str, found, seconds: float = 60):  # noqa: ANN001, ANN201
    """found() until it returns something true, within a deadline (Prometheus
    scrapes every second; a slow machine only takes longer, never fails early)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = found()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what}: not seen within {seconds} s ({PROMETHEUS_LOG})")


@pytest.fixture
def prometheus(live_server, settings, tmp_path):  # noqa: ANN001, ANN201
    """A Prometheus scraping the live console every second; its HTTP API's base."""
    settings.METRICS_TOKEN = TOKEN
    (tmp_path / "token").write_text(TOKEN)
    target = live_server.url.removeprefix("http://")
    config = tmp_path / "prometheus.yml"
    config.write_text(
        json.dumps(  # YAML is a superset of JSON
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(RULES)],
                "scrape_configs": [
                    {
                        "job_name": "yomira-console",
                        "metrics_path": "/metrics",
                        "authorization": {
                            "type": "Bearer",
                            "credentials_file": str(tmp_path / "token"),
                        },
                        "static_configs": [{"targets": [target]}],
                    }
                ],
            }
        )
    )
    port = free_port()
    PROMETHEUS_LOG.parent.mkdir(exist_ok=True)
    with PROMETHEUS_LOG.open("w") as log:
        process = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            assert process.poll() is None, f"prometheus exited ({PROMETHEUS_LOG})"
            try:
                with urllib.request.urlopen(f"{base}/-/ready", timeout=2) as answer:  # noqa: S310
                    return answer.status == 200
            except OSError:
                return False

        until("prometheus ready", ready)
        yield base
    finally:
        process.terminate()
        process.wait(10)


def query(base: str, expression: str) -> list[dict]:
    answer = get_json(
        f"{base}/api/v1/query?{urllib.parse.urlencode({'query': expression})}"
    )
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


@pytest.mark.usefixtures("worker")
def test_prometheus_scrapes_a_probe_run_by_a_real_worker(
    prometheus, incident, commander
):
    # The console answers Prometheus (the token accepted) and the rules loaded.
    scraped = 'up{job="yomira-console"} == 1'
    up = until("the console scraped", lambda: query(prometheus, scraped))
    assert len(up) == 1
    groups = get_json(f"{prometheus}/api/v1/rules")["data"]["groups"]
    assert {rule["name"] for g in groups for rule in g["rules"]} >= {
        "YomiraDispatchFailures",
        "YomiraExecutionsStuckQueued",
        "YomiraNoLiveWorker",
    }

    probe = Command.objects.filter(
        playbook=incident.playbook, kind=Command.Kind.PROBE, executor="redis"
    ).first()
    run = request_run(
        incident=incident,
        command=probe,
        params={},
        actor=Actor.person(commander),
        confirmation=confirm_word(probe),
    ).execution
    assert wait_for(run).state == StepExecution.State.SUCCEEDED

    succeeded = (
        'yomira_executions_total{job="yomira-console",executor="redis",'
        'kind="probe",state="succeeded"}'
    )
    result = until("the run in Prometheus", lambda: query(prometheus, succeeded))
    assert [sample["value"][1] for sample in result] == ["1"]
    # Its latency too: one observation of each histogram, with its worker seen live.
    waited = query(
        prometheus,
        'yomira_execution_queue_wait_seconds_count{executor="redis",kind="probe"}',
    )
    assert [sample["value"][1] for sample in waited] == ["1"]
    # The worker's heartbeat row is written every few seconds by a thread of its
    # own: wait for a scrape that saw one, as for the run.
    until(
        "a live worker in Prometheus",
        lambda: query(prometheus, "yomira_workers_live >= 1"),
    )
