"""/health/ready, part by part: database, broker, workers, beat, alert intake and
notifications, each ok / degraded / down with a reason; 503 only when a required
part (database, broker) is down; nothing but states, counts and ages.

The checks run on threads of their own (so a hung database cannot hang the
answer), which see only committed rows: these tests use the transactional
database."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from django.db import OperationalError
from django.utils import timezone

from alerts.models import AlertSource, Receipt
from incidents import tasks
from incidents.models import WorkerHeartbeat
from incidents.services import workers
from notify.models import Channel, Notification
from yomira_console import health

pytestmark = pytest.mark.django_db(transaction=True)
SECRET_HOST = "worker-7.private.example"


def heartbeat(hostname=SECRET_HOST, queues=("celery",), age=0.0, stopped=False):  # noqa: ANN001, ANN201
    now = timezone.now()
    return WorkerHeartbeat.objects.create(
        hostname=hostname,
        queues=list(queues),
        beat_at=now - timedelta(seconds=age),
        stopped_at=now if stopped else None,
    )


def sweeper(age=0.0):  # noqa: ANN001, ANN201
    return WorkerHeartbeat.objects.create(
        hostname=workers.SWEEPER_NAME,
        kind=WorkerHeartbeat.Kind.SWEEPER,
        beat_at=timezone.now() - timedelta(seconds=age),
    )


def ready(client):  # noqa: ANN001, ANN201
    response = client.get("/health/ready")
    assert response["Content-Type"] == "application/json"
    return response.status_code, response.json(), response.content.decode()


@pytest.fixture
def healthy():  # noqa: ANN201
    heartbeat()
    sweeper()


def test_everything_up_is_ok(client, healthy):
    code, body, _ = ready(client)
    assert code == 200
    assert body["status"] == "ok"
    for part in health.PARTS:
        assert body[part] == "ok", part  # the old top-level keys, still a status
        assert body["checks"][part]["status"] == "ok", part
    assert body["checks"]["workers"]["live"] >= 1
    assert body["checks"]["workers"]["sites"]["default"]["live"] is True


def test_anonymous_and_never_cached(client, healthy):
    response = client.get("/health/ready")
    assert response.status_code == 200  # no sign-in: load balancers ask it
    assert "no-cache" in response["Cache-Control"]


def test_it_leaks_no_hostname(client, healthy):
    _, _, text = ready(client)
    assert SECRET_HOST not in text
    assert "worker-7" not in text


# --- workers -----------------------------------------------------------------------
# A real worker of the integration tests may be beating on the default queue in
# this same session: these tests judge a site's queue of their own ("h"), and the
# "no worker at all" rule on rows they give.


@pytest.fixture
def site_h(monkeypatch):  # noqa: ANN001, ANN201
    monkeypatch.setenv("TARGET_SITE_DATABASE_URL", "h")


def test_no_worker_at_all_is_workers_down():
    now = timezone.now()
    gone = (["celery"], False, now - timedelta(minutes=5))
    check = health.judge_workers([gone], now, [])
    assert check["status"] == "down"
    assert check["reason"] == "no worker has sent a heartbeat recently"
    assert (check["live"], check["stale"]) == (0, 1)
    assert check["sites"]["default"] == {"live": False, "last_seen_s": 300.0}
    assert health.judge_workers([], now, [])["sites"]["default"] == {
        "live": False,
        "last_seen_s": None,
    }


def test_workers_down_is_still_200_degraded():
    """The console serves without workers: it says so, it is not taken out."""
    parts = {p: health._check("ok") for p in health.PARTS}
    parts["workers"] = health._check("down", "no worker has sent a heartbeat recently")
    assert health.summary(parts) == ("degraded", 200)


def test_a_site_without_a_live_worker_is_degraded_by_name(client, site_h):
    heartbeat()  # the default queue's worker
    heartbeat("h-1", queues=("site.h",), age=600)  # h's, long gone
    sweeper()
    code, body, _ = ready(client)
    assert code == 200
    assert body["status"] == "degraded"
    assert body["workers"] == "degraded"
    assert body["checks"]["workers"]["reason"] == "no live worker for site h"
    assert body["checks"]["workers"]["sites"]["h"]["live"] is False
    assert body["checks"]["workers"]["sites"]["h"]["last_seen_s"] >= 600
    heartbeat("h-2", queues=("site.h",))
    assert ready(client)[1]["workers"] == "ok"


def test_a_stale_heartbeat_is_not_a_live_worker(client, settings, site_h):
    settings.WORKER_HEARTBEAT_STALE = 30
    heartbeat()
    heartbeat("h-1", queues=("site.h",), age=31)
    body = ready(client)[1]
    assert body["checks"]["workers"]["sites"]["h"]["live"] is False
    assert body["checks"]["workers"]["sites"]["h"]["last_seen_s"] >= 31
    assert body["checks"]["workers"]["stale"] >= 1
    WorkerHeartbeat.objects.filter(hostname="h-1").update(
        beat_at=timezone.now() - timedelta(seconds=25)
    )
    assert ready(client)[1]["checks"]["workers"]["sites"]["h"]["live"] is True


def test_a_worker_that_stopped_is_not_live_at_once(client, site_h):
    heartbeat()
    heartbeat("h-1", queues=("site.h",), stopped=True)
    body = ready(client)[1]
    assert body["checks"]["workers"]["sites"]["h"]["live"] is False
    assert body["checks"]["workers"]["reason"] == "no live worker for site h"


def test_bad_site_settings_are_degraded(client, monkeypatch, healthy):
    monkeypatch.setenv("TARGET_SITES", "nonsense")
    body = ready(client)[1]
    assert body["workers"] == "degraded"
    assert body["checks"]["workers"]["reason"] == "the site settings cannot be read"


def test_a_real_heartbeat_thread_beats_and_marks_itself_stopped(
    client, settings, site_h
):
    settings.WORKER_HEARTBEAT_INTERVAL = 0.05
    heartbeat()
    beating = workers.Heartbeat(hostname="t@h", queues=["site.h"], site="h")
    beating.start()
    try:
        beating.beat_once()  # the first beat is certainly in
        row = WorkerHeartbeat.objects.get(hostname="t@h")
        assert row.queues == ["site.h"] and row.stopped_at is None
        assert ready(client)[1]["checks"]["workers"]["sites"]["h"]["live"] is True
    finally:
        beating.stop()
    assert not beating.is_alive()
    assert WorkerHeartbeat.objects.get(hostname="t@h").stopped_at is not None
    assert ready(client)[1]["checks"]["workers"]["sites"]["h"]["live"] is False


# --- beat --------------------------------------------------------------------------


def test_beat_is_down_until_the_sweeper_has_run(client):
    heartbeat()
    body = ready(client)[1]
    assert body["beat"] == "down"
    assert "never run" in body["checks"]["beat"]["reason"]
    tasks.sweep_stale_executions()  # what celery beat runs every 30 s
    body = ready(client)[1]
    assert body["beat"] == "ok"
    assert body["status"] == "ok"


def test_beat_is_down_when_the_sweeper_is_late(client, settings):
    settings.HEALTH_BEAT_STALE = 90
    heartbeat()
    sweeper(age=91)
    body = ready(client)[1]
    assert body["beat"] == "down"
    assert body["checks"]["beat"]["reason"] == "the sweeper has not run recently"
    assert body["checks"]["beat"]["last_sweep_age_s"] >= 91


# --- the alert intake's backlog -----------------------------------------------------


@pytest.fixture
def source():  # noqa: ANN201
    return AlertSource.objects.create(name="am", kind=AlertSource.Kind.ALERTMANAGER)


def receipt(source, age):  # noqa: ANN001, ANN201
    return Receipt.objects.create(
        source=source, body="{}", received_at=timezone.now() - timedelta(seconds=age)
    )


def test_pending_receipts_within_their_bound_are_ok(client, healthy, source):
    receipt(source, 5)
    body = ready(client)[1]
    assert body["intake"] == "ok"
    assert body["checks"]["intake"]["count"] == 1


def test_an_old_pending_receipt_is_degraded_then_down(
    client, healthy, source, settings
):
    settings.ALERT_RECEIPT_STALE_AFTER = 60
    old = receipt(source, 61)
    receipt(source, 1)
    body = ready(client)[1]
    assert body["intake"] == "degraded"
    assert body["status"] == "degraded"
    assert body["checks"]["intake"]["count"] == 2
    assert body["checks"]["intake"]["oldest_age_s"] >= 61
    assert "longer than 60 s" in body["checks"]["intake"]["reason"]
    Receipt.objects.filter(pk=old.pk).update(
        received_at=timezone.now() - timedelta(seconds=601)
    )
    assert ready(client)[1]["intake"] == "down"
    Receipt.objects.filter(pk=old.pk).update(state=Receipt.State.PROCESSED)
    assert ready(client)[1]["intake"] == "ok"  # processed ones are no backlog


# --- the notification queue ---------------------------------------------------------


@pytest.fixture
def channel():  # noqa: ANN201
    return Channel.objects.create(
        name="Oncall mail", kind="email", recipients="o@y.test"
    )


def notification(incident, channel, **fields):  # noqa: ANN001, ANN003, ANN201
    return Notification.objects.create(
        incident=incident,
        channel=channel,
        event=Notification.Event.TRIGGER,
        dedup_key=f"k{Notification.objects.count()}",
        level=Notification.objects.count(),
        **fields,
    )


def test_a_stuck_notification_is_degraded(client, healthy, incident, channel, settings):
    settings.NOTIFY_STALE_AFTER = 120
    Notification.objects.all().delete()
    old = timezone.now() - timedelta(seconds=200)
    notification(incident, channel, state=Notification.State.SENDING, claimed_at=old)
    body = ready(client)[1]
    assert body["notifications"] == "degraded"
    assert body["checks"]["notifications"]["sending"] == 1
    assert body["checks"]["notifications"]["oldest_age_s"] >= 200


def test_a_retry_scheduled_for_later_is_not_late(client, healthy, incident, channel):
    Notification.objects.all().delete()
    notification(
        incident,
        channel,
        state=Notification.State.QUEUED,
        created_at=timezone.now() - timedelta(hours=1),
        next_attempt_at=timezone.now() + timedelta(minutes=5),
    )
    body = ready(client)[1]
    assert body["notifications"] == "ok"
    assert body["checks"]["notifications"]["queued"] == 1


# --- required parts down: 503, never a hang, never a 500 ----------------------------


def test_the_database_down_is_503_and_says_so_without_its_error_text(client):
    def unreachable():  # noqa: ANN202
        raise OperationalError(
            'connection to server at "db.internal" failed: user yomira'
        )

    parts = health.collect(database_fn=lambda: health.database_parts(unreachable))
    status, code = health.summary(parts)
    assert (status, code) == ("down", 503)
    assert parts["database"]["status"] == "down"
    assert (
        parts["database"]["reason"] == "the database did not answer (OperationalError)"
    )
    assert "db.internal" not in json.dumps(parts)
    for name in ("workers", "beat", "intake", "notifications"):
        assert parts[name] == {
            "status": "degraded",
            "reason": "not checked: the database is down",
        }


def test_a_database_that_does_not_answer_is_down_not_a_hang(settings):
    settings.HEALTH_CHECK_TIMEOUT = 0.2
    release = threading.Event()

    def hung():  # noqa: ANN202
        release.wait(30)
        return {"database": health._check("ok")}

    try:
        parts = health.collect(database_fn=hung)
    finally:
        release.set()
    assert parts["database"] == {"status": "down", "reason": "no answer within 0.2 s"}
    assert health.summary(parts) == ("down", 503)


def test_the_broker_down_is_503(client, healthy):
    def refused():  # noqa: ANN202
        raise ConnectionRefusedError("redis://:hunter2@broker.internal:6379")

    parts = health.collect(broker_fn=lambda: health.broker_part(refused))
    assert parts["broker"]["status"] == "down"
    assert (
        parts["broker"]["reason"]
        == "the broker did not answer (ConnectionRefusedError)"
    )
    assert "hunter2" not in json.dumps(parts)
    assert health.summary(parts) == ("down", 503)
    assert parts["database"]["status"] == "ok"


def test_the_view_answers_503_with_the_required_part_named(client, monkeypatch):
    monkeypatch.setattr(
        health,
        "collect",
        lambda: {
            **{p: health._check("ok") for p in health.PARTS},
            "database": health._check("down", "the database did not answer (X)"),
        },
    )
    code, body, _ = ready(client)
    assert code == 503
    assert body["status"] == "down"
    assert body["database"] == "down"
    assert body["checks"]["database"]["reason"] == "the database did not answer (X)"


def test_live_stays_trivial(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/health/live")
    assert (response.status_code, response.content) == (200, b"ok")
