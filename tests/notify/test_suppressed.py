"""Drills and tests send nothing real: with NOTIFY_SEND off, or a channel disabled,
notifications are recorded as suppressed and no request leaves the machine."""

from __future__ import annotations

from notify.models import Notification

from .conftest import events, move, open_


def test_with_sending_off_nothing_leaves_and_the_timeline_says_so(
    yomira, pagerduty, slack, httpserver, committed, commander_actor, settings
):
    settings.NOTIFY_SEND = False
    playbook_escalation = ["PagerDuty", "Slack"]
    from .conftest import playbook

    playbook(4, playbook_escalation)
    incident = open_(committed, commander_actor, 4)
    move(committed, incident, "acknowledged", commander_actor)

    assert httpserver.log == []
    states = set(Notification.objects.values_list("state", flat=True))
    assert states == {"suppressed"} and Notification.objects.count() == 4
    suppressed = events()
    assert {e.verb for e in suppressed} == {"notification.suppressed"}
    assert suppressed[0].data == {
        "channel": "PagerDuty",
        "kind": "pagerduty",
        "event": "trigger",
        "why": "NOTIFY_SEND is off: nothing leaves the console",
    }


def test_a_disabled_channel_is_suppressed_and_the_others_still_send(
    yomira, pagerduty, slack, httpserver, committed, commander_actor
):
    from .conftest import SLACK_PATH, playbook

    httpserver.expect_request(SLACK_PATH, method="POST").respond_with_data("ok")
    pagerduty.enabled = False
    pagerduty.save()
    playbook(4, ["PagerDuty", "Slack"])
    open_(committed, commander_actor, 4)

    assert [r.path for r, _ in httpserver.log] == [SLACK_PATH]
    found = {(e.data["channel"], e.verb) for e in events()}
    assert found == {
        ("PagerDuty", "notification.suppressed"),
        ("Slack", "notification.sent"),
    }
    assert events("notification.suppressed")[0].data["why"] == (
        "the channel is disabled"
    )


def test_an_escalation_name_without_a_channel_is_recorded_as_nobody_told(
    yomira, pagerduty, httpserver, committed, commander_actor, settings
):
    settings.NOTIFY_SEND = False
    incident = open_(committed, commander_actor, 12)  # PagerDuty + Security team
    unmapped = [e for e in events() if e.data["channel"] == "Security team"]
    assert [(e.incident_id, e.data) for e in unmapped] == [
        (
            incident.pk,
            {
                "channel": "Security team",
                "event": "trigger",
                "why": "no notification channel has this name",
            },
        )
    ]
    # Only the opening says so, not every later change.
    move(committed, incident, "resolved", commander_actor)
    assert len([e for e in events() if e.data["channel"] == "Security team"]) == 1


def test_channel_names_match_without_regard_to_case(
    yomira, httpserver, committed, commander_actor, settings, secrets
):
    from notify.models import Channel

    settings.NOTIFY_SEND = False
    Channel.objects.create(
        name="pagerduty", kind="pagerduty", secret_env="PAGERDUTY_ROUTING_KEY"
    )
    incident = open_(committed, commander_actor, 4)  # the runbook says "PagerDuty"
    assert Notification.objects.get(incident=incident).channel.name == "pagerduty"


def test_other_audit_events_queue_nothing(
    yomira, pagerduty, committed, commander_actor, settings
):
    from incidents.services import add_note

    settings.NOTIFY_SEND = False
    incident = open_(committed, commander_actor, 4)
    before = Notification.objects.count()
    with committed():
        add_note(incident=incident, text="looking", actor=commander_actor)
    assert Notification.objects.count() == before == 1
