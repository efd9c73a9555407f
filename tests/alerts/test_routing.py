"""Every routing rule of alerts/routing.py, end to end through the Alertmanager
webhook (the receipt stored, then applied as the worker would), and the unit parts
(route, parse_matchers) on their own: which playbook, by which rule, why; the
triage list for what no rule routes; severity; resolving with the source."""

from __future__ import annotations

import itertools
import json

import pytest

from alerts import routing
from alerts.models import AlertGroup, PlaybookPolicy, Route
from alerts.payloads import Alert as AlertIn
from alerts.payloads import label_fingerprint
from incidents.models import AuditEvent, Incident, Playbook
from tests.conftest import signed_in

_keys = itertools.count(1)


def am_alert(
    name: str | None = "HighErrorRate",
    *,
    labels: dict | None = None,
    annotations: dict | None = None,
    status: str = "firing",
    starts: str = "2026-11-29T06:47:57Z",
    generator_url: str = "http://prometheus.example/graph?g0.expr=up",
    fingerprint: str | None = None,
) -> dict:
    """One alert as Alertmanager 0.25 writes it in a webhook body."""
    all_labels = {**({"alertname": name} if name else {}), **(labels or {})}
    return {
        "status": status,
        "labels": all_labels,
        "annotations": annotations or {},
        "startsAt": starts,
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else starts,
        "generatorURL": generator_url,
        "fingerprint": fingerprint or label_fingerprint(all_labels),
    }


def am_body(*alerts: dict, group_key: str | None = None, status: str = "") -> dict:
    """An Alertmanager webhook (version 4) body; a fresh group unless told."""
    firing = any(a["status"] == "firing" for a in alerts)
    return {
        "receiver": "console",
        "status": status or ("firing" if firing else "resolved"),
        "alerts": list(alerts),
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example",
        "version": "4",
        "groupKey": group_key or f'{{}}:{{group="{next(_keys)}"}}',
        "truncatedAlerts": 0,
    }


def resolved(alert: dict, ends: str = "2026-11-29T07:10:00Z") -> dict:
    return {**alert, "status": "resolved", "endsAt": ends}


def routed_to(hook, *alerts: dict) -> tuple[Incident, AlertGroup]:  # noqa: ANN001
    """Deliver one group's firing alerts; the incident it opened and its group."""
    applied = hook.deliver(am_body(*alerts))
    assert applied.opened is not None, AlertGroup.objects.get(pk=applied.group.pk)
    group = AlertGroup.objects.get(pk=applied.group.pk)
    assert group.incident == applied.opened
    assert group.playbook == applied.opened.playbook
    return applied.opened, group


def unit(labels: dict, annotations: dict | None = None, url: str = "") -> AlertIn:
    return AlertIn(
        status="firing",
        labels=labels,
        annotations=annotations or {},
        starts_at=None,  # type: ignore[arg-type] - routing never reads it
        ends_at=None,
        generator_url=url,
        fingerprint="f",
    )


# --- 1. an admin's routes ------------------------------------------------------------


def test_an_admin_route_sends_a_custom_alert_to_its_playbook(alertmanager):
    Route.objects.create(
        name="crawler",
        priority=10,
        matchers='alertname="CrawlerJobsStuck", team=~"crawl.*"',
        playbook="crawler-stuck-jobs",
    )
    incident, group = routed_to(
        alertmanager,
        am_alert("CrawlerJobsStuck", labels={"team": "crawler", "severity": "warning"}),
    )
    assert incident.playbook.number == 6
    assert incident.playbook.title == "Crawler Stuck Jobs"
    assert group.rule == "route"
    assert group.reason == (
        'route “crawler” matched alertname="CrawlerJobsStuck", team=~"crawl.*"'
    )
    assert group.triage == ""
    opened = incident.events.get(verb="incident.opened")
    assert opened.data["origin"]["rule"] == "route"
    assert opened.data["origin"]["source"] == "prod-am"


