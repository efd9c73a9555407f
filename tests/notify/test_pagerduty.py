"""PagerDuty through the incident's real life: trigger on open, acknowledge and
resolve as its status moves, one dedup_key for all; retries on 429 and 5xx, none on
another 4xx; a redelivered task sends nothing twice."""

from __future__ import annotations

import pytest

from notify import tasks
from notify.models import Notification

from .conftest import (
    PD_PATH,
    ROUTING_KEY,
    assert_secret_nowhere,
    bodies,
    events,
    free_port,
    move,
    open_,
)


@pytest.fixture
def accepting(httpserver):
    httpserver.expect_request(PD_PATH, method="POST").respond_with_json(
        {"status": "success", "message": "Event processed"}, status=202
    )
    return httpserver


def test_trigger_acknowledge_and_resolve_share_one_dedup_key(
    yomira, pagerduty, accepting, committed, commander_actor
):
    incident = open_(committed, commander_actor, 4, "Redis is refusing connections")
    move(committed, incident, "acknowledged", commander_actor)
    move(committed, incident, "resolved", commander_actor)

    sent = bodies(accepting, PD_PATH)
    assert [b["event_action"] for b in sent] == ["trigger", "acknowledge", "resolve"]
    assert {b["dedup_key"] for b in sent} == {f"yomira-incident-{incident.pk}"}
    assert {b["routing_key"] for b in sent} == {ROUTING_KEY}
    trigger = sent[0]
    url = f"https://console.yomira.test/incidents/{incident.pk}/"
    assert trigger["payload"]["severity"] == "critical"
    assert trigger["payload"]["summary"] == (
        f"[critical] #{incident.pk} Redis is refusing connections "
        "(§4 Redis Down / Unreachable)"
    )
    assert trigger["payload"]["source"] == "yomira-console (console.yomira.test)"
    assert trigger["links"] == [{"href": url, "text": f"Incident #{incident.pk}"}]
    assert [e.verb for e in events()] == ["notification.sent"] * 3
    first = events()[0]
    assert (first.actor_name, first.incident_id, first.object_type) == (
        "notifier",
        incident.pk,
        "notification",
    )
    assert first.data == {
        "channel": "PagerDuty",
        "kind": "pagerduty",
        "event": "trigger",
        "status_code": 202,
        "attempt": 1,
    }
    rows = Notification.objects.order_by("id")
    assert [(n.event, n.state, n.attempts) for n in rows] == [
        ("trigger", "sent", 1),
        ("acknowledge", "sent", 1),
        ("resolve", "sent", 1),
    ]
    assert_secret_nowhere()


def test_a_reopened_incident_is_triggered_again_with_the_same_key(
    yomira, pagerduty, accepting, committed, commander_actor
):
    incident = open_(committed, commander_actor, 4)
    move(committed, incident, "resolved", commander_actor)
    move(committed, incident, "open", commander_actor)
    move(committed, incident, "acknowledged", commander_actor)

    sent = bodies(accepting, PD_PATH)
    assert [b["event_action"] for b in sent] == [
        "trigger",
        "resolve",
        "trigger",
        "acknowledge",
    ]
    assert len({b["dedup_key"] for b in sent}) == 1
    rounds = list(Notification.objects.order_by("id").values_list("event", "round"))
    assert rounds == [
        ("trigger", 0),
        ("resolve", 0),
        ("trigger", 1),
        ("acknowledge", 1),
    ]


def test_a_jump_from_open_to_mitigated_acknowledges_the_page(
    yomira, pagerduty, accepting, committed, commander_actor
):
    incident = open_(committed, commander_actor, 4)
    move(committed, incident, "mitigated", commander_actor)
    assert [b["event_action"] for b in bodies(accepting, PD_PATH)] == [
        "trigger",
        "acknowledge",
    ]


def test_429_is_retried_after_the_servers_retry_after_then_sent(
    yomira, pagerduty, httpserver, committed, commander_actor
):
    httpserver.expect_ordered_request(PD_PATH, method="POST").respond_with_data(
        "slow down", status=429, headers={"Retry-After": "7"}
    )
    httpserver.expect_ordered_request(PD_PATH, method="POST").respond_with_json(
        {"status": "success"}, status=202
    )
    incident = open_(committed, commander_actor, 4)

    assert len(httpserver.log) == 2
    failed, sent = events()
    assert failed.verb == "notification.failed"
    assert failed.data["status_code"] == 429 and failed.data["attempt"] == 1
    assert failed.data["will_retry"] is True and failed.data["retry_in"] == 7.0
    assert failed.data["error"] == "slow down"
    assert (sent.verb, sent.data["attempt"]) == ("notification.sent", 2)
    row = Notification.objects.get(incident=incident)
    assert (row.state, row.attempts, row.status_code) == ("sent", 2, 202)


