"""Every captured Alertmanager payload replayed through the webhook, in the order
it was sent: one incident per group, repeats change nothing, resolution per alert,
"source resolved", a flap reopens."""

from __future__ import annotations

import copy

from alerts.models import Alert, AlertGroup, Receipt
from incidents import services
from incidents.actors import Actor
from incidents.models import AuditEvent, Incident

from .conftest import fixture_body


def verbs(incident: Incident) -> list[str]:
    return list(incident.events.order_by("seq").values_list("verb", flat=True))


def test_firing_opens_one_incident_on_the_alerts_playbook(alertmanager):
    applied = alertmanager.deliver(fixture_body("01_am_firing_single.json"))
    incident = applied.opened
    assert incident is not None
    assert incident.playbook.number == 1  # HighErrorRate is §1's alert
    assert incident.severity == "critical"
    group = AlertGroup.objects.get()
    assert group.incident == incident and group.rule == "alertname"
    assert "§1 lists the alert HighErrorRate" in group.reason
    opened = incident.events.get(verb="incident.opened")
    assert opened.actor_name == "alert-intake"
    assert opened.data["origin"]["rule"] == "alertname"
    assert "alert.firing" in verbs(incident)
    assert "diagnosis.started" in verbs(incident)


def test_the_sequence_of_a_group(alertmanager):
    first = alertmanager.deliver(fixture_body("01_am_firing_single.json")).opened
    joined = alertmanager.deliver(fixture_body("02_am_grouped_second_alert_added.json"))
    assert joined.opened is None and len(joined.new_alerts) == 1
    before = AuditEvent.objects.count()
    repeat = alertmanager.deliver(fixture_body("03_am_repeat_unchanged.json"))
    assert not repeat.new_alerts and not repeat.resolved_alerts
    # The repeat's own receipt is audited; nothing else is written.
    assert AuditEvent.objects.count() == before + 1
    partial = alertmanager.deliver(fixture_body("04_am_partially_resolved.json"))
    assert [a.fingerprint for a in partial.resolved_alerts] == ["b1c11497b32ce15e"]
    assert not partial.source_resolved
    final = alertmanager.deliver(fixture_body("05_am_resolved_final.json"))
    assert final.source_resolved
    assert Incident.objects.count() == 1
    first.refresh_from_db()
    assert first.status == Incident.Status.OPEN  # a person resolves it
    assert "alert.source_resolved" in verbs(first)
    assert set(Alert.objects.values_list("status", flat=True)) == {"resolved"}
    assert Receipt.objects.filter(state="processed").count() == 5


def test_every_captured_payload_is_accepted(alertmanager):
    names = [
        "01_am_firing_single.json",
        "02_am_grouped_second_alert_added.json",
        "03_am_repeat_unchanged.json",
        "04_am_partially_resolved.json",
        "05_am_resolved_final.json",
        "06_am_grouped_posted_together.json",
        "07_am_storm_truncated_max_alerts.json",
        "08_am_retry_after_503.json",
        "09_am_amtool_alert_add.json",
        "10_am_resolved_by_resolve_timeout.json",
        "11_prom_chain_firing.json",
        "12_prom_chain_resolved.json",
        "13_prom_chain_flap_refire.json",
    ]
    for name in names:
        alertmanager.deliver(fixture_body(name))
    assert Receipt.objects.filter(state="processed").count() == len(names)
    assert not Receipt.objects.exclude(state="processed").exists()


def firing_version(body: dict) -> dict:
    """The firing notification that preceded a captured resolved one."""
    body = copy.deepcopy(body)
    body["status"] = "firing"
    for alert in body["alerts"]:
        alert["status"], alert["endsAt"] = "firing", "0001-01-01T00:00:00Z"
    return body


def test_a_flap_reopens_the_same_incident(alertmanager, commander):
    resolved = fixture_body("12_prom_chain_resolved.json")
    opened = alertmanager.deliver(firing_version(resolved)).opened
    assert opened.playbook.number == 2  # HighLatency
    assert alertmanager.deliver(resolved).source_resolved
    services.change_status(
        incident=opened, to="resolved", actor=Actor.person(commander)
    )
    again = alertmanager.deliver(fixture_body("13_prom_chain_flap_refire.json"))
    assert again.opened is None and again.reopened
    opened.refresh_from_db()
    assert opened.status == Incident.Status.OPEN
    assert AlertGroup.objects.get().flaps == 1
    assert Incident.objects.count() == 1


def test_the_timeline_tells_the_alert_story_in_words(alertmanager):
    from incidents.timeline import describe

    opened = alertmanager.deliver(fixture_body("01_am_firing_single.json")).opened
    alertmanager.deliver(fixture_body("02_am_grouped_second_alert_added.json"))
    alertmanager.deliver(fixture_body("04_am_partially_resolved.json"))
    alertmanager.deliver(fixture_body("05_am_resolved_final.json"))
    said = {e.verb: describe(e) for e in opened.events.order_by("seq")}
    assert said["incident.opened"] == (
        "opened the incident from §1 High API Error Rate (5xx) for the alert "
        "HighErrorRate from prod-am (§1 lists the alert HighErrorRate)"
    )
    assert said["alert.firing"].startswith(
        "alert HighErrorRate firing since 2026-11-29"
    )
    assert "instance=web-" in said["alert.firing"]
    assert said["alert.resolved"].startswith(
        "alert HighErrorRate resolved at 2026-11-29"
    )
    assert said["alert.source_resolved"] == (
        "source resolved: all 2 alerts of the group from prod-am have ended"
    )
    # §1 has no Diagnosis probe (its checks are numbered steps).
    assert (
        said["diagnosis.started"] == "found no Diagnosis probe to run in this playbook"
    )