def test_a_regex_matcher_must_match_the_whole_value(alertmanager):
    Route.objects.create(
        name="crawler",
        matchers='alertname="CrawlerJobsStuck", team=~"crawl.*"',
        playbook="6",
    )
    applied = alertmanager.deliver(
        am_body(am_alert("CrawlerJobsStuck", labels={"team": "webcrawler"}))
    )
    assert applied.opened is None
    group = AlertGroup.objects.get()
    assert group.rule == "unrouted" and group.triage == "waiting"


def test_routes_in_priority_order_first_wins_disabled_skipped(alertmanager):
    common = 'alertname="PodRestarted"'
    Route.objects.create(
        name="off", priority=1, enabled=False, matchers=common, playbook="11"
    )
    Route.objects.create(
        name="later", priority=50, matchers=common, playbook="12"
    )  # made first: priority, not creation order, decides
    Route.objects.create(
        name="oom", priority=5, matchers=f'{common}, reason="OOMKilled"', playbook="10"
    )
    Route.objects.create(name="no such", priority=2, matchers=common, playbook="99")
    incident, group = routed_to(
        alertmanager, am_alert("PodRestarted", labels={"reason": "OOMKilled"})
    )
    assert incident.playbook.number == 10
    assert (
        group.reason
        == 'route “oom” matched alertname="PodRestarted", reason="OOMKilled"'
    )
    # Without the OOM reason, the next enabled route in order takes it.
    incident, group = routed_to(
        alertmanager, am_alert("PodRestarted", labels={"reason": "Error"})
    )
    assert incident.playbook.number == 12
    assert group.reason.startswith("route “later” matched")


def test_negative_matchers(alertmanager):
    Route.objects.create(
        name="prod tokens",
        priority=1,
        matchers='alertname="TokenReuse"\nenv!="staging"\nregion!~"test-.*"',
        playbook="security-incident-token-compromise",
    )
    incident, group = routed_to(
        alertmanager, am_alert("TokenReuse", labels={"env": "prod", "region": "eu-1"})
    )
    assert incident.playbook.number == 12 and group.rule == "route"
    for labels in ({"env": "staging"}, {"region": "test-eu"}):
        applied = alertmanager.deliver(am_body(am_alert("TokenReuse", labels=labels)))
        assert applied.opened is None
        assert AlertGroup.objects.get(pk=applied.group.pk).rule == "unrouted"


def test_a_route_comes_before_the_runbooks_alert_names(alertmanager):
    Route.objects.create(
        name="staging errors",
        matchers='alertname="HighErrorRate", env="staging"',
        playbook="2",
    )
    incident, group = routed_to(
        alertmanager, am_alert("HighErrorRate", labels={"env": "staging"})
    )
    assert incident.playbook.number == 2 and group.rule == "route"
    incident, group = routed_to(
        alertmanager, am_alert("HighErrorRate", labels={"env": "prod"})
    )
    assert incident.playbook.number == 1 and group.rule == "alertname"


# --- parse_matchers and route() on their own --------------------------------------


def test_parse_matchers_reads_alertmanagers_syntax():
    found = routing.parse_matchers(
        'alertname="X", team=~"crawl.*"\nenv!="staging",region!~"test-.*", bare=yes'
    )
    assert [(m.label, m.op, m.value) for m in found] == [
        ("alertname", "=", "X"),
        ("team", "=~", "crawl.*"),
        ("env", "!=", "staging"),
        ("region", "!~", "test-.*"),
        ("bare", "=", "yes"),
    ]
    assert str(found[1]) == 'team=~"crawl.*"'
    (escaped,) = routing.parse_matchers(r'summary="say \"hi\""')
    assert escaped.value == 'say "hi"'


