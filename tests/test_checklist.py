"""The checklist page: ticks, notes, HTMX fragments, polling, and its query count."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from incidents.actors import Actor
from incidents.models import StepExecution
from incidents.services import add_note, import_runbook, open_incident, tick_step
from tests.conftest import IMPORTER
from tests.http_client import csrf_of


def tick(client, incident, number, state, expected=0, htmx=True, **extra):  # noqa: ANN001, ANN201
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    return client.post(
        f"/incidents/{incident.pk}/steps/{number}/tick",
        {"state": state, "expected": expected, **extra},
        **headers,
    )


def test_the_page_shows_the_playbook_as_a_checklist(responder_client, incident):
    page = responder_client.get(f"/incidents/{incident.pk}/").content.decode()
    assert "Redis is refusing connections" in page
    assert page.count('class="step state-pending"') == 5
    assert "Impact when Redis is down" in page
    assert 'id="poller"' in page and 'hx-trigger="every 2s"' in page
    assert page.count('data-key="d"') == 5  # a Done button per step
    assert "redis-cli" in page and "opened the incident" in page


def test_a_viewer_sees_no_buttons(viewer_client, incident):
    page = viewer_client.get(f"/incidents/{incident.pk}/").content.decode()
    assert (
        'data-key="d"' not in page
        and "Add note" not in page
        and "Mark resolved" not in page
    )


def test_ticking_a_step_done_returns_the_step_and_timeline_out_of_band(
    responder_client, incident
):
    response = tick(responder_client, incident, 2, "done")
    html = response.content.decode()
    assert response.status_code == 200
    assert re.search(
        r'<li class="step state-done" id="step-2"[^>]*hx-swap-oob="true"', html
    )
    assert 'hx-swap-oob="afterbegin:#timeline-list"' in html
    assert "marked step 2 done (Check memory)" in html
    assert '<header id="incident-head"' in html and "<strong>1/5</strong>" in html
    execution = StepExecution.objects.get()
    assert (
        execution.state,
        execution.step.number,
        execution.requested_by.username,
    ) == (
        "done",
        2,
        "rita",
    )


def test_without_javascript_a_tick_redirects_back_to_the_step(
    responder_client, incident
):
    response = tick(responder_client, incident, 3, "done", htmx=False)
    assert response.status_code == 302
    assert response["Location"] == f"/incidents/{incident.pk}/#step-3"
    page = responder_client.get(response["Location"]).content.decode()
    assert 'class="step state-done" id="step-3"' in page


def test_skipping_needs_a_reason(responder_client, incident):
    response = tick(responder_client, incident, 1, "skipped")
    assert response.status_code == 400
    assert "Say why the step is skipped." in response.content.decode()
    assert StepExecution.objects.count() == 0
    response = tick(
        responder_client, incident, 1, "skipped", reason="PING works from here"
    )
    assert response.status_code == 200
    assert StepExecution.objects.get().reason == "PING works from here"
    assert "skipped step 1 (Verify): PING works from here" in response.content.decode()


def test_a_stale_tick_is_not_applied_and_says_who_got_there_first(
    responder_client, commander, incident
):
    step = incident.playbook.steps.get(number=1)
    tick_step(
        incident=incident,
        step=step,
        state="skipped",
        reason="done elsewhere",
        expected=0,
        actor=Actor.person(commander),
    )
    response = tick(responder_client, incident, 1, "done", expected=0)
    html = response.content.decode()
    assert response.status_code == 200
    assert "cole skipped it at" in html and "your change was not applied" in html
    assert list(StepExecution.objects.values_list("state", flat=True)) == ["skipped"]


def test_reopening_a_step_makes_it_pending_and_keeps_its_history(
    responder_client, incident
):
    tick(responder_client, incident, 4, "done")
    done = StepExecution.objects.get()
    response = tick(responder_client, incident, 4, "reopened", expected=done.pk)
    html = response.content.decode()
    assert 'class="step state-pending" id="step-4"' in html
    assert "History (2)" in html
    assert list(StepExecution.objects.values_list("state", flat=True)) == [
        "done",
        "reopened",
    ]


def test_a_step_that_is_not_in_the_playbook_is_404(responder_client, incident):
    assert tick(responder_client, incident, 99, "done").status_code == 404


def test_notes_land_in_the_timeline(responder_client, incident):
    response = responder_client.post(
        f"/incidents/{incident.pk}/notes",
        {"text": "INFO shows <b>maxmemory</b> reached", "step": 2},
        HTTP_HX_REQUEST="true",
    )
    html = response.content.decode()
    assert "noted on step 2: INFO shows &lt;b&gt;maxmemory&lt;/b&gt; reached" in html
    event = incident.events.get(verb="note.added")
    assert event.data == {"text": "INFO shows <b>maxmemory</b> reached", "step": 2}


def test_an_empty_note_is_refused(responder_client, incident):
    response = responder_client.post(
        f"/incidents/{incident.pk}/notes", {"text": "  "}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 400
    assert not incident.events.filter(verb="note.added").exists()


def test_polling_is_204_until_someone_else_changes_something(
    viewer_client, commander, incident
):
    last = incident.events.order_by("-seq").first().seq
    url = f"/incidents/{incident.pk}/changes?since={last}"
    assert viewer_client.get(url, HTTP_HX_REQUEST="true").status_code == 204
    step = incident.playbook.steps.get(number=3)
    tick_step(
        incident=incident,
        step=step,
        state="done",
        expected=0,
        actor=Actor.person(commander),
    )
    response = viewer_client.get(url, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200
    assert 'class="step state-done" id="step-3"' in html and 'id="step-1"' not in html
    assert "cole" in html and "marked step 3 done" in html
    new_last = incident.events.order_by("-seq").first().seq
    assert f'id="poller-since" name="since" value="{new_last}"' in html


def test_the_elapsed_time_and_progress_are_in_the_header(responder_client, incident):
    page = responder_client.get(f"/incidents/{incident.pk}/").content.decode()
    assert "data-elapsed-since=" in page and "<strong>0/5</strong>" in page


BIG_RUNBOOK = (
    "# Big\n\n## 1. Everything Breaks\n\n**Alert:** `AllDown`\n\n### Steps\n\n"
    + "".join(
        f'{n}. **Step {n}**\n   ```bash\n   redis-cli -u "${{REDIS_URL}}" llen queue:{n}\n'
        f"   curl https://api.example.com/v1/things/{n}\n   ```\n\n"
        for n in range(1, 41)
    )
)


def count_queries(client, url, **headers):  # noqa: ANN001, ANN201
    """Queries of one request with cold caches: the worst case must not grow either."""
    from django.core.cache import caches

    caches["fragments"].clear()
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url, **headers).status_code == 200
    return len(queries)


def test_the_page_runs_a_constant_number_of_queries(
    commander_client, commander, incident
):
    small = count_queries(commander_client, f"/incidents/{incident.pk}/")

    runbook = import_runbook(source=BIG_RUNBOOK, actor=IMPORTER).runbook
    big = open_incident(
        playbook=runbook.playbooks.get(), title="big", actor=Actor.person(commander)
    )
    for step in big.playbook.steps.all():
        for _ in range(3):
            for state in ("done", "reopened"):
                tick_step(
                    incident=big,
                    step=step,
                    state=state,
                    expected=None,
                    actor=Actor.person(commander),
                )
        add_note(
            incident=big,
            text=f"note on {step.number}",
            step=step,
            actor=Actor.person(commander),
        )
    assert big.executions.count() == 240 and big.playbook.steps.count() == 40
    assert count_queries(commander_client, f"/incidents/{big.pk}/") == small


@pytest.mark.parametrize("path", ["", "changes?since=0"])
def test_fragments_also_run_constant_queries(commander_client, incident, path):
    url = f"/incidents/{incident.pk}/{path}"
    first = count_queries(commander_client, url, HTTP_HX_REQUEST="true")
    tick(commander_client, incident, 1, "done")
    tick(commander_client, incident, 2, "done")
    assert count_queries(commander_client, url, HTTP_HX_REQUEST="true") == first


def test_cached_fragments_carry_each_persons_own_csrf_token(
    responder, commander, incident
):
    from django.test import Client

    rita, cole = Client(enforce_csrf_checks=True), Client(enforce_csrf_checks=True)
    rita.force_login(responder)
    cole.force_login(commander)
    rita_page = rita.get(f"/incidents/{incident.pk}/").content.decode()
    cole_page = cole.get(f"/incidents/{incident.pk}/").content.decode()
    assert "sentinel" not in rita_page and "sentinel" not in cole_page
    # A plain form post (no JavaScript) with the token from the cached fragment works.
    url = f"/incidents/{incident.pk}/steps/1/tick"
    data = {"state": "done", "expected": 0, "csrfmiddlewaretoken": csrf_of(cole_page)}
    assert cole.post(url, data).status_code == 302
    # ...and one person's token is no good in another's session: Rita keeps her
    # own cookie and sends Cole's token.
    assert rita.cookies.get("csrftoken") and cole.cookies.get("csrftoken")
    crossed = {
        "state": "done",
        "expected": 0,
        "csrfmiddlewaretoken": csrf_of(cole_page),
    }
    url = f"/incidents/{incident.pk}/steps/2/tick"
    assert rita.post(url, crossed).status_code == 403
    assert not incident.executions.filter(step__number=2).exists()
    # Her own token, same cookie, same request otherwise: accepted.
    own = {**crossed, "csrfmiddlewaretoken": csrf_of(rita_page)}
    assert rita.post(url, own).status_code == 302


def test_the_cached_page_changes_as_soon_as_the_incident_does(
    responder_client, incident
):
    before = responder_client.get(f"/incidents/{incident.pk}/").content.decode()
    assert 'class="step state-pending" id="step-1"' in before
    tick(responder_client, incident, 1, "done", htmx=False)
    after = responder_client.get(f"/incidents/{incident.pk}/").content.decode()
    assert 'class="step state-done" id="step-1"' in after


def test_a_rebound_command_shows_at_once(admin_client, responder_client, incident):
    from incidents.models import Command

    responder_client.get(f"/incidents/{incident.pk}/")
    command = Command.objects.get(
        playbook=incident.playbook, text="docker compose restart redis"
    )
    admin_client.post(
        f"/admin/incidents/command/{command.pk}/change/",
        {"kind": "action", "executor": "redis", "parameters": "[]", "spec": "{}"},
    )
    page = responder_client.get(f"/incidents/{incident.pk}/").content.decode()
    card = page[page.index(f'id="command-{command.pk}"') :][:400]
    assert "kind-action" in card
