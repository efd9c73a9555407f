"""The answer to a click draws what the click changed, and the header only when it
changed: a run and a note leave it on the page (a third of a Run answer's server
time: the edges' panels), a tick or someone else's change in the meantime draws
it, from the incident as it is now (issue 14's click -> result budget)."""

# The safety matrix's fixtures are imported by name, so tests name them as
# arguments: that is how pytest uses them, not a redefinition.
# ruff: noqa: F811

from __future__ import annotations

import pytest

from incidents import services
from incidents.actors import Actor
from incidents.models import AuditEvent, Incident
from incidents.services import change_status
from incidents.views import common
from tests.conftest import signed_in
from tests.test_safety_matrix import (  # noqa: F401 - fixtures
    post_run,
    targets_and_no_broker,
    world,
)

HEAD = 'id="incident-head"'


@pytest.fixture(autouse=True)
def no_wait(settings):  # noqa: ANN001, ANN201
    settings.RUN_WAIT_SECONDS = 0  # no worker here: a run stays queued


def last_seq(incident: Incident) -> int:
    return incident.events.order_by("-seq").values_list("seq", flat=True).first()


def test_a_run_answer_leaves_the_header_alone(world, targets_and_no_broker):
    rita = signed_in(world.people["responder"])
    since = last_seq(world.incident)
    answer = post_run(rita, world.incident, world.ping, since=since, request_key="k1")
    html = answer.content.decode()
    assert answer.status_code == 200
    assert HEAD not in html
    # What the run changed is all there: its step, its timeline entry, the poller
    # moved past its event.
    assert f'id="step-{world.ping.step.number}"' in html
    assert 'hx-swap-oob="afterbegin:#timeline-list"' in html
    assert f'value="{last_seq(world.incident)}"' in html  # the poller's since
    assert last_seq(world.incident) > since


def test_a_run_answer_after_someone_changed_the_header_draws_it_afresh(
    world, targets_and_no_broker, monkeypatch
):
    """The commander acknowledges while the responder's run is being requested:
    the answer's header says acknowledged, although the request loaded the
    incident while it was open."""
    cole = Actor.person(world.people["commander"])
    request_run = services.request_run

    def meanwhile(**kwargs):  # noqa: ANN003, ANN202
        result = request_run(**kwargs)
        change_status(incident=world.incident, to="acknowledged", actor=cole)
        return result

    monkeypatch.setattr("incidents.views.runs.services.request_run", meanwhile)
    rita = signed_in(world.people["responder"])
    since = last_seq(world.incident)
    html = post_run(
        rita, world.incident, world.ping, since=since, request_key="k2"
    ).content.decode()
    head = html[html.index(HEAD) :]
    assert "status-bar-acknowledged" in head[:300]


def test_a_bad_since_draws_the_header(world, targets_and_no_broker):
    rita = signed_in(world.people["responder"])
    html = post_run(
        rita, world.incident, world.ping, since="nope", request_key="k3"
    ).content.decode()
    assert HEAD in html  # every event is new to such a page, the opening too


def test_a_note_leaves_the_header_and_a_tick_draws_it(world):
    rita = signed_in(world.people["responder"])
    at = f"/incidents/{world.incident.pk}"
    note = rita.post(
        f"{at}/notes",
        {"text": "looked", "since": last_seq(world.incident)},
        HTTP_HX_REQUEST="true",
    )
    assert note.status_code == 200 and HEAD not in note.content.decode()
    tick = rita.post(
        f"{at}/steps/1/tick",
        {"state": "done", "since": last_seq(world.incident)},
        HTTP_HX_REQUEST="true",
    )
    html = tick.content.decode()
    assert tick.status_code == 200 and HEAD in html
    steps = world.incident.playbook.steps.count()
    assert f"Steps <strong>1/{steps}</strong>" in html


def test_a_poll_brings_the_header_only_with_a_change_to_it(world):
    vera = signed_in(world.people["viewer"])
    at = f"/incidents/{world.incident.pk}/changes"
    since = last_seq(world.incident)
    rita = Actor.person(world.people["responder"])
    services.add_note(incident=world.incident, text="a note", actor=rita)
    polled = vera.get(at, {"since": since}, HTTP_HX_REQUEST="true")
    assert polled.status_code == 200 and HEAD not in polled.content.decode()
    since = last_seq(world.incident)
    change_status(
        incident=world.incident,
        to="acknowledged",
        actor=Actor.person(world.people["commander"]),
    )
    polled = vera.get(at, {"since": since}, HTTP_HX_REQUEST="true")
    assert HEAD in polled.content.decode()
    assert "status-bar-acknowledged" in polled.content.decode()


@pytest.mark.parametrize(
    ("verbs", "panel", "drawn"),
    [
        ([], "", False),
        (["execution.requested", "execution.succeeded", "note.added"], "", False),
        (["execution.requested", "step.done"], "", True),
        (["incident.status_changed"], "", True),
        (["notification.sent"], "", True),
        (["alert.received"], "", True),
        (["executions.something"], "", True),  # a prefix, not a near miss
        ([], "head", True),  # a refusal shown in the header
    ],
)
def test_head_changed(verbs, panel, drawn):
    events = [AuditEvent(verb=verb) for verb in verbs]
    assert common.head_changed(events, panel) is drawn


# --- the person behind a Run, in one query -------------------------------------------
def test_a_run_from_an_open_page_checks_the_person_in_one_query(
    world, targets_and_no_broker
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    rita = signed_in(world.people["responder"])
    assert rita.get(f"/incidents/{world.incident.pk}/").status_code == 200  # known
    with CaptureQueriesContext(connection) as queries:
        answer = post_run(rita, world.incident, world.ping, request_key="q1")
    assert answer.status_code == 200 and world.incident.executions.count() == 1
    asked = [q["sql"] for q in queries.captured_queries]
    # Django's own reads of the session and of the user are not among them.
    assert not [q for q in asked if q.startswith('SELECT "django_session"')]
    assert not [q for q in asked if q.startswith('SELECT "auth_user"')]
    assert len([q for q in asked if "FROM django_session s JOIN" in q]) == 1


@pytest.mark.parametrize("change", ["deactivated", "signed out", "new password"])
def test_a_known_session_that_no_longer_holds_runs_nothing(
    world, targets_and_no_broker, change
):
    from django.contrib.sessions.models import Session

    person = world.people["responder"]
    rita = signed_in(person)
    assert rita.get(f"/incidents/{world.incident.pk}/").status_code == 200  # known
    if change == "deactivated":
        person.is_active = False
        person.save()
    elif change == "signed out":
        Session.objects.all().delete()  # as signing out elsewhere deletes the row
    else:
        person.set_password("another-long-password-9")
        person.save()
    answer = post_run(rita, world.incident, world.ping, request_key="q2")
    assert answer.status_code in (302, 403)
    assert targets_and_no_broker == []
    assert not world.incident.executions.exists()