def test_503_backs_off_exponentially_then_sends(
    yomira, pagerduty, httpserver, committed, commander_actor
):
    for _ in range(2):
        httpserver.expect_ordered_request(PD_PATH, method="POST").respond_with_data(
            "upstream unavailable", status=503
        )
    httpserver.expect_ordered_request(PD_PATH, method="POST").respond_with_json(
        {"status": "success"}, status=202
    )
    open_(committed, commander_actor, 4)

    found = [(e.verb, e.data.get("retry_in")) for e in events()]
    assert found == [
        ("notification.failed", 10.0),
        ("notification.failed", 20.0),
        ("notification.sent", None),
    ]


def test_retries_stop_at_the_maximum_number_of_attempts(
    yomira, pagerduty, httpserver, committed, commander_actor, settings
):
    settings.NOTIFY_MAX_ATTEMPTS = 3
    settings.NOTIFY_RETRY_MAX_SECONDS = 15
    httpserver.expect_request(PD_PATH, method="POST").respond_with_data(
        "down", status=500
    )
    incident = open_(committed, commander_actor, 4)

    assert len(httpserver.log) == 3
    found = [(e.data["will_retry"], e.data.get("retry_in")) for e in events()]
    assert found == [(True, 10.0), (True, 15.0), (False, None)]  # capped at 15
    row = Notification.objects.get(incident=incident)
    assert (row.state, row.attempts, row.status_code) == ("failed", 3, 500)


def test_a_400_fails_at_once_without_a_retry(
    yomira, pagerduty, httpserver, committed, commander_actor
):
    httpserver.expect_request(PD_PATH, method="POST").respond_with_json(
        {"status": "invalid event", "errors": ["'routing_key' is invalid"]},
        status=400,
    )
    incident = open_(committed, commander_actor, 4)

    assert len(httpserver.log) == 1
    (failed,) = events()
    assert failed.verb == "notification.failed"
    assert (failed.data["status_code"], failed.data["will_retry"]) == (400, False)
    assert "routing_key" in failed.data["error"]
    row = Notification.objects.get(incident=incident)
    assert (row.state, row.attempts) == ("failed", 1)
    assert "invalid event" in row.answer


def test_a_connection_refused_is_retried(
    yomira, pagerduty, committed, commander_actor, settings
):
    closed_port = free_port()  # nothing listens there
    settings.NOTIFY_PAGERDUTY_URL = f"http://127.0.0.1:{closed_port}/v2/enqueue"
    settings.NOTIFY_MAX_ATTEMPTS = 2
    open_(committed, commander_actor, 4)
    found = [(e.data["status_code"], e.data["will_retry"]) for e in events()]
    assert found == [(None, True), (None, False)]
    assert "ConnectError" in events()[0].data["error"]


def test_a_redelivered_task_sends_nothing_twice(
    yomira, pagerduty, accepting, committed, commander_actor
):
    incident = open_(committed, commander_actor, 4)
    row = Notification.objects.get(incident=incident)
    assert len(accepting.log) == 1

    # The broker delivers the same message again (a worker lost its ack).
    result = tasks.send_notification.apply(args=[row.pk])
    assert result.get() == "duplicate"
    assert len(accepting.log) == 1
    assert len(events()) == 1


def test_a_delivery_finding_the_row_claimed_by_another_worker_does_nothing(
    yomira, pagerduty, accepting, committed, commander_actor, settings
):
    settings.NOTIFY_SEND = False  # queue without sending, then claim by hand
    incident = open_(committed, commander_actor, 4)
    row = Notification.objects.get(incident=incident)
    Notification.objects.filter(pk=row.pk).update(state="sending")
    settings.NOTIFY_SEND = True
    assert tasks.send_notification.apply(args=[row.pk]).get() == "duplicate"
    assert accepting.log == []


def test_the_same_change_published_twice_queues_one_notification(
    yomira, pagerduty, accepting, committed, commander_actor
):
    from incidents.events import publish
    from incidents.models import AuditEvent

    incident = open_(committed, commander_actor, 4)
    opened = AuditEvent.objects.get(verb="incident.opened", incident=incident)
    with committed():
        publish(opened)
    assert Notification.objects.filter(incident=incident).count() == 1
    assert len(accepting.log) == 1


def test_an_unset_routing_key_fails_with_the_variable_to_set(
    yomira, pagerduty, accepting, committed, commander_actor, monkeypatch
):
    monkeypatch.delenv("PAGERDUTY_ROUTING_KEY")
    incident = open_(committed, commander_actor, 4)
    (failed,) = events()
    assert failed.data["will_retry"] is False
    assert failed.data["error"].startswith(
        "Set PAGERDUTY_ROUTING_KEY (the routing key of the channel 'PagerDuty')"
    )
    assert Notification.objects.get(incident=incident).state == "failed"
    assert accepting.log == []
