"""The alerts page and an alert-opened incident in a real browser, at 1280 px:
the triage list's one-click buttons open the incident, and the incident header
shows its alerts. With YOMIRA_SCREENSHOTS=1 the README's screenshots are written
(docs/screenshots/alerts-light.png, incident-from-alert-dark.png)."""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from playwright.sync_api import Browser, expect

from alerts import intake, sources
from incidents.actors import Actor
from incidents.services import import_runbook
from tests.alerts.test_routing import am_alert, am_body, resolved
from tests.conftest import IMPORTER, PASSWORD, ROOT, YOMIRA_RUNBOOK
from tests.e2e.conftest import sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
SHOTS = ROOT / "docs" / "screenshots"
WRITE = os.environ.get("YOMIRA_SCREENSHOTS") == "1"


def ago(minutes: float) -> str:
    """A startsAt this long before now, as Alertmanager writes it."""
    moment = datetime.now(UTC) - timedelta(minutes=minutes)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def deliver(token: str, body: dict) -> intake.Applied:
    """Through the webhook, then applied as the worker would."""
    response = Client().post(
        "/hooks/alertmanager/prod-am",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code == 202, response.content
    return intake.process(response.json()["receipt"])


@pytest.fixture
def alerting(live_server, make_user, settings):  # noqa: ANN001, ANN201
    settings.ALERT_ROUTING_PROBE = False
    import_runbook(source=YOMIRA_RUNBOOK.read_bytes(), actor=IMPORTER)
    make_user("rita", "Responder")
    make_user("cole", "Commander")
    _, token = sources.create(
        name="prod-am", kind="alertmanager", actor=Actor.system("test")
    )
    errors = [
        am_alert(
            "HighErrorRate",
            labels={"service": "api", "instance": f"api-{n}", "severity": "critical"},
            annotations={"summary": "5xx above 1% of requests"},
            starts=ago(19 - n * 3),
        )
        for n in (1, 2)
    ]
    body = am_body(*errors)
    incident = deliver(token, body).opened
    deliver(
        token,
        am_body(
            errors[0],
            resolved(errors[1], ago(4)),
            group_key=body["groupKey"],
        ),
    )
    deliver(
        token,
        am_body(
            am_alert(
                "DBPoolExhausted",
                labels={"service": "api", "pool": "primary", "severity": "critical"},
                annotations={"summary": "pool wait p95 240 ms"},
                starts=ago(14),
            )
        ),
    )
    disk = am_alert(
        "DiskUsageHigh",
        labels={"instance": "db-1", "mount": "/var/lib/postgresql"},
        starts=ago(95),
    )
    disk_body = am_body(disk)
    deliver(token, disk_body)
    deliver(
        token,
        am_body(resolved(disk, ago(71)), group_key=disk_body["groupKey"]),
    )
    deliver(
        token,
        am_body(
            am_alert(
                "HealthCheckFailing",
                labels={"job": "blackbox", "instance": "api.yomira.app"},
                starts=ago(6),
            )
        ),
    )
    deliver(
        token,
        am_body(
            am_alert(
                "CertificateExpiringSoon",
                labels={"instance": "cdn.yomira.app", "severity": "warning"},
                annotations={"summary": "TLS certificate expires in 6 days"},
                starts=ago(2),
            )
        ),
    )
    return live_server, incident


def test_alerts_page_and_one_click_triage(browser: Browser, alerting):
    server, _ = alerting
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, color_scheme="light"
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        sign_in(page, server, "rita", PASSWORD)
        page.goto(f"{server.url}/alerts/")
        triage = page.locator(".triage-item")
        expect(triage).to_have_count(2)
        health = triage.filter(has_text="HealthCheckFailing")
        expect(
            health.get_by_role("button", name=re.compile(r"^Open on §"))
        ).to_have_count(3)
        expect(page.locator("#firing-head")).to_contain_text("4")
        if WRITE:
            page.screenshot(path=str(SHOTS / "alerts-light.png"))
        health.get_by_role(
            "button", name="Open on §3 PostgreSQL Down / Unreachable"
        ).click()
        expect(page).to_have_url(re.compile(r"/incidents/\d+/$"))
        expect(page.locator("h1")).to_contain_text("HealthCheckFailing")
        expect(page.locator("#incident-alerts")).to_contain_text(
            "Routed by triage: picked by rita in the triage list"
        )
    finally:
        context.close()


def test_an_incident_opened_by_an_alert(browser: Browser, alerting):
    server, incident = alerting
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, color_scheme="dark"
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        sign_in(page, server, "cole", PASSWORD)
        page.goto(f"{server.url}/incidents/{incident.pk}/")
        panel = page.locator("#incident-alerts")
        expect(panel).to_contain_text("HighErrorRate firing since")
        expect(panel).to_contain_text("HighErrorRate resolved Nov")
        expect(panel).to_contain_text(
            "Routed by alertname: §1 lists the alert HighErrorRate"
        )
        assert page.evaluate("matchMedia('(prefers-color-scheme: dark)').matches")
        if WRITE:
            page.screenshot(path=str(SHOTS / "incident-from-alert-dark.png"))
    finally:
        context.close()
