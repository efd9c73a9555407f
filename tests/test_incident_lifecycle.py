"""Opening, listing and moving an incident through its statuses."""

from __future__ import annotations

import re

import pytest

from incidents.actors import Actor
from incidents.models import AuditEvent, Incident, Playbook
from incidents.services import TransitionError, change_status, import_runbook
from tests.conftest import IMPORTER


def test_a_responder_opens_an_incident_from_a_playbook(
    responder_client, responder, yomira
):
    response = responder_client.post(
        "/incidents/new/", {"playbook": "redis-down-unreachable", "title": "Redis gone"}
    )
    incident = Incident.objects.get()
    assert (
        response.status_code == 302
        and response["Location"] == f"/incidents/{incident.pk}/"
    )
    facts = (incident.title, incident.status, incident.severity)
    assert facts == ("Redis gone", "open", "critical")
    assert incident.playbook.number == 4 and incident.opened_by == responder
    event = AuditEvent.objects.get(verb="incident.opened")
    assert (event.incident_id, event.actor_name, event.data["playbook"]) == (
        incident.pk,
        "rita",
        4,
    )


def test_opening_with_a_bad_playbook_or_title_says_what_is_wrong(
    responder_client, yomira
):
    response = responder_client.post(
        "/incidents/new/", {"playbook": "nope", "title": "  "}
    )
    page = response.content.decode()
    assert response.status_code == 400
    assert "There is no current playbook" in page
    assert "This field is required" in page or "Give the incident a title" in page
    assert Incident.objects.count() == 0


def test_the_new_incident_form_preselects_the_playbook(responder_client, yomira):
    page = responder_client.get(
        "/incidents/new/?playbook=disk-space-critical"
    ).content.decode()
    assert '<option value="disk-space-critical" selected>' in page


def test_status_moves_forward_and_records_each_transition_time(incident, commander):
    for status in ["acknowledged", "mitigated", "resolved"]:
        change_status(incident=incident, to=status, actor=Actor.person(commander))
    incident.refresh_from_db()
    assert incident.status == "resolved"
    assert incident.opened_at <= incident.acknowledged_at <= incident.mitigated_at
    assert incident.mitigated_at <= incident.resolved_at
    verbs = list(incident.events.values_list("verb", "data"))
    assert verbs[1:] == [
        ("incident.status_changed", {"from": "open", "to": "acknowledged"}),
        ("incident.status_changed", {"from": "acknowledged", "to": "mitigated"}),
        ("incident.status_changed", {"from": "mitigated", "to": "resolved"}),
    ]


def test_a_false_alarm_can_go_straight_to_resolved_and_be_reopened(incident, commander):
    change_status(incident=incident, to="resolved", actor=Actor.person(commander))
    incident.refresh_from_db()
    assert incident.acknowledged_at and incident.mitigated_at and incident.resolved_at
    change_status(incident=incident, to="open", actor=Actor.person(commander))
    incident.refresh_from_db()
    assert (incident.status, incident.resolved_at) == ("open", None)
    assert incident.events.filter(verb="incident.reopened").count() == 1


def test_an_impossible_transition_is_refused_with_a_reason(incident, commander):
    with pytest.raises(TransitionError, match="open cannot become open"):
        change_status(incident=incident, to="open", actor=Actor.person(commander))
    change_status(incident=incident, to="mitigated", actor=Actor.person(commander))
    with pytest.raises(TransitionError, match="mitigated cannot become acknowledged"):
        change_status(
            incident=incident, to="acknowledged", actor=Actor.person(commander)
        )