def test_a_comma_inside_a_quoted_value_belongs_to_the_value():
    # Alertmanager's own syntax: `{summary="a, b"}` is one matcher.
    found = routing.parse_matchers('alertname="X", summary="disk full, sda"')
    assert [(m.label, m.value) for m in found] == [
        ("alertname", "X"),
        ("summary", "disk full, sda"),
    ]
    (regex,) = routing.parse_matchers('instance=~"web-[0-9]{1,3}"')
    assert regex.matches({"instance": "web-12"})
    assert not regex.matches({"instance": "web-1234"})


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "at least one matcher"),
        ("  ,\n ", "at least one matcher"),
        ("alertname", "Matcher 1 ('alertname') is not"),
        ('alertname="X", =~"y"', "Matcher 2"),
        ('team=~"crawl(("', "is not a regular expression"),
    ],
)
def test_parse_matchers_refuses_with_the_place(text, says):
    with pytest.raises(routing.MatcherError) as refused:
        routing.parse_matchers(text)
    assert says in str(refused.value)


def test_matcher_semantics():
    m = routing.Matcher
    labels = {"team": "crawler", "env": "prod"}
    assert m("team", "=", "crawler").matches(labels)
    assert not m("team", "=", "crawl").matches(labels)
    assert m("team", "!=", "web").matches(labels)
    assert not m("team", "!=", "crawler").matches(labels)
    assert m("team", "=~", "crawl.*").matches(labels)
    assert not m("team", "=~", "crawl").matches(labels)  # anchored, like Prometheus
    assert m("team", "!~", "web.*").matches(labels)
    assert not m("team", "!~", "c.*").matches(labels)
    # A missing label is the empty string, as in Alertmanager.
    assert m("zone", "=", "").matches(labels)
    assert m("zone", "!=", "eu").matches(labels)
    assert not m("zone", "=~", ".+").matches(labels)


def test_route_unit_rules_in_order(yomira):
    playbooks = list(Playbook.objects.current())
    broken = Route(name="broken", matchers="nonsense", playbook="3")
    good = Route(name="db", matchers='team="db"', playbook="3")
    # An unreadable stored route is skipped; the next one applies.
    got = routing.route(
        unit({"alertname": "X", "team": "db"}), playbooks, [broken, good]
    )
    assert (got.playbook.number, got.rule) == (3, "route")
    got = routing.route(unit({"alertname": "X", "playbook": "§9"}), playbooks)
    assert (got.playbook.number, got.rule) == (9, "label")
    got = routing.route(unit({"alertname": "X"}), playbooks)
    assert (got.playbook, got.rule, got.candidates) == (None, "unrouted", [])
    assert got.reason == "no route, label, alert name, runbook_url or metric matched"


# --- 2. the playbook label -------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "number"),
    [("crawler-stuck-jobs", 6), ("10", 10), ("§11", 11), ("Memory-OOM", 10)],
)
def test_the_playbook_label_by_slug_or_number(alertmanager, value, number):
    incident, group = routed_to(
        alertmanager, am_alert("SomethingCustom", labels={"playbook": value})
    )
    assert incident.playbook.number == number
    assert group.rule == "label"
    assert group.reason == f"the alert's playbook label is {value!r}"


def test_a_playbook_label_naming_nothing_falls_through(alertmanager):
    incident, group = routed_to(
        alertmanager, am_alert("DiskUsageHigh", labels={"playbook": "no-such-thing"})
    )
    assert incident.playbook.number == 9 and group.rule == "alertname"


# --- 3. the alert name -------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "number"),
    [
        ("HighErrorRate", 1),
        ("HighLatency", 2),
        ("DBPoolExhausted", 5),
        ("DiskUsageHigh", 9),
    ],
)
def test_the_alert_name_the_runbook_lists(alertmanager, name, number):
    incident, group = routed_to(alertmanager, am_alert(name))
    assert incident.playbook.number == number
    assert group.rule == "alertname"
    assert group.reason == f"§{number} lists the alert {name}"
    assert incident.events.filter(verb="diagnosis.started").count() == 1
    assert incident.events.filter(verb="alert.firing").count() == 1


# --- 4. runbook_url ------------------------------------------------------------------


def test_the_anchors_are_githubs(yomira):
    anchors = dict(Playbook.objects.current().values_list("number", "anchor"))
    assert anchors[3] == "3-postgresql-down--unreachable"
    assert anchors[5] == "5-db-connection-pool-exhausted"
    assert anchors[7] == "7-smtp--email-delivery-failure"


