"""/metrics: who may read it, and what each family says about the rows behind it."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from alerts.models import AlertSource, Receipt
from incidents import audit
from incidents import metrics as process_metrics
from incidents.actors import Actor
from incidents.models import AuditEvent, Command, StepExecution, WorkerHeartbeat
from incidents.services import sweeper, workers
from notify.models import Channel, Notification
from yomira_console import metrics

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "s3cret-metrics-token"
State = StepExecution.State


@pytest.fixture(autouse=True)
def _token(settings):
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_MULTIPROC_DIR = ""


def scrape(client, token: str = TOKEN) -> dict[str, dict]:  # noqa: ANN001
    """{family: {(sample name, sorted labels): value}} of one scrape."""
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    families = {}
    for family in text_string_to_metric_families(response.content.decode()):
        families[family.name] = {
            (s.name, tuple(sorted(s.labels.items()))): s.value for s in family.samples
        }
    return families


def value(families: dict, family: str, sample: str | None = None, **labels: str):  # noqa: ANN201
    return families[family].get((sample or family, tuple(sorted(labels.items()))), None)


def denials() -> int:
    return AuditEvent.objects.filter(verb="permission.denied").count()


# --- who may read it -----------------------------------------------------------------


def test_without_a_configured_token_metrics_are_off(client, settings, db):
    settings.METRICS_TOKEN = ""
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer anything")
    assert response.status_code == 404
    assert b"metrics are off: set METRICS_TOKEN" in response.content


def test_a_missing_token_is_refused_401_and_audited(client, db):
    response = client.get("/metrics")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    denial = AuditEvent.objects.filter(verb="permission.denied").latest("seq")
    assert denial.data["permission"] == "metrics.scrape"
    assert denial.data["why"] == "no token"
    assert denial.data["path"] == "/metrics"


def test_a_wrong_token_is_refused_and_never_recorded(client, db):
    before = denials()
    for wrong in (TOKEN[:-1], TOKEN + "x", "", "ünïcödé"):
        response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {wrong}")
        assert response.status_code == 401, wrong
    # Only the Bearer scheme: the token as a Basic password is not accepted.
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Basic {TOKEN}")
    assert response.status_code == 401
    assert denials() == before + 5
    for event in AuditEvent.objects.filter(verb="permission.denied"):
        assert TOKEN not in str(event.data)
        assert TOKEN[:-1] not in str(event.data)


def test_a_session_does_not_open_it(commander_client):
    assert commander_client.get("/metrics").status_code == 401


def test_the_right_token_reads_the_exposition(client, db):
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    assert b"# TYPE yomira_executions_total counter" in response.content
    assert "no-store" in response["Cache-Control"]
    assert (
        client.post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 405
    )


def test_a_flood_of_refusals_is_audited_up_to_the_budget(client, db):
    before = denials()
    for _ in range(40):
        assert client.get("/metrics").status_code == 401
    assert denials() == before + 30  # alerts.sources.DENIALS_AUDITED a minute


# --- the database's figures ------------------------------------------------------------


@pytest.fixture
def probe(incident) -> Command:
    return Command.objects.filter(playbook=incident.playbook, kind="probe").first()


@pytest.fixture
def action(incident) -> Command:
    return Command.objects.filter(playbook=incident.playbook, kind="action").first()


def run(incident, command, state, **times):  # noqa: ANN001, ANN003, ANN201
    return StepExecution.objects.create(
        incident=incident, step=command.step, command=command, state=state, **times
    )


def test_runs_are_counted_by_executor_kind_and_state(client, incident, probe, action):
    for state in (State.SUCCEEDED, State.SUCCEEDED, State.FAILED, State.QUEUED):
        run(incident, probe, state)
    run(incident, action, State.DISPATCH_FAILED)
    run(incident, action, State.AWAITING_APPROVAL)
    StepExecution.objects.create(incident=incident, step=probe.step, state=State.DONE)
    found = scrape(client)
    p, a = probe.executor, action.executor

    def ended(executor: str, kind: str, state: str) -> float | None:
        return value(
            found, "yomira_executions", "yomira_executions_total",
            executor=executor, kind=kind, state=state,
        )  # fmt: skip

    def in_flight(executor: str, kind: str, state: str) -> float | None:
        return value(
            found, "yomira_executions_in_flight",
            executor=executor, kind=kind, state=state,
        )  # fmt: skip

    assert ended(p, "probe", "succeeded") == 2
    assert ended(p, "probe", "failed") == 1
    assert ended(a, "action", "dispatch_failed") == 1
    # In flight is not "ended": a gauge of its own, never in the counter.
    assert ended(p, "probe", "queued") is None
    assert in_flight(p, "probe", "queued") == 1
    assert in_flight(a, "action", "awaiting_approval") == 1
    failures = "yomira_dispatch_failures"
    assert value(found, failures, f"{failures}_total", executor=a, kind="action") == 1
    assert value(found, "yomira_approvals_waiting") == 1
    # A tick (no command) is not a run.
    assert not [k for k in found["yomira_executions"] if ("state", "done") in k[1]]


def test_latency_histograms_have_cumulative_buckets(client, incident, probe):
    t0 = timezone.now() - timedelta(minutes=5)
    # Waited 0.3 s and ran 2 s; waited 40 s (from its approval) and ran 0.2 s.
    s = timedelta(seconds=1)
    run(incident, probe, State.SUCCEEDED,
        created_at=t0, started_at=t0 + 0.3 * s, finished_at=t0 + 2.3 * s)  # fmt: skip
    run(incident, probe, State.FAILED, created_at=t0 - timedelta(hours=1),
        approved_at=t0, started_at=t0 + 40 * s, finished_at=t0 + 40.2 * s)  # fmt: skip
    run(incident, probe, State.RUNNING, created_at=t0, started_at=t0 + s)
    run(incident, probe, State.QUEUED, created_at=t0)  # never started: no wait yet
    found = scrape(client)
    labels = {"executor": probe.executor, "kind": "probe"}
    wait = "yomira_execution_queue_wait_seconds"

    def bucket(family: str, le: str) -> float:
        return value(found, family, f"{family}_bucket", le=le, **labels)

    assert value(found, wait, f"{wait}_count", **labels) == 3
    assert value(found, wait, f"{wait}_sum", **labels) == pytest.approx(41.3)
    assert bucket(wait, "0.25") == 0
    assert bucket(wait, "0.5") == 1
    assert bucket(wait, "1.0") == 2  # the running one waited exactly 1 s: le is <=
    assert bucket(wait, "30.0") == 2
    assert bucket(wait, "60.0") == 3
    assert bucket(wait, "+Inf") == 3
    ran = "yomira_execution_run_seconds"
    assert (
        value(found, ran, f"{ran}_count", **labels) == 2
    )  # the running one has no end
    assert value(found, ran, f"{ran}_sum", **labels) == pytest.approx(2.2)
    assert bucket(ran, "0.1") == 0
    assert bucket(ran, "0.25") == 1
    assert bucket(ran, "2.5") == 2
    for family, bounds in (
        (wait, metrics.QUEUE_WAIT_BUCKETS),
        (ran, metrics.RUN_BUCKETS),
    ):
        counts = [bucket(family, str(float(le))) for le in bounds] + [
            bucket(family, "+Inf")
        ]
        assert counts == sorted(counts)  # cumulative
        assert counts[-1] == value(found, family, f"{family}_count", **labels)


def test_stuck_runs_show_in_the_oldest_age(client, incident, probe):
    found = scrape(client)
    for state in ("queued", "running", "awaiting_approval"):
        assert value(found, "yomira_executions_oldest_seconds", state=state) == 0
    now = timezone.now()
    run(incident, probe, State.QUEUED, created_at=now - timedelta(seconds=600))
    run(incident, probe, State.QUEUED, created_at=now - timedelta(seconds=20))
    # Approved 30 s ago after waiting an hour for it: queued for 30 s.
    run(incident, probe, State.QUEUED, created_at=now - timedelta(hours=1),
        approved_at=now - timedelta(seconds=30))  # fmt: skip
    run(incident, probe, State.RUNNING, created_at=now - timedelta(hours=2),
        started_at=now - timedelta(seconds=900))  # fmt: skip
    found = scrape(client)
    queued = value(found, "yomira_executions_oldest_seconds", state="queued")
    running = value(found, "yomira_executions_oldest_seconds", state="running")
    assert 600 <= queued < 3600
    assert 900 <= running < 7200


def test_open_incidents_by_severity_and_status_leave_out_resolved_and_drills(
    client, incident
):
    found = scrape(client)
    severity = incident.playbook.severity or "none"
    assert value(found, "yomira_incidents_open", severity=severity, status="open") == 1
    incident.status = "acknowledged"
    incident.save()
    incident.pk = None
    incident.drill = True
    incident.save()  # a drill, also acknowledged
    found = scrape(client)
    assert (
        value(found, "yomira_incidents_open", severity=severity, status="open") is None
    )
    assert (
        value(found, "yomira_incidents_open", severity=severity, status="acknowledged")
        == 1
    )


def test_alert_receipts_by_source_and_outcome(client, db):
    am = AlertSource.objects.create(name="am", kind=AlertSource.Kind.ALERTMANAGER)
    grafana = AlertSource.objects.create(name="graf", kind=AlertSource.Kind.GRAFANA)
    for source, state in (
        (am, Receipt.State.PROCESSED),
        (am, Receipt.State.PROCESSED),
        (am, Receipt.State.INVALID),
        (grafana, Receipt.State.FAILED),
        (grafana, Receipt.State.PENDING),
    ):
        Receipt.objects.create(source=source, body="{}", state=state)
    found = scrape(client)

    def receipts(source: str, outcome: str) -> float | None:
        family = "yomira_alert_receipts"
        return value(found, family, f"{family}_total", source=source, outcome=outcome)

    assert receipts("am", "processed") == 2
    assert receipts("am", "invalid") == 1
    assert receipts("graf", "failed") == 1
    assert receipts("graf", "pending") is None
    assert value(found, "yomira_alert_receipts_pending") == 1


def test_notification_sends_by_channel_and_outcome(client, incident):
    Notification.objects.all().delete()
    mail = Channel.objects.create(name="Oncall mail", kind="email", recipients="o@y.t")
    for level, state in enumerate(
        ("sent", "sent", "failed", "suppressed", "queued", "sending")
    ):
        Notification.objects.create(
            incident=incident, channel=mail, event="trigger", level=level,
            dedup_key=f"k{level}", state=state,
        )  # fmt: skip
    found = scrape(client)

    def sends(outcome: str) -> float | None:
        return value(
            found, "yomira_notifications", "yomira_notifications_total",
            channel="Oncall mail", channel_kind="email", outcome=outcome,
        )  # fmt: skip

    assert sends("sent") == 2
    assert sends("failed") == 1
    assert sends("suppressed") == 1
    assert sends("queued") is None
    assert value(found, "yomira_notifications_waiting", state="queued") == 1
    assert value(found, "yomira_notifications_waiting", state="sending") == 1


def test_workers_and_the_sweepers_last_run(client, db):
    found = scrape(client)
    assert value(found, "yomira_workers_live") == 0
    assert value(found, "yomira_site_worker_live", site="default") == 0
    assert "yomira_sweeper_last_run_timestamp_seconds" not in found  # never ran
    workers.beat(hostname="celery@w1", queues=[workers.DEFAULT_QUEUE])
    workers.beat(
        hostname="celery@gone", queues=[workers.DEFAULT_QUEUE],
        started_at=timezone.now() - timedelta(hours=1),
    )  # fmt: skip
    WorkerHeartbeat.objects.filter(hostname="celery@gone").update(
        beat_at=timezone.now() - timedelta(hours=1)
    )
    workers.sweeper_ran()
    found = scrape(client)
    assert value(found, "yomira_workers_live") == 1
    assert value(found, "yomira_site_worker_live", site="default") == 1
    swept_at = value(found, "yomira_sweeper_last_run_timestamp_seconds")
    assert abs(swept_at - timezone.now().timestamp()) < 3600


def test_the_broker_and_the_database_say_whether_they_answered(client, db, monkeypatch):
    found = scrape(client)
    assert value(found, "yomira_database_up") == 1
    assert value(found, "yomira_broker_up") == 1  # tests/stack.py's private Redis

    def unreachable(now):  # noqa: ANN001, ANN202
        raise OperationalError("connection to server at db.internal failed")

    monkeypatch.setattr(metrics, "execution_families", unreachable)
    monkeypatch.setattr(
        metrics.health, "broker_status", lambda: {"status": "down", "reason": "x"}
    )
    found = scrape(client)
    assert value(found, "yomira_database_up") == 0
    assert value(found, "yomira_broker_up") == 0
    assert "yomira_incidents_open" not in found  # nothing half-read


def test_a_scrape_costs_the_same_queries_however_many_rows(client, incident, probe):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            scrape(client)
        return len(captured)

    run(incident, probe, State.SUCCEEDED)
    few = queries()
    for state in (State.SUCCEEDED, State.FAILED, State.QUEUED, State.RUNNING) * 10:
        run(incident, probe, state, started_at=timezone.now())
    source = AlertSource.objects.create(name="am", kind=AlertSource.Kind.ALERTMANAGER)
    Receipt.objects.bulk_create(
        Receipt(source=source, body="{}", state=Receipt.State.PROCESSED)
        for _ in range(30)
    )
    for n in range(5):
        workers.beat(hostname=f"celery@w{n}", queues=[workers.DEFAULT_QUEUE])
    assert queries() == few
    assert few <= 6, few  # one per table, whatever the rows


# --- in-process figures --------------------------------------------------------------


def test_audit_appends_are_timed(client, db):
    family = "yomira_audit_append_seconds"
    before = value(scrape(client), family, f"{family}_count")
    for _ in range(3):
        audit.append("metrics.test", actor=Actor.system("test"))
    after = scrape(client)
    assert value(after, family, f"{family}_count") == before + 3
    assert value(after, family, f"{family}_bucket", le="+Inf") == before + 3


def test_the_sweepers_passes_and_repairs_are_counted(client, incident, probe, settings):
    settings.STALE_RUNNING_AFTER = 60
    swept = "yomira_sweeper_swept"

    def stale_ended(found: dict) -> float:
        return value(found, swept, f"{swept}_total", action="stale_ended")

    before = scrape(client)
    run(incident, probe, State.RUNNING, started_at=timezone.now() - timedelta(hours=1))
    assert sweeper.sweep() == 1
    after = scrape(client)
    assert stale_ended(after) == stale_ended(before) + 1
    runs = "yomira_sweeper_runs"
    assert (
        value(after, runs, f"{runs}_total") == value(before, runs, f"{runs}_total") + 1
    )
    assert value(after, swept, f"{swept}_total", action="resent") == value(
        before, swept, f"{swept}_total", action="resent"
    )


OBSERVE = """
import sys
from incidents import metrics
metrics.AUDIT_APPEND_SECONDS.observe(float(sys.argv[1]))
metrics.SWEEPER_RUNS.inc()
"""


def test_multiprocess_mode_adds_up_every_process(client, db, settings, tmp_path):
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for seconds in ("0.003", "0.2"):
        subprocess.run(
            [sys.executable, "-c", OBSERVE, seconds], cwd=ROOT, env=env, check=True
        )
    # Named by host and pid: containers sharing the directory never share a file.
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 4, names  # a histogram and a counter file per process
    assert all(f"_{process_metrics.HOST}-" in name for name in names)
    settings.METRICS_MULTIPROC_DIR = str(tmp_path)
    found = scrape(client)
    family = "yomira_audit_append_seconds"
    assert value(found, family, f"{family}_count") == 2
    assert value(found, family, f"{family}_sum") == pytest.approx(0.203)
    assert value(found, family, f"{family}_bucket", le="0.005") == 1
    assert value(found, "yomira_sweeper_runs", "yomira_sweeper_runs_total") == 2
    assert value(found, "yomira_database_up") == 1  # and the database's figures too


def test_gunicorns_start_up_clears_only_what_this_hosts_dead_processes_left(
    tmp_path, monkeypatch
):
    config: dict = {}
    exec((ROOT / "gunicorn.conf.py").read_text(), config)
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)  # fmt: skip
    dead_pid = int(ended.stdout)
    dead = tmp_path / f"counter_{process_metrics.process_identity(dead_pid)}.db"
    running = tmp_path / f"counter_{process_metrics.process_identity()}.db"
    other_host = tmp_path / f"counter_otherhost-{dead_pid}.db"
    for path in (dead, running, other_host):
        path.write_bytes(b"")
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    config["on_starting"](None)  # unset: does nothing
    assert dead.exists()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    config["on_starting"](None)
    assert not dead.exists()
    assert running.exists()  # a Celery worker beside gunicorn, still writing
    assert other_host.exists()  # another container's
    live = tmp_path / f"gauge_livesum_{process_metrics.process_identity(8)}.db"
    live.write_bytes(b"")
    config["child_exit"](None, type("Worker", (), {"pid": 8})())
    assert not live.exists()
