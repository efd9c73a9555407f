"""What a review found could stop the intake or page twice, each pinned: a receipt
the database refuses, times PostgreSQL cannot read back, a late copy of a firing
body, the intake racing a person, the routing probe and the audit log's lock, a
worker's time limit, a signature with non-ASCII characters."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.db import DatabaseError, connection

from alerts import intake, tasks
from alerts.models import Alert, AlertGroup, AlertSource, PlaybookPolicy, Receipt
from incidents import audit, services
from incidents.actors import Actor
from incidents.models import AuditEvent, Incident
from tests.stack import database_url

from .test_routing import am_alert, am_body, resolved


def post_raw(hook, raw: bytes):  # noqa: ANN001, ANN201
    return hook.client.post(
        hook.url,
        data=raw,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {hook.token}",
    )


# --- what the database cannot store or read back is refused at the door ------------


def test_a_lone_surrogate_is_a_400_naming_where(alertmanager):
    body = am_body(am_alert("HighErrorRate", labels={"path": "PLACEHOLDER"}))
    raw = json.dumps(body).replace("PLACEHOLDER", "\\ud800").encode()
    response = post_raw(alertmanager, raw)
    assert response.status_code == 400
    assert response.json()["error"] == (
        "alerts.0.labels.path: holds a lone surrogate escape (\\ud800-\\udfff), "
        "not UTF-8, which cannot be stored."
    )
    assert not Receipt.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("startsAt", "0001-01-01T00:00:00+01:00"),
        ("startsAt", "9999-12-31T23:00:00-05:00"),
        ("startsAt", "1969-12-31T23:59:59Z"),
        ("endsAt", "9999-12-31T23:00:00-05:00"),
    ],
)
def test_times_postgresql_cannot_read_back_are_a_400(alertmanager, field, value):
    alert = {**am_alert("HighErrorRate"), field: value}
    response = alertmanager.post(am_body(alert))
    assert response.status_code == 400
    assert response.json()["error"] == (
        f"alerts.0.{field}: Value error, must be between 1970 and 2200"
    )
    assert not Receipt.objects.exists()


def test_alertmanagers_zero_end_still_means_not_ended(alertmanager):
    applied = alertmanager.deliver(am_body(am_alert("HighErrorRate")))
    assert applied.opened is not None
    assert Alert.objects.get().ends_at is None


# --- one receipt the database refuses does not stop the others ----------------------


def poisoned_receipt(hook) -> Receipt:  # noqa: ANN001
    """A receipt the database refuses to apply, every time: a real trigger refuses
    its alert's row (as a full disk or a constraint of a later version would)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            CREATE FUNCTION pg_temp.refuse_poison() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
              IF NEW.name = 'PoisonAlert' THEN
                RAISE EXCEPTION 'refused' USING ERRCODE = 'check_violation';
              END IF;
              RETURN NEW;
            END $$;
            CREATE TRIGGER refuse_poison BEFORE INSERT ON alerts_alert
            FOR EACH ROW EXECUTE FUNCTION pg_temp.refuse_poison();
            """
        )
    with hook.capture(execute=False):
        response = hook.post(am_body(am_alert("PoisonAlert")))
    return Receipt.objects.get(pk=response.json()["receipt"])


def test_the_drain_goes_on_past_a_receipt_it_cannot_apply(alertmanager):
    bad = poisoned_receipt(alertmanager)
    with alertmanager.capture(execute=False):
        good = alertmanager.post(am_body(am_alert("DBPoolExhausted"))).json()
    assert intake.drain() == 1
    assert Receipt.objects.get(pk=good["receipt"]).state == "processed"
    assert Incident.objects.get().playbook.number == 5
    bad.refresh_from_db()
    assert (bad.state, bad.attempts) == ("pending", 1)
    # It is failed after RECEIPT_ATTEMPTS, with the reason, and audited.
    for _ in range(intake.RECEIPT_ATTEMPTS - 1):
        with pytest.raises(DatabaseError):
            intake.process(bad.pk)
    bad.refresh_from_db()
    assert bad.state == "failed" and bad.attempts == intake.RECEIPT_ATTEMPTS
    assert bad.error.startswith("refused by the database 5 times: IntegrityError")
    said = AuditEvent.objects.filter(verb="alert.received").latest("seq")
    assert said.data["applied"] is False and said.object_id == str(bad.pk)


def test_the_sweeper_goes_on_past_it_too(alertmanager, settings):
    settings.ALERT_RECEIPT_STALE_AFTER = 0
    poisoned_receipt(alertmanager)
    with alertmanager.capture(execute=False):
        alertmanager.post(am_body(am_alert("DBPoolExhausted")))
    assert tasks.process_stale_receipts() == 1
    assert Incident.objects.count() == 1


def test_a_time_limit_leaves_the_receipt_pending(alertmanager, monkeypatch):
    with alertmanager.capture(execute=False):
        receipt = alertmanager.post(am_body(am_alert("HighErrorRate"))).json()[
            "receipt"
        ]

    def cut_short(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(intake, "_apply_alert", cut_short)
    with pytest.raises(SoftTimeLimitExceeded):
        intake.process(receipt)
    monkeypatch.undo()
    assert Receipt.objects.get(pk=receipt).state == "pending"
    assert intake.process(receipt).opened is not None  # the next drain applies it


# --- a late copy of a firing body ---------------------------------------------------


def test_a_late_copy_of_the_firing_body_does_not_reopen_or_page(alertmanager):
    alert = am_alert("HighErrorRate", labels={"instance": "web-1"})
    body = am_body(alert)
    incident = alertmanager.deliver(body).opened
    PlaybookPolicy.objects.create(
        runbook_key=incident.playbook.runbook.key,
        playbook_slug=incident.playbook.slug,
        resolve_with_source=True,
    )
    alertmanager.deliver(am_body(resolved(alert), group_key=body["groupKey"]))
    incident.refresh_from_db()
    assert incident.status == "resolved"
    late = alertmanager.deliver(body)  # an HA peer's copy, or a retry
    assert not late.new_alerts and not late.reopened and not late.flapped
    incident.refresh_from_db()
    assert incident.status == "resolved"
    assert Alert.objects.get().status == "resolved"
    assert not AlertGroup.objects.get().firing
    assert not incident.events.filter(verb="incident.reopened").exists()
    # A real re-fire has a new startsAt: that one reopens.
    again = {**alert, "startsAt": "2026-11-29T08:00:00Z"}
    assert alertmanager.deliver(am_body(again, group_key=body["groupKey"])).reopened


# --- concurrency with people, and the audit log's lock ------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_intake_and_a_person_changing_the_status_do_not_deadlock(
    alertmanager, commander, monkeypatch
):
    """The intake resolving an incident (its source resolved) while a commander
    acknowledges it: both take the incident's row before the audit log's lock,
    so one waits for the other instead of PostgreSQL killing one of them."""
    alert = am_alert("HighErrorRate", labels={"instance": "web-1"})
    body = am_body(alert)
    incident = intake.process(alertmanager.post(body).json()["receipt"]).opened
    PlaybookPolicy.objects.create(
        runbook_key=incident.playbook.runbook.key,
        playbook_slug=incident.playbook.slug,
        resolve_with_source=True,
    )
    receipt = alertmanager.post(
        am_body(resolved(alert), group_key=body["groupKey"])
    ).json()["receipt"]
    outcome: dict[str, str] = {}
    inside = threading.Event()
    apply_alert = intake._apply_alert

    def slow_apply_alert(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        # The intake is mid-receipt (its locks taken) when the person clicks.
        if threading.current_thread().name == "intake":
            inside.set()
            time.sleep(0.5)
        return apply_alert(*args, **kwargs)

    monkeypatch.setattr(intake, "_apply_alert", slow_apply_alert)

    def run(name: str, work) -> None:  # noqa: ANN001
        try:
            if name == "person":
                inside.wait(10)
            work()
            outcome[name] = "ok"
        except Exception as exc:  # noqa: BLE001 - reported below
            outcome[name] = f"{type(exc).__name__}: {exc}"
        finally:
            connection.close()

    threads = [
        threading.Thread(
            name="intake", target=run, args=("intake", lambda: intake.process(receipt))
        ),
        threading.Thread(
            name="person",
            target=run,
            args=(
                "person",
                lambda: services.change_status(
                    incident=incident,
                    to=Incident.Status.ACKNOWLEDGED,
                    actor=Actor.person(commander),
                ),
            ),
        ),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # The person may be refused (resolved first) but never by a deadlock.
    assert outcome["intake"] == "ok", outcome
    assert "deadlock" not in outcome["person"], outcome
    assert Receipt.objects.get(pk=receipt).state == "processed"


class HealthWatchingTheLock(BaseHTTPRequestHandler):
    """A stand-in /health/ready that, while it answers, asks PostgreSQL whether
    anyone holds the audit log's lock."""

    database_url = ""
    lock_free: list[bool] = []

    def do_GET(self) -> None:  # noqa: N802
        with psycopg.connect(self.database_url, autocommit=True) as db:
            free = db.execute(
                "SELECT pg_try_advisory_lock(%s)", [audit.ADVISORY_LOCK_ID]
            ).fetchone()[0]
            if free:
                db.execute("SELECT pg_advisory_unlock(%s)", [audit.ADVISORY_LOCK_ID])
        self.lock_free.append(free)
        body = json.dumps({"database": "error", "redis": "ok"}).encode()
        self.send_response(503)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.django_db(transaction=True)