@pytest.mark.parametrize(
    ("url", "number"),
    [
        ("https://wiki/runbook.md#5-db-connection-pool-exhausted", 5),
        ("https://wiki/runbook.md#3-postgresql-down--unreachable", 3),
        ("https://git.example/ops/runbook.md#7-SMTP--email-delivery-failure", 7),
        ("https://console.yomira.app/playbooks/crawler-stuck-jobs/", 6),
        ("https://wiki/runbooks/memory-oom", 10),
    ],
)
def test_the_runbook_url_annotation(alertmanager, url, number):
    incident, group = routed_to(
        alertmanager, am_alert("PoolWaitSlow", annotations={"runbook_url": url})
    )
    assert incident.playbook.number == number
    assert group.rule == "runbook_url"
    assert group.reason == f"its runbook_url points at §{number}"


def test_a_runbook_url_pointing_nowhere_routes_nothing(alertmanager):
    applied = alertmanager.deliver(
        am_body(
            am_alert(
                "PoolWaitSlow",
                annotations={"runbook_url": "https://runbooks.example/PoolWaitSlow"},
            )
        )
    )
    assert applied.opened is None
    assert AlertGroup.objects.get().rule == "unrouted"


# --- 5. a metric the condition names ---------------------------------------------

EMAIL_EXPR = (
    "http://prom/graph?g0.expr=rate(emails_sent_total%7Bstatus%3D%22error%22%7D"
    "%5B5m%5D)+%3E+0.1&g0.tab=1"
)


def test_a_metric_of_the_condition_in_the_generator_expression(alertmanager):
    incident, group = routed_to(
        alertmanager, am_alert("EmailErrors", generator_url=EMAIL_EXPR)
    )
    assert incident.playbook.number == 7
    assert group.rule == "metric"
    assert group.reason == (
        "its expression uses emails_sent_total, which §7's alert condition names"
    )


def test_a_metric_name_must_match_whole(alertmanager):
    url = EMAIL_EXPR.replace("emails_sent_total", "emails_sent_total_bucket")
    applied = alertmanager.deliver(am_body(am_alert("EmailErrors", generator_url=url)))
    assert applied.opened is None
    assert AlertGroup.objects.get().rule == "unrouted"


# --- HealthCheckFailing: §3, §4 or §8 ---------------------------------------------


@pytest.mark.parametrize(
    ("labels", "annotations", "number", "said"),
    [
        ({"component": "database"}, {}, 3, "database: error"),
        ({"component": "redis"}, {}, 4, "redis: error"),
        ({"component": "Storage"}, {}, 8, "storage: error"),
        ({}, {"description": "database: error in health check"}, 3, "database: error"),
        ({}, {"summary": '"redis": "error"'}, 4, "redis: error"),
        ({"check": "storage=error"}, {}, 8, "storage: error"),
    ],
)
def test_health_check_failing_by_what_the_alert_says(
    alertmanager, labels, annotations, number, said
):
    before = AuditEvent.objects.filter(verb="alert.routing_probe").count()
    incident, group = routed_to(
        alertmanager,
        am_alert("HealthCheckFailing", labels=labels, annotations=annotations),
    )
    assert incident.playbook.number == number
    assert group.rule == "alertname"
    assert group.reason == (
        f"HealthCheckFailing is listed by 3 playbooks; the alert's labels say "
        f"{said}, which is §{number}'s condition"
    )
    # The alert said enough: no probe ran.
    assert AuditEvent.objects.filter(verb="alert.routing_probe").count() == before


HEALTH_DEGRADED = {
    "status": "degraded",
    "database": "error",
    "redis": "ok",
    "storage": "ok",
}
HEALTH_OK = {"status": "ok", "database": "ok", "redis": "ok", "storage": "ok"}


