"""/alerts/ (firing, resolved, the triage list) for each role, hostile label values
escaped there and on the incident page, the incident header's alerts panel, and
the alerts in all three exports."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from django.test import Client

from alerts.models import AlertGroup
from incidents.models import AuditEvent, Incident
from tests.conftest import signed_in

from .test_routing import am_alert, am_body, resolved

XSS = "<script>alert(1)</script>"
XSS_SHOWN = "&lt;script&gt;alert(1)&lt;/script&gt;"
IMG = "<img src=x onerror=alert(2)>"


@pytest.fixture
def world(alertmanager, settings):  # noqa: ANN001, ANN201
    """A routed incident (one alert firing, one resolved, hostile values), a group
    resolved by its source, and two groups waiting in triage."""
    settings.ALERT_ROUTING_PROBE = False  # HealthCheckFailing: left to a person
    web1 = am_alert(
        "HighErrorRate",
        labels={"instance": "web-1", "severity": "critical", "note": XSS},
        annotations={"summary": f"5xx on checkout {XSS}"},
    )
    web2 = am_alert(
        "HighErrorRate",
        labels={"instance": "web-2", "severity": "critical"},
        starts="2026-11-29T06:50:00Z",
    )
    body = am_body(web1, web2)
    incident = alertmanager.deliver(body).opened
    alertmanager.deliver(am_body(web1, resolved(web2), group_key=body["groupKey"]))
    disk = am_alert("DiskUsageHigh", labels={"mount": "/var"})
    disk_body = am_body(disk)
    disk_incident = alertmanager.deliver(disk_body).opened
    alertmanager.deliver(am_body(resolved(disk), group_key=disk_body["groupKey"]))
    health = alertmanager.deliver(am_body(am_alert("HealthCheckFailing")))
    odd = alertmanager.deliver(
        am_body(am_alert(IMG, labels={"team": XSS}, annotations={"summary": XSS}))
    )
    return {
        "incident": incident,
        "disk_incident": disk_incident,
        "ambiguous": AlertGroup.objects.get(pk=health.group.pk),
        "unrouted": AlertGroup.objects.get(pk=odd.group.pk),
    }


def section(html: str, head: str) -> str:
    """The <section> whose heading has the id `head`."""
    start = html.index(f'id="{head}"')
    end = html.find("</section>", start)
    return html[start:end]


# --- who may see /alerts/ ----------------------------------------------------------


def test_alerts_page_for_each_role(world, viewer, responder, commander, nobody):
    for user in (viewer, responder, commander):
        assert signed_in(user).get("/alerts/").status_code == 200, user
    anonymous = Client().get("/alerts/")
    assert anonymous.status_code == 302
    assert anonymous["Location"] == "/accounts/login/?next=/alerts/"
    refused = signed_in(nobody).get("/alerts/")
    assert refused.status_code == 403
    denial = AuditEvent.objects.filter(verb="permission.denied").latest("seq")
    assert denial.actor == nobody
    assert denial.data["path"] == "/alerts/" and denial.data["method"] == "GET"
    assert denial.data["permission"] == "incidents.view_incident"


def test_alerts_page_lists_firing_and_resolved(world, viewer):
    html = signed_in(viewer).get("/alerts/").content.decode()
    incident = world["incident"]
    firing = section(html, "firing-head")
    resolved_part = section(html, "resolved-head")
    # Firing: web-1 (routed), and the two groups in triage.
    assert re.search(r"Firing <span[^>]*>3</span>", firing)
    (row,) = [r for r in firing.split("<tr") if 'instance="web-1"' in r]
    assert "HighErrorRate" in firing
    assert 'instance="web-1"' in firing and 'instance="web-2"' not in firing
    assert "prod-am<br>" in row
    assert f'<a href="/incidents/{incident.pk}/">#{incident.pk}</a> §1' in row
    assert "alertname: §1 lists the alert HighErrorRate" in row
    assert '<time datetime="2026-11-29T06:47:57+00:00">11-29 06:47:57</time>' in row
    assert firing.count(">triage<") == 2
    # Resolved: web-2 and the disk alert, each with its end and its incident.
    assert 'instance="web-2"' in resolved_part
    assert 'mount="/var"' in resolved_part
    disk = world["disk_incident"]
    assert f'<a href="/incidents/{disk.pk}/">#{disk.pk}</a> §9' in resolved_part
    assert "alertname: §9 lists the alert DiskUsageHigh" in resolved_part
    assert '<time datetime="2026-11-29T07:10:00+00:00">07:10:00</time>' in (
        resolved_part
    )


def test_triage_offers_the_candidates_as_one_click_buttons(world, responder):
    html = signed_in(responder).get("/alerts/").content.decode()
    triage = section(html, "triage-head")
    group = world["ambiguous"]
    item = triage[triage.index(f'id="group-{group.pk}"') :]
    item = item[: item.index("</li>")]
    assert "HealthCheckFailing" in item
    assert "no health probe ran" in item  # the reason, shown
    buttons = re.findall(
        r'<form method="post" action="/alerts/groups/(\d+)/pick" class="inline">'
        r'<input type="hidden" name="csrfmiddlewaretoken" value="[^"]+">\s*'
        r'<input type="hidden" name="playbook" value="([a-z0-9-]+)">\s*'
        r'<button type="submit" class="button primary small">Open on §(\d+) ([^<]+)'
        r"</button>",
        item,
    )
    assert buttons == [
        (
            str(group.pk),
            "postgresql-down-unreachable",
            "3",
            "PostgreSQL Down / Unreachable",
        ),
        (str(group.pk), "redis-down-unreachable", "4", "Redis Down / Unreachable"),
        (
            str(group.pk),
            "object-storage-unreachable",
            "8",
            "Object Storage Unreachable",
        ),
    ]
    # Any playbook, and a dismissal with a reason, for the same group.
    assert f'action="/alerts/groups/{group.pk}/dismiss"' in item
    assert item.count("<option value=") == 13  # "Pick…" and the 12 playbooks
    # The unrouted group has no candidates: the picker and dismiss only.
    other = triage[triage.index(f'id="group-{world["unrouted"].pk}"') :]
    other = other[: other.index("</li>")]
    assert "Open on §" not in other
    assert f'action="/alerts/groups/{world["unrouted"].pk}/pick"' in other


def test_one_click_opens_the_incident_on_that_playbook(world, responder):
    group = world["ambiguous"]
    client = signed_in(responder)
    response = client.post(
        f"/alerts/groups/{group.pk}/pick", {"playbook": "redis-down-unreachable"}
    )
    incident = Incident.objects.get(alert_groups=group)
    assert response.status_code == 302
    assert response["Location"] == f"/incidents/{incident.pk}/"
    assert incident.playbook.number == 4
    triage = section(client.get("/alerts/").content.decode(), "triage-head")
    assert f'id="group-{group.pk}"' not in triage


def test_viewers_see_the_triage_list_without_forms(world, viewer):
    html = signed_in(viewer).get("/alerts/").content.decode()
    triage = section(html, "triage-head")
    assert f'id="group-{world["ambiguous"].pk}"' in triage
    assert "HealthCheckFailing" in triage
    assert "<form" not in triage and "<button" not in triage
    assert "<select" not in triage and "Open on §" not in triage


def test_nothing_waiting(alertmanager, viewer):
    html = signed_in(viewer).get("/alerts/").content.decode()
    assert "Nothing waiting: every firing alert has a playbook." in html
    assert section(html, "firing-head").count("None.") == 1


# --- hostile values ------------------------------------------------------------------


def test_hostile_label_values_are_escaped_on_the_alerts_page(world, responder):
    html = signed_in(responder).get("/alerts/").content.decode()
    assert XSS not in html and IMG not in html
    assert "<script>alert" not in html and "<img src=x" not in html
    assert f'note="{XSS_SHOWN}"' in html
    assert "&lt;img src=x onerror=alert(2)&gt;" in html  # the alert's name
    assert f'team="{XSS_SHOWN}"' in html


def test_hostile_values_are_escaped_on_the_incident_page(world, viewer):
    incident = world["incident"]
    html = signed_in(viewer).get(f"/incidents/{incident.pk}/").content.decode()
    assert XSS not in html
    assert "<script>alert" not in html
    assert XSS_SHOWN in html  # the title (from the summary) and the chip's labels


# --- the incident header ------------------------------------------------------------


def test_the_incident_header_shows_its_alerts(world, viewer):
    incident = world["incident"]
    html = signed_in(viewer).get(f"/incidents/{incident.pk}/").content.decode()
    panel = html[html.index('id="incident-alerts"') :]
    panel = panel[: panel.index("</div>")]
    assert re.search(
        r"<code>HighErrorRate</code> firing since "
        r'<time datetime="2026-11-29T06:47:57\+00:00">Nov 29 06:47</time>',
        panel,
    )
    assert re.search(
        r"<code>HighErrorRate</code> resolved "
        r'<time datetime="2026-11-29T07:10:00\+00:00">Nov 29 07:10</time>',
        panel,
    )
    assert "From prod-am." in panel and "Times UTC." in panel
    assert "Routed by alertname: §1 lists the alert HighErrorRate" in panel
    assert "source resolved" not in panel  # web-1 still fires


def test_the_header_says_when_the_source_resolved(world, viewer):
    disk = world["disk_incident"]
    html = signed_in(viewer).get(f"/incidents/{disk.pk}/").content.decode()
    panel = html[html.index('id="incident-alerts"') :]
    panel = panel[: panel.index("</div>")]
    assert "<code>DiskUsageHigh</code> resolved <time" in panel
    assert "From prod-am; source resolved." in panel


def test_an_incident_opened_by_hand_has_no_alerts_panel(incident, viewer):
    html = signed_in(viewer).get(f"/incidents/{incident.pk}/").content.decode()
    assert 'id="incident-alerts"' not in html


# --- the exports ---------------------------------------------------------------------


def export(client: Client, incident: Incident, name: str) -> str:
    response = client.get(f"/incidents/{incident.pk}/{name}")
    assert response.status_code == 200, name
    return b"".join(response.streaming_content).decode()


def test_the_alerts_are_in_all_three_exports(world, viewer):
    incident = world["incident"]
    client = signed_in(viewer)

    markdown = export(client, incident, "postmortem.md")
    assert (
        "opened the incident from §1 High API Error Rate (5xx) for the alert "
        "HighErrorRate from prod-am (§1 lists the alert HighErrorRate)"
    ) in markdown
    (line,) = [
        line
        for line in markdown.splitlines()
        if "alert HighErrorRate firing since 2026-11-29 06:47:57 UTC" in line
    ]
    assert (
        line.startswith("| ")
        and "| alert-intake (system) | alert HighErrorRate " in line
    )
    assert "instance=web-1" in line and line.endswith(" from prod-am |")
    assert f"note={XSS_SHOWN}" in line
    assert (
        "alert HighErrorRate resolved at 2026-11-29 07:10:00 UTC (instance=web-2)"
    ) in markdown
    assert XSS not in markdown and "<script" not in markdown

    data = json.loads(export(client, incident, "timeline.json"))
    events = data["events"]
    firing = [e for e in events if e["verb"] == "alert.firing"]
    assert [e["data"]["labels"]["instance"] for e in firing] == ["web-1", "web-2"]
    assert all(e["actor"] == "alert-intake" for e in firing)
    text = firing[0]["text"]
    assert text.startswith("alert HighErrorRate firing since 2026-11-29 06:47:57 UTC (")
    assert "instance=web-1" in text and "note=<script>" in text  # JSON is data
    assert text.endswith(" from prod-am")
    assert firing[0]["data"]["source"] == "prod-am"
    (gone,) = [e for e in events if e["verb"] == "alert.resolved"]
    assert gone["data"]["ends_at"] == "2026-11-29T07:10:00+00:00"
    opened = next(e for e in events if e["verb"] == "incident.opened")
    assert opened["data"]["origin"]["rule"] == "alertname"

    rows = list(csv.DictReader(io.StringIO(export(client, incident, "timeline.csv"))))
    verbs = [r["verb"] for r in rows]
    assert verbs.count("alert.firing") == 2 and verbs.count("alert.resolved") == 1
    first = next(r for r in rows if r["verb"] == "alert.firing")
    assert first["actor"] == "alert-intake"
    assert "instance=web-1" in first["description"]
    assert "from prod-am" in first["description"]


def test_source_resolved_in_the_exports(world, viewer):
    disk = world["disk_incident"]
    markdown = export(signed_in(viewer), disk, "postmortem.md")
    assert "source resolved: all 1 alerts of the group from prod-am have ended" in (
        markdown
    )
