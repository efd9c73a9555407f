"""The idle poll answered before Django's middleware (incidents/views/idle_poll.py):
only a poll that finds nothing new, from a session already seen signed in, with
every check the view makes; everything else reaches the view as before."""

from __future__ import annotations

import pytest
from django.contrib.sessions.middleware import SessionMiddleware
from django.db import OperationalError

from incidents import access
from incidents.actors import Actor
from incidents.models import AuditEvent
from incidents.services import add_note
from incidents.views.idle_poll import idle_answer

pytestmark = pytest.mark.django_db


@pytest.fixture
def through_django(monkeypatch):  # noqa: ANN201
    """How many requests went through Django's session middleware (the view's way)."""
    seen = []
    process_request = SessionMiddleware.process_request

    def counting(self, request):  # noqa: ANN001, ANN202
        seen.append(request.path_info)
        return process_request(self, request)

    monkeypatch.setattr(SessionMiddleware, "process_request", counting)
    return seen


def poll_url(incident, since=None) -> str:  # noqa: ANN001
    if since is None:
        since = incident.events.order_by("-seq").first().seq
    return f"/incidents/{incident.pk}/changes?since={since}"


def test_an_idle_poll_from_a_known_session_never_reaches_django(
    viewer_client, incident, through_django
):
    url = poll_url(incident)
    first = viewer_client.get(url)  # the ordinary way: the session is learnt
    assert first.status_code == 204 and len(through_django) == 1
    again = viewer_client.get(url)
    assert again.status_code == 204 and len(through_django) == 1
    # The same security headers as the view's 204.
    for header in (
        "X-Frame-Options",
        "Content-Security-Policy",
        "X-Content-Type-Options",
        "Referrer-Policy",
        "Cross-Origin-Opener-Policy",
    ):
        assert again[header] == first[header], header
    assert again.content == b""


def test_a_poll_with_a_change_goes_to_the_view_and_draws_it(
    viewer_client, incident, responder, through_django
):
    url = poll_url(incident)
    viewer_client.get(url)
    add_note(
        incident=incident, text="seen from the poll", actor=Actor.person(responder)
    )
    answer = viewer_client.get(url, HTTP_HX_REQUEST="true")
    assert answer.status_code == 200 and "seen from the poll" in answer.content.decode()
    assert len(through_django) == 2


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/incidents/999999/changes?since=0", 404),  # no such incident
        ("/incidents/{pk}/changes?since=x", 400),  # not an event number
        ("/incidents/0{pk}/changes?since=0", None),  # not the canonical number
        ("/incidents/99999999999999999999/changes?since=0", 404),  # past a bigint
    ],
)
def test_anything_but_an_idle_poll_is_the_views(
    viewer_client, incident, through_django, path, status
):
    viewer_client.get(poll_url(incident))  # the session is known
    before = len(through_django)
    answer = viewer_client.get(path.format(pk=incident.pk))
    assert len(through_django) == before + 1
    if status is not None:
        assert answer.status_code == status


def test_a_person_without_the_right_is_refused_by_the_view_and_audited(
    nobody_client, incident, through_django
):
    url = poll_url(incident)
    for _ in range(2):  # the second from a known session, too
        assert nobody_client.get(url).status_code == 403
    assert len(through_django) == 2
    assert AuditEvent.objects.filter(verb="permission.denied").count() == 2


def test_a_post_is_the_views(viewer_client, incident, through_django):
    url = poll_url(incident)
    viewer_client.get(url)
    assert viewer_client.post(url).status_code == 405
    assert len(through_django) == 2


def test_a_database_that_cannot_be_reached_gets_the_offline_answer(
    viewer_client, incident, monkeypatch
):
    """The middleware leaves it to the view, which meets it again: the offline
    pages answer, with no error logged as a crash."""
    url = poll_url(incident)
    viewer_client.get(url)
    tried = []

    def unreachable(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        tried.append(args[1][:20])
        raise OperationalError("connection refused")

    monkeypatch.setattr(access, "signed_in_with", unreachable)
    # The process's memory of the outage this begins, forgotten after the test.
    monkeypatch.setattr("yomira_console.offline.Outage.since", None)
    answer = viewer_client.get(url, HTTP_HX_REQUEST="true")
    assert answer.status_code == 503
    assert answer["X-Console-Database"] == "unreachable"
    assert len(tried) == 2  # the middleware's try, then the view's


def test_idle_answer_leaves_other_requests_alone(rf):  # noqa: ANN001
    for request in (
        rf.get("/incidents/1/"),
        rf.get("/incidents/1/changesx"),
        rf.head("/incidents/1/changes?since=1"),
        rf.get("/incidents/1/changes?since=-1"),
    ):
        assert idle_answer(request) is None