def test_an_impossible_transition_over_htmx_is_a_409_fragment(
    commander_client, incident
):
    response = commander_client.post(
        f"/incidents/{incident.pk}/status", {"status": "open"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 409
    assert "cannot become open" in response.content.decode()


def test_the_commander_can_be_handed_over(commander_client, incident, make_user):
    other = make_user("otto", "Commander")
    response = commander_client.post(
        f"/incidents/{incident.pk}/commander", {"commander": other.pk}
    )
    assert response.status_code == 302
    incident.refresh_from_db()
    assert incident.commander == other
    event = incident.events.get(verb="incident.commander_changed")
    assert event.data == {"from": "cole", "to": "otto"}


@pytest.mark.parametrize("role", ["Responder", "Viewer", None])
def test_command_goes_only_to_people_who_may_command(
    commander_client, incident, make_user, role
):
    """A commander without the status buttons would leave the incident stuck."""
    person = make_user("pat", role)
    page = commander_client.get(f"/incidents/{incident.pk}/").content.decode()
    assert ">pat<" not in page and ">cole<" in page
    response = commander_client.post(
        f"/incidents/{incident.pk}/commander",
        {"commander": person.pk},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 400
    assert "That person cannot command." in response.content.decode()
    incident.refresh_from_db()
    assert incident.commander.username == "cole"


def test_the_list_puts_open_incidents_first_and_filters(
    viewer_client, incident, commander
):
    playbook = Playbook.objects.current().get(number=9)
    from incidents.services import open_incident

    old = open_incident(
        playbook=playbook, title="Disk full last week", actor=Actor.person(commander)
    )
    change_status(incident=old, to="resolved", actor=Actor.person(commander))
    newest = open_incident(
        playbook=playbook, title="Disk filling again", actor=Actor.person(commander)
    )

    def titles(params: dict | None = None) -> list[str]:
        """The incident titles the list shows, in its order (never vacuous: an
        empty or broken page gives [] and fails the comparisons below)."""
        response = viewer_client.get("/incidents/", params or {})
        assert response.status_code == 200
        page = response.content.decode()
        shown = {incident.title, old.title, newest.title}
        found = sorted((page.find(t), t) for t in shown if t in page)
        return [t for _, t in found]

    assert titles() == [
        "Disk filling again",
        "Redis is refusing connections",
        old.title,
    ]
    assert titles({"status": "resolved"}) == ["Disk full last week"]
    assert titles({"playbook": "disk-space-critical"}) == [
        "Disk filling again",
        "Disk full last week",
    ]
    by_severity = viewer_client.get(
        "/incidents/", {"severity": "warning"}
    ).content.decode()
    assert (
        "Disk filling again" in by_severity and "Redis is refusing" not in by_severity
    )
    assert newest.pk > old.pk


def test_an_open_incident_keeps_its_runbook_revision(
    incident, yomira_source, viewer_client
):
    import_runbook(
        source=yomira_source.replace(b"1. **Verify:**", b"1. **Verify it:**"),
        actor=IMPORTER,
    )
    incident.refresh_from_db()
    assert incident.playbook.runbook.revision == 1
    assert not incident.playbook.runbook.is_current
    page = viewer_client.get(f"/incidents/{incident.pk}/").content.decode()
    assert "Verify</h3>" in page and "Verify it" not in page
    assert "runbook revision 1" in page


# --- issue 11 point 3: opening in one step ------------------------------------------


def test_a_playbook_page_opens_an_incident_in_one_click(commander_client, yomira):
    page = commander_client.get("/playbooks/db-connection-pool-exhausted/")
    html = page.content.decode()
    form = html[html.index('class="inline open-now"') :]
    form = form[: form.index("</form>")]
    key = re.search(r'name="request_key" value="([0-9a-f]{32})"', form).group(1)
    fields = {
        "playbook": "db-connection-pool-exhausted",
        "title": "DB Connection Pool Exhausted",
        "request_key": key,
        "csrfmiddlewaretoken": "",
    }
    assert 'name="title" value="DB Connection Pool Exhausted"' in form
    first = commander_client.post("/incidents/new/", fields)
    again = commander_client.post("/incidents/new/", fields)  # a double click
    incident = Incident.objects.get()
    assert first["Location"] == again["Location"] == f"/incidents/{incident.pk}/"
    assert incident.title == "DB Connection Pool Exhausted"


def test_the_form_starts_with_the_playbooks_title(responder_client, yomira):
    page = responder_client.get(
        "/incidents/new/", {"playbook": "disk-space-critical"}
    ).content.decode()
    assert 'value="Disk Space Critical"' in page


def test_the_opener_commands_only_if_their_role_may(
    responder_client, commander_client, responder, commander, yomira
):
    for client in (responder_client, commander_client):
        client.post(
            "/incidents/new/", {"playbook": "redis-down-unreachable", "title": "Redis"}
        )
    by_responder, by_commander = Incident.objects.order_by("pk")
    assert by_responder.opened_by == responder and by_responder.commander is None
    assert by_commander.commander == commander
    page = responder_client.get(f"/incidents/{by_responder.pk}/").content.decode()
    assert "someone who may command takes command, then acknowledge." in page
    page = commander_client.get(f"/incidents/{by_commander.pk}/").content.decode()
    assert '<span class="label">Next</span>acknowledge.' in page