def test_the_routing_probe_runs_without_the_audit_lock(alertmanager, monkeypatch):
    settings_dict = connection.settings_dict
    HealthWatchingTheLock.database_url = database_url(settings_dict)
    HealthWatchingTheLock.lock_free = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), HealthWatchingTheLock)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv(
        "TARGET_HOSTS", f"api.yomira.app=http://127.0.0.1:{server.server_port}"
    )
    intake._probed.clear()
    try:
        receipt = alertmanager.post(am_body(am_alert("HealthCheckFailing"))).json()
        applied = intake.process(receipt["receipt"])
    finally:
        server.shutdown()
    assert HealthWatchingTheLock.lock_free == [True]
    assert applied.opened is not None and applied.opened.playbook.number == 3


def test_a_storm_of_ambiguous_groups_asks_the_health_check_once(
    alertmanager, monkeypatch
):
    asked = []

    def probe(*, command, actor):  # noqa: ANN001, ANN202
        asked.append(command.pk)
        return True, '{"database": "ok", "redis": "error"}'

    monkeypatch.setattr(intake.services, "probe_for_routing", probe)
    intake._probed.clear()
    for n in range(3):
        alert = am_alert("HealthCheckFailing", labels={"instance": f"api-{n}"})
        assert alertmanager.deliver(am_body(alert)).opened.playbook.number == 4
    assert len(asked) == 1


def test_a_signature_with_non_ascii_characters_is_a_401(grafana, monkeypatch):
    monkeypatch.setenv("TEST_HMAC_SECRET", "s3cret-for-grafana")
    AlertSource.objects.filter(pk=grafana.source.pk).update(
        hmac_secret_env="TEST_HMAC_SECRET", timestamp_header=""
    )
    body = {**am_body(am_alert("HighErrorRate")), "version": "1"}
    response = grafana.post(body, **{"X-Grafana-Alerting-Signature": "é" * 64})
    assert response.status_code == 401
