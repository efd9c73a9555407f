"""Admins manage alert sources and routes in the admin: a source's token is shown
once, in the message after it is made or rotated, and works at the webhook; a route
whose matchers or playbook cannot be read is refused with the reason, never a 500."""

from __future__ import annotations

import re

from django.contrib.messages import get_messages
from django.test import Client

from alerts.models import AlertSource, Route, digest
from incidents.models import AuditEvent

from .test_routing import am_alert, am_body


def token_in(response) -> str:  # noqa: ANN001
    said = " ".join(str(m) for m in get_messages(response.wsgi_request))
    found = re.search(r"\(shown once; store it in the sender's config\): (\S+)", said)
    assert found, said
    return found.group(1)


def test_a_source_made_in_the_admin_shows_its_token_once(admin_user, yomira):
    client = Client()
    client.force_login(admin_user)
    response = client.post(
        "/admin/alerts/alertsource/add/",
        {
            "name": "eu-am",
            "kind": "alertmanager",
            "enabled": "on",
            "hmac_secret_env": "",
            "signature_header": "X-Grafana-Alerting-Signature",
            "timestamp_header": "X-Grafana-Alerting-Timestamp",
            "rate_limit_per_minute": "600",
        },
        follow=True,
    )
    assert response.status_code == 200
    token = token_in(response)
    source = AlertSource.objects.get(name="eu-am")
    made = AuditEvent.objects.get(verb="alert_source.created")
    assert (made.actor_name, made.data) == (
        admin_user.get_username(),
        {"name": "eu-am", "kind": "alertmanager", "drill": False},
    )
    assert source.token_sha256 == digest(token)
    assert (
        token
        not in client.get(
            f"/admin/alerts/alertsource/{source.pk}/change/"
        ).content.decode()
    )
    hook = Client().post(
        "/hooks/alertmanager/eu-am",
        data=am_body(am_alert("HighErrorRate")),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert hook.status_code == 202

    rotated = client.post(
        "/admin/alerts/alertsource/",
        {"action": "rotate_tokens", "_selected_action": [source.pk]},
        follow=True,
    )
    new = token_in(rotated)
    assert new != token
    assert AlertSource.objects.get(pk=source.pk).token_sha256 == digest(new)
    assert AuditEvent.objects.filter(verb="alert_source.token_rotated").count() == 1

    disabled = client.post(
        f"/admin/alerts/alertsource/{source.pk}/change/",
        {
            "name": "eu-am",
            "kind": "alertmanager",
            "hmac_secret_env": "",
            "signature_header": "X-Grafana-Alerting-Signature",
            "timestamp_header": "X-Grafana-Alerting-Timestamp",
            "rate_limit_per_minute": "600",
        },
    )
    assert disabled.status_code == 302
    changed = AuditEvent.objects.get(verb="alert_source.changed")
    assert changed.data == {
        "name": "eu-am",
        "changed": ["enabled"],
        "enabled": False,
        "drill": False,
    }
    refused = Client().post(
        "/hooks/alertmanager/eu-am",
        data=am_body(am_alert("HighErrorRate")),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {new}",
    )
    assert refused.status_code == 401


def test_a_source_pointed_at_the_consoles_keys_is_refused(admin_user, yomira):
    client = Client()
    client.force_login(admin_user)
    response = client.post(
        "/admin/alerts/alertsource/add/",
        {
            "name": "g",
            "kind": "grafana",
            "enabled": "on",
            "hmac_secret_env": "SECRET_KEY",
            "signature_header": "X-Grafana-Alerting-Signature",
            "timestamp_header": "",
            "rate_limit_per_minute": "0",
        },
    )
    assert response.status_code == 200  # the form again, with its errors
    page = response.content.decode()
    assert "ending in _HMAC_SECRET" in page
    assert "greater than or equal to 1" in page
    assert not AlertSource.objects.exists()


def test_a_route_that_cannot_be_read_is_refused_with_the_reason(admin_user, yomira):
    client = Client()
    client.force_login(admin_user)
    bad = client.post(
        "/admin/alerts/route/add/",
        {
            "name": "crawler",
            "priority": "10",
            "enabled": "on",
            "matchers": 'alertname=~"(unclosed", team="crawl"',
            "playbook": "no-such-playbook",
        },
    )
    assert bad.status_code == 200
    page = bad.content.decode()
    assert "is not a regular expression" in page
    assert "No playbook of the current runbook has the slug or number" in page
    assert not Route.objects.exists()
    good = client.post(
        "/admin/alerts/route/add/",
        {
            "name": "crawler",
            "priority": "10",
            "enabled": "on",
            "matchers": 'alertname="CrawlerJobsStuck", team=~"crawl.*"',
            "playbook": "6",
        },
    )
    assert good.status_code == 302
    assert Route.objects.get().playbook == "6"