@pytest.fixture
def health(httpserver, monkeypatch):  # noqa: ANN001, ANN201
    """The runbook's api.yomira.app, here: its /health/ready answers what we say."""
    monkeypatch.setenv("TARGET_HOSTS", f"api.yomira.app={httpserver.url_for('')}")

    def answer(doc: dict, status: int = 200) -> None:
        httpserver.clear()
        httpserver.expect_request("/health/ready", method="GET").respond_with_data(
            json.dumps(doc), status=status, content_type="application/json"
        )

    return answer


def test_health_check_failing_routed_by_the_runbooks_health_probe(
    alertmanager, health, httpserver
):
    health(HEALTH_DEGRADED, status=503)
    incident, group = routed_to(alertmanager, am_alert("HealthCheckFailing"))
    assert incident.playbook.number == 3
    assert group.rule == "health_probe"
    assert group.reason == (
        "HealthCheckFailing is listed by 3 playbooks; the health probe "
        "`curl https://api.yomira.app/health/ready` reported database: error"
    )
    assert [r.path for r, _ in httpserver.log] == ["/health/ready"]
    probe = AuditEvent.objects.get(verb="alert.routing_probe")
    assert probe.actor_name == "alert-intake"
    assert probe.incident_id is None
    assert probe.data["command"] == "curl https://api.yomira.app/health/ready"
    assert probe.data["playbook"] == 1  # §1 step 1 is the runbook's health check
    assert probe.data["ok"] is False  # a 503 is a failed probe, and still says why
    assert "503" in probe.data["summary"]
    # The rewritten host (a target's value) is never what the record shows.
    assert httpserver.host not in json.dumps(probe.data)


def test_a_healthy_answer_leaves_it_to_a_responder(alertmanager, health, httpserver):
    health(HEALTH_OK)
    applied = alertmanager.deliver(am_body(am_alert("HealthCheckFailing")))
    assert applied.opened is None
    assert Incident.objects.count() == 0
    group = AlertGroup.objects.get()
    assert group.triage == "waiting"
    assert group.rule == "ambiguous"
    assert group.candidates == [3, 4, 8]
    assert group.incident is None and group.playbook is None
    assert group.reason == (
        "HealthCheckFailing is listed by §3, §4, §8; the health probe "
        "`curl https://api.yomira.app/health/ready` did not single one out"
    )
    assert AuditEvent.objects.get(verb="alert.routing_probe").data["ok"] is True
    unrouted = AuditEvent.objects.get(verb="alert.unrouted")
    assert unrouted.data["candidates"] == [3, 4, 8]
    assert unrouted.data["rule"] == "ambiguous"
    assert len(httpserver.log) == 1


def test_two_parts_down_is_ambiguous_too(alertmanager, health):
    health({**HEALTH_DEGRADED, "redis": "error"}, status=503)
    applied = alertmanager.deliver(am_body(am_alert("HealthCheckFailing")))
    assert applied.opened is None
    group = AlertGroup.objects.get()
    assert (group.rule, group.candidates) == ("ambiguous", [3, 4, 8])


def test_without_the_routing_probe_it_waits_for_a_responder(
    alertmanager, settings, httpserver, monkeypatch
):
    settings.ALERT_ROUTING_PROBE = False
    monkeypatch.setenv("TARGET_HOSTS", f"api.yomira.app={httpserver.url_for('')}")
    applied = alertmanager.deliver(am_body(am_alert("HealthCheckFailing")))
    assert applied.opened is None
    group = AlertGroup.objects.get()
    assert group.rule == "ambiguous" and group.candidates == [3, 4, 8]
    assert group.reason.endswith(
        "the alert's labels do not say which part, and no health probe ran"
    )
    assert not AuditEvent.objects.filter(verb="alert.routing_probe").exists()
    assert httpserver.log == []


# --- 6. unrouted: the triage list ------------------------------------------------


def unrouted_group(hook, name: str = "WeirdThing") -> AlertGroup:  # noqa: ANN001
    applied = hook.deliver(am_body(am_alert(name, labels={"severity": "warning"})))
    assert applied.opened is None
    return AlertGroup.objects.get(pk=applied.group.pk)


