"""Re-escalation by the beat: an incident still open N minutes after it opened (N
per severity) is escalated on its channels, level k at k times N minutes, each
level once, up to the cap; acknowledging stops it. Times are set in the database,
never waited for. Also the beat's sweep of lost and stuck notifications."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from incidents.models import AuditEvent, Incident
from notify import escalation, tasks
from notify.models import Notification

from .conftest import PD_PATH, bodies, move, open_


@pytest.fixture
def accepting(httpserver):
    httpserver.expect_request(PD_PATH, method="POST").respond_with_json(
        {"status": "success"}, status=202
    )
    return httpserver


def opened_minutes_ago(incident: Incident, minutes: float) -> None:
    Incident.objects.filter(pk=incident.pk).update(
        opened_at=timezone.now() - timedelta(minutes=minutes)
    )


def beat(committed) -> int:  # noqa: ANN001
    with committed():
        return tasks.escalate_unacknowledged.apply().get()


def escalations(incident: Incident) -> list[dict]:
    return [
        e.data
        for e in AuditEvent.objects.filter(
            incident=incident, verb="incident.escalated"
        ).order_by("seq")
    ]


def test_an_open_critical_incident_escalates_after_five_minutes(
    yomira, pagerduty, accepting, committed, commander_actor
):
    incident = open_(committed, commander_actor, 4)  # critical -> PagerDuty
    opened_minutes_ago(incident, 4.9)
    assert beat(committed) == 0

    opened_minutes_ago(incident, 5.1)
    assert beat(committed) == 1
    assert escalations(incident) == [
        {"after_minutes": 5, "level": 1, "round": 0, "channels": ["PagerDuty"]}
    ]
    event = AuditEvent.objects.get(verb="incident.escalated")
    assert (event.actor_name, event.object_type) == ("notifier", "incident")
    trigger, escalate = bodies(accepting, PD_PATH)
    assert escalate["event_action"] == "trigger"
    assert escalate["dedup_key"] == trigger["dedup_key"]
    assert escalate["payload"]["summary"].startswith("Still not acknowledged: ")
    assert escalate["payload"]["custom_details"]["note"] == (
        "not acknowledged 5 minutes after it opened (escalation level 1)"
    )
    row = Notification.objects.get(event="escalate")
    assert (row.level, row.state) == (1, "sent")

    # The next minute's beat: the same level never fires twice.
    assert beat(committed) == 0
    assert len(bodies(accepting, PD_PATH)) == 2


def test_each_level_fires_once_up_to_the_cap(
    yomira, pagerduty, accepting, committed, commander_actor
):
    incident = open_(committed, commander_actor, 4)
    for minutes in (5.5, 10.5, 10.7, 16, 300, 600):
        opened_minutes_ago(incident, minutes)
        beat(committed)
    assert [(e["level"], e["after_minutes"]) for e in escalations(incident)] == [
        (1, 5),
        (2, 10),
        (3, 15),
    ]
    levels = Notification.objects.filter(event="escalate").values_list(
        "level", flat=True
    )
    assert sorted(levels) == [1, 2, 3]


def test_a_late_beat_fires_only_the_level_that_is_due(
    yomira, pagerduty, accepting, committed, commander_actor
):
    incident = open_(committed, commander_actor, 4)
    opened_minutes_ago(incident, 12)
    beat(committed)
    assert [e["level"] for e in escalations(incident)] == [2]


def test_acknowledged_or_mitigated_incidents_are_not_escalated(
    yomira, pagerduty, accepting, committed, commander_actor
):
    acknowledged = open_(committed, commander_actor, 4, "one")
    move(committed, acknowledged, "acknowledged", commander_actor)
    mitigated = open_(committed, commander_actor, 4, "two")
    move(committed, mitigated, "mitigated", commander_actor)
    for incident in (acknowledged, mitigated):
        opened_minutes_ago(incident, 60)
    assert beat(committed) == 0
    assert not AuditEvent.objects.filter(verb="incident.escalated").exists()


def test_the_delay_follows_the_severity(
    yomira, committed, commander_actor, settings, secrets
):
    settings.NOTIFY_SEND = False
    warning = open_(committed, commander_actor, 2)  # warning: 15 minutes
    opened_minutes_ago(warning, 14)
    assert beat(committed) == 0
    opened_minutes_ago(warning, 15.5)
    assert beat(committed) == 1
    # No channel for Slack: the escalation is recorded, telling nobody.
    assert escalations(warning) == [
        {"after_minutes": 15, "level": 1, "round": 0, "channels": []}
    ]

    settings.NOTIFY_ESCALATE_AFTER = "critical=5"  # warnings never escalate
    other = open_(committed, commander_actor, 2, "other")
    opened_minutes_ago(other, 100)
    assert beat(committed) == 0


def test_a_reopened_incident_counts_from_its_reopening(
    yomira, pagerduty, accepting, committed, commander_actor
):
    incident = open_(committed, commander_actor, 4)
    move(committed, incident, "resolved", commander_actor)
    opened_minutes_ago(incident, 120)
    move(committed, incident, "open", commander_actor)
    assert beat(committed) == 0  # reopened just now

    later = timezone.now() + timedelta(minutes=6)
    with committed():
        assert escalation.escalate_unacknowledged(now=later) == 1
    assert escalations(incident)[0]["round"] == 1
    assert Notification.objects.get(event="escalate").note == (
        "not acknowledged 5 minutes after it was reopened (escalation level 1)"
    )


def test_the_sweep_sends_a_notification_whose_task_was_lost(
    yomira, pagerduty, accepting, committed, commander_actor, settings
):
    settings.NOTIFY_SEND = False
    incident = open_(committed, commander_actor, 4)
    # As if the broker had been down when it was queued: still queued, long ago.
    Notification.objects.filter(incident=incident).update(
        state="queued", created_at=timezone.now() - timedelta(minutes=10)
    )
    settings.NOTIFY_SEND = True
    beat(committed)
    assert Notification.objects.get(incident=incident).state == "sent"
    assert len(bodies(accepting, PD_PATH)) == 1


def test_the_sweep_fails_a_notification_a_dead_worker_left_sending(
    yomira, pagerduty, accepting, committed, commander_actor, settings
):
    settings.NOTIFY_SEND = False
    incident = open_(committed, commander_actor, 4)
    Notification.objects.filter(incident=incident).update(
        state="sending", attempts=1, claimed_at=timezone.now() - timedelta(minutes=10)
    )
    beat(committed)
    row = Notification.objects.get(incident=incident)
    assert row.state == "failed" and accepting.log == []
    failed = AuditEvent.objects.get(verb="notification.failed")
    assert failed.data["will_retry"] is False
    assert failed.data["error"].startswith("The worker stopped while sending")