def test_an_unknown_alert_waits_in_triage_and_is_audited(alertmanager):
    group = unrouted_group(alertmanager)
    assert group.triage == "waiting" and group.rule == "unrouted"
    assert group.candidates == [] and group.incident is None
    event = AuditEvent.objects.get(verb="alert.unrouted")
    assert event.actor_name == "alert-intake"
    assert event.data == {
        "alert": "WeirdThing",
        "source": "prod-am",
        "rule": "unrouted",
        "reason": "no route, label, alert name, runbook_url or metric matched",
        "candidates": [],
    }
    assert Incident.objects.count() == 0
    # Repeats of the same group stay in triage: no second audit, no incident.
    again = alertmanager.deliver(
        am_body(
            am_alert("WeirdThing", labels={"severity": "warning"}),
            group_key=group.group_key,
        )
    )
    assert again.opened is None
    assert AuditEvent.objects.filter(verb="alert.unrouted").count() == 1


def test_a_responder_picks_the_playbook(alertmanager, responder):
    group = unrouted_group(alertmanager)
    client = signed_in(responder)
    response = client.post(
        f"/alerts/groups/{group.pk}/pick", {"playbook": "crawler-stuck-jobs"}
    )
    incident = Incident.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/incidents/{incident.pk}/"
    assert incident.playbook.number == 6
    assert incident.severity == "warning"  # the alert's own label
    group.refresh_from_db()
    assert group.incident == incident
    assert group.triage == "picked"
    assert group.rule == "triage"
    assert group.reason == "picked by rita in the triage list"
    assert group.triaged_by == responder
    opened = incident.events.get(verb="incident.opened")
    assert opened.actor == responder
    assert opened.data["origin"]["rule"] == "triage"
    assert incident.events.filter(verb="diagnosis.started").count() == 1
    firing = incident.events.get(verb="alert.firing")
    assert firing.data["alert"] == "WeirdThing" and firing.actor == responder

    # A second pick (a double click, or a colleague) returns the same incident.
    again = client.post(f"/alerts/groups/{group.pk}/pick", {"playbook": "memory-oom"})
    assert again.status_code == 302
    assert again["Location"] == f"/incidents/{incident.pk}/"
    assert Incident.objects.count() == 1
    assert incident.events.filter(verb="diagnosis.started").count() == 1


def test_a_pick_needs_a_playbook_of_the_current_runbook(alertmanager, responder):
    group = unrouted_group(alertmanager)
    response = signed_in(responder).post(
        f"/alerts/groups/{group.pk}/pick", {"playbook": "no-such-playbook"}
    )
    assert response.status_code == 400
    assert "Pick a playbook of the current runbook." in response.content.decode()
    assert Incident.objects.count() == 0
    group.refresh_from_db()
    assert group.triage == "waiting"


def test_a_viewer_cannot_pick_or_dismiss(alertmanager, viewer):
    group = unrouted_group(alertmanager)
    client = signed_in(viewer)
    for path, data in (
        ("pick", {"playbook": "crawler-stuck-jobs"}),
        ("dismiss", {"reason": "noise"}),
    ):
        response = client.post(f"/alerts/groups/{group.pk}/{path}", data)
        assert response.status_code == 403
        denial = AuditEvent.objects.filter(verb="permission.denied").latest("seq")
        assert denial.actor == viewer
        assert denial.data["permission"] == "incidents.add_incident"
        assert denial.data["path"] == f"/alerts/groups/{group.pk}/{path}"
        assert denial.data["method"] == "POST"
    assert Incident.objects.count() == 0
    group.refresh_from_db()
    assert group.triage == "waiting"
    assert not AuditEvent.objects.filter(verb="alert.dismissed").exists()


def test_dismiss_needs_a_reason_and_is_audited(alertmanager, responder):
    group = unrouted_group(alertmanager)
    client = signed_in(responder)
    assert f'id="group-{group.pk}"' in client.get("/alerts/").content.decode()
    for reason in ("", "   ", "\x00"):
        response = client.post(f"/alerts/groups/{group.pk}/dismiss", {"reason": reason})
        assert response.status_code == 400
        assert "Say why these alerts need no incident." in response.content.decode()
    group.refresh_from_db()
    assert group.triage == "waiting"
    assert not AuditEvent.objects.filter(verb="alert.dismissed").exists()

    response = client.post(
        f"/alerts/groups/{group.pk}/dismiss", {"reason": "load test in staging"}
    )
    assert response.status_code == 302 and response["Location"] == "/alerts/"
    group.refresh_from_db()
    assert group.triage == "dismissed"
    assert group.triage_note == "load test in staging"
    assert group.triaged_by == responder
    event = AuditEvent.objects.get(verb="alert.dismissed")
    assert event.actor == responder
    assert event.data == {"source": "prod-am", "reason": "load test in staging"}
    assert f'id="group-{group.pk}"' not in client.get("/alerts/").content.decode()
    # Dismissed once is enough: a second dismissal is refused, nothing added.
    response = client.post(f"/alerts/groups/{group.pk}/dismiss", {"reason": "again"})
    assert response.status_code == 400
    assert AuditEvent.objects.filter(verb="alert.dismissed").count() == 1
    # Its repeats while it still fires stay dismissed.
    again = alertmanager.deliver(
        am_body(
            am_alert("WeirdThing", labels={"severity": "warning", "x": "1"}),
            group_key=group.group_key,
        )
    )
    assert again.opened is None and Incident.objects.count() == 0


# --- severity ------------------------------------------------------------------------


def test_the_alerts_severity_label_becomes_the_incidents(alertmanager):
    incident, _ = routed_to(
        alertmanager, am_alert("HighErrorRate", labels={"severity": "Warning"})
    )
    assert incident.playbook.severity == "critical"
    assert incident.severity == "warning"
    incident, _ = routed_to(alertmanager, am_alert("DiskUsageHigh"))
    assert incident.severity == "warning"  # §9's own
    incident, _ = routed_to(alertmanager, am_alert("DBPoolExhausted"))
    assert incident.severity == "critical"  # §5's own


# --- resolving with the source ---------------------------------------------------


def test_a_playbook_policy_resolves_the_incident_with_its_source(alertmanager, yomira):
    PlaybookPolicy.objects.create(
        runbook_key=yomira.key,
        playbook_slug="high-api-error-rate-5xx",
        resolve_with_source=True,
    )
    one = am_alert("HighErrorRate", labels={"instance": "web-1"})
    two = am_alert("HighErrorRate", labels={"instance": "web-2"})
    body = am_body(one, two)
    incident = alertmanager.deliver(body).opened
    # One of two ends: still open.
    partial = alertmanager.deliver(
        am_body(resolved(one), two, group_key=body["groupKey"])
    )
    assert not partial.source_resolved
    incident.refresh_from_db()
    assert incident.status == Incident.Status.OPEN
    final = alertmanager.deliver(am_body(resolved(two), group_key=body["groupKey"]))
    assert final.source_resolved
    incident.refresh_from_db()
    assert incident.status == Incident.Status.RESOLVED
    assert incident.resolved_at is not None
    change = incident.events.get(verb="incident.status_changed")
    assert change.actor_name == "alert-intake"
    assert change.data["from"] == "open" and change.data["to"] == "resolved"
    assert change.data["why"] == (
        "every alert of its group ended and its playbook resolves with its source"
    )
    assert incident.events.filter(verb="alert.source_resolved").count() == 1


def test_without_the_policy_the_incident_stays_open(alertmanager, yomira):
    PlaybookPolicy.objects.create(
        runbook_key=yomira.key,
        playbook_slug="disk-space-critical",  # another playbook's policy
        resolve_with_source=True,
    )
    alert = am_alert("HighErrorRate")
    body = am_body(alert)
    incident = alertmanager.deliver(body).opened
    final = alertmanager.deliver(am_body(resolved(alert), group_key=body["groupKey"]))
    assert final.source_resolved
    incident.refresh_from_db()
    assert incident.status == Incident.Status.OPEN
    assert incident.events.filter(verb="alert.source_resolved").count() == 1
    assert not incident.events.filter(verb="incident.status_changed").exists()
