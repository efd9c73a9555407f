"""Pages and polls cost in proportion to the playbook, not the incident's history:
the last few runs per step with a link to the rest, a paginated "all runs" page, a
paginated incident list, an idle poll that is one lookup, and each person's grants
kept in memory without ever serving a revoked one."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from guardian.shortcuts import assign_perm, remove_perm

from incidents import access
from incidents.actors import Actor
from incidents.models import Command, Incident, Playbook, StepExecution
from incidents.presenters import HISTORY_PER_STEP, RUNS_PER_COMMAND, TIMELINE_LIMIT
from incidents.services import add_note, tick_step
from tests.conftest import signed_in
from tests.test_checklist import count_queries


def add_runs(incident, step, count: int, *, state="succeeded", start=None):  # noqa: ANN001, ANN201
    """`count` finished runs of the step's first command, one second apart."""
    command = step.commands.order_by("position").first()
    start = start or timezone.now() - timedelta(hours=1)
    StepExecution.objects.bulk_create(
        StepExecution(
            incident=incident,
            step=step,
            command=command,
            state=state,
            command_text=command.text if command else "",
            summary=f"run {n}",
            created_at=start + timedelta(seconds=n),
        )
        for n in range(count)
    )
    return command


def step_html(page: str, number: int) -> str:
    start = page.rindex("<li class=", 0, page.index(f'id="step-{number}"'))
    end = page.find('<li class="step', start + 1)
    return page[start : end if end > 0 else None]


# --- the checklist page --------------------------------------------------------------


def test_the_page_shows_the_last_few_runs_of_a_step_and_links_to_the_rest(
    responder_client, commander, incident
):
    step = incident.playbook.steps.get(number=1)
    # Ticked done first, then 12 runs after it: the tick that decides the step's
    # state is older than everything the page shows of the step's history.
    tick_step(
        incident=incident,
        step=step,
        state="done",
        expected=0,
        actor=Actor.person(commander),
    )
    command = add_runs(incident, step, 12, start=timezone.now() + timedelta(seconds=1))
    assert command is not None
    page = responder_client.get(f"/incidents/{incident.pk}/").content.decode()
    html = step_html(page, 1)
    assert 'class="step state-done"' in html
    assert f"History (the last {HISTORY_PER_STEP})" in html
    history = html[html.index('<details class="history"') :]
    history = history[: history.index("</details>")]
    assert history.count("<li>") == HISTORY_PER_STEP
    assert "run 11" not in history  # the summaries are on the runs page, not here
    assert f'href="/incidents/{incident.pk}/runs/?step=1">All ticks and runs' in html
    # The command's run panel: the newest few runs, and a link to all of them.
    panel = page[page.index(f'id="run-{command.pk}"') :]
    end = panel.find('<div class="run-panel', 10)
    panel = panel[: end if end > 0 else None]
    assert panel.count('id="execution-') == RUNS_PER_COMMAND
    link = f'/incidents/{incident.pk}/runs/?command={command.pk}">All runs'
    assert link in panel


def test_a_step_with_few_runs_shows_them_all_and_no_link(
    responder_client, commander, incident
):
    step = incident.playbook.steps.get(number=2)
    for state in ("done", "reopened"):
        tick_step(
            incident=incident,
            step=step,
            state=state,
            expected=None,
            actor=Actor.person(commander),
        )
    html = step_html(
        responder_client.get(f"/incidents/{incident.pk}/").content.decode(), 2
    )
    assert 'class="step state-pending"' in html and "History (2)" in html
    assert html.count("<li><time") == 2 and "/runs/?step=" not in html


def test_the_page_and_a_poll_run_the_same_queries_with_1_or_200_executions(
    commander_client, commander, incident
):
    step = incident.playbook.steps.get(number=1)
    add_runs(incident, step, 1)
    page = f"/incidents/{incident.pk}/"
    poll = f"/incidents/{incident.pk}/changes?since=0"
    one = count_queries(commander_client, page)
    one_poll = count_queries(commander_client, poll, HTTP_HX_REQUEST="true")
    for number in (1, 2, 3):
        add_runs(incident, incident.playbook.steps.get(number=number), 66)
    assert incident.executions.count() == 199 and one > 0
    add_runs(incident, step, 1)
    assert count_queries(commander_client, page) == one
    assert count_queries(commander_client, poll, HTTP_HX_REQUEST="true") == one_poll


def test_the_timeline_on_the_page_is_the_latest_events_with_a_link_to_all(
    commander_client, commander, incident
):
    for n in range(TIMELINE_LIMIT + 5):
        add_note(incident=incident, text=f"note {n}", actor=Actor.person(commander))
    page = commander_client.get(f"/incidents/{incident.pk}/").content.decode()
    timeline = page[page.index('id="timeline-list"') :]
    assert timeline.count('<li class="event') == TIMELINE_LIMIT
    assert f"note {TIMELINE_LIMIT + 4}" in timeline and "note 0<" not in timeline
    assert f"The latest {TIMELINE_LIMIT} events." in page
    assert f'href="/incidents/{incident.pk}/timeline.csv"' in page


# --- the "all runs" page -------------------------------------------------------------


def test_all_runs_of_a_step_page_by_page_newest_first(viewer_client, incident):
    step = incident.playbook.steps.get(number=1)
    add_runs(incident, step, 120)
    url = f"/incidents/{incident.pk}/runs/?step=1"
    first = viewer_client.get(url)
    assert first.status_code == 200
    html = first.content.decode()
    assert "120 in all" in html and "Page 1 of 3" in html
    assert html.count('<tr class="state-') == 50
    assert html.index("run 119") < html.index("run 70") and "run 69" not in html
    assert 'href="?step=1&amp;page=2"' in html  # the step is kept across pages
    last = viewer_client.get(url + "&page=3").content.decode()
    assert last.count('<tr class="state-') == 20 and "run 0<" in last
    # Past the end: the last page, not an error.
    assert "Page 3 of 3" in viewer_client.get(url + "&page=99").content.decode()


def test_all_runs_of_a_command(viewer_client, incident):
    step = incident.playbook.steps.get(number=1)
    command = add_runs(incident, step, 4)
    other = incident.playbook.steps.get(number=2)
    add_runs(incident, other, 2)
    html = viewer_client.get(
        f"/incidents/{incident.pk}/runs/?command={command.pk}"
    ).content.decode()
    assert "4 in all" in html and html.count('<tr class="state-') == 4


@pytest.mark.parametrize(
    "query",
    ["", "?step=abc", "?step=1&page=0", "?step=1&page=x", "?command=-1", "?page=2"],
)
def test_all_runs_refuses_a_bad_question_clearly(viewer_client, incident, query):
    response = viewer_client.get(f"/incidents/{incident.pk}/runs/{query}")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/plain")


def test_all_runs_of_something_not_in_this_incident_is_404(
    viewer_client, incident, yomira
):
    foreign = Command.objects.exclude(playbook=incident.playbook).first()
    base = f"/incidents/{incident.pk}/runs/"
    assert viewer_client.get(base + "?step=99").status_code == 404
    assert viewer_client.get(f"{base}?command={foreign.pk}").status_code == 404
    assert viewer_client.get("/incidents/999999/runs/?step=1").status_code == 404


def test_all_runs_needs_sign_in_and_the_right_to_see_incidents(
    client, nobody_client, incident
):
    url = f"/incidents/{incident.pk}/runs/?step=1"
    anonymous = client.get(url)
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    assert nobody_client.get(url).status_code == 403


# --- the incident list ---------------------------------------------------------------


@pytest.fixture
def many_incidents(yomira):
    """120 incidents: §1 critical ones and §4 others, one hour apart."""
    first = Playbook.objects.current().get(number=1)
    fourth = Playbook.objects.current().get(number=4)
    now = timezone.now()
    Incident.objects.bulk_create(
        Incident(
            playbook=first if n % 2 else fourth,
            title=f"bulk incident {n}",
            severity="critical" if n % 2 else "high",
            opened_at=now - timedelta(hours=n),
        )
        for n in range(120)
    )


def titles(html: str) -> list[str]:
    return re.findall(r'class="title" href="[^"]+">([^<]+)</a>', html)


def test_the_incident_list_comes_a_page_at_a_time(viewer_client, many_incidents):
    first = viewer_client.get("/incidents/").content.decode()
    assert len(titles(first)) == 50 and titles(first)[0] == "bulk incident 0"
    assert "Page 1 of 3" in first and 'href="?page=2"' in first
    second = viewer_client.get("/incidents/?page=2").content.decode()
    assert titles(second)[0] == "bulk incident 50" and len(titles(second)) == 50
    assert not set(titles(first)) & set(titles(second))
    # Past the end: the last page.
    past = viewer_client.get("/incidents/?page=500")
    assert past.status_code == 200 and len(titles(past.content.decode())) == 20


def test_filters_are_kept_from_page_to_page(viewer_client, many_incidents):
    first = viewer_client.get("/incidents/?severity=critical").content.decode()
    assert "Page 1 of 2" in first
    assert 'href="?severity=critical&amp;page=2"' in first
    second = viewer_client.get("/incidents/?severity=critical&page=2").content.decode()
    assert titles(second) == [f"bulk incident {n}" for n in range(101, 120, 2)]
    # The HTMX answer (the filter form and the page links swap #results) pages too.
    htmx = viewer_client.get(
        "/incidents/?severity=critical&page=2", HTTP_HX_REQUEST="true"
    ).content.decode()
    assert htmx.startswith('\n<div id="results">') or htmx.lstrip().startswith(
        '<div id="results">'
    )
    assert titles(htmx) == titles(second)


@pytest.mark.parametrize("page", ["abc", "0", "-1", "1.5", "9" * 30, "²"])
def test_a_bad_page_number_is_a_clear_400(viewer_client, many_incidents, page):
    response = viewer_client.get("/incidents/", {"page": page})
    assert response.status_code == 400
    assert "must be a page number" in response.content.decode()


def test_the_list_runs_the_same_queries_for_few_or_many_incidents(
    viewer_client, yomira, many_incidents
):
    viewer_client.get("/incidents/")  # the viewer's grants now in memory
    with CaptureQueriesContext(connection) as many:
        assert viewer_client.get("/incidents/?page=2").status_code == 200
    Incident.objects.filter(title__endswith="7").delete()
    with CaptureQueriesContext(connection) as fewer:
        assert viewer_client.get("/incidents/?page=2").status_code == 200
    assert len(many) == len(fewer)


# --- the idle poll -------------------------------------------------------------------


def test_an_idle_poll_is_one_query(viewer_client, incident, django_assert_num_queries):
    last = incident.events.order_by("-seq").first().seq
    url = f"/incidents/{incident.pk}/changes?since={last}"
    assert viewer_client.get(url).status_code == 204  # the ordinary way, once
    with django_assert_num_queries(1):  # the session, the user, the events: one
        assert viewer_client.get(url).status_code == 204


def test_the_page_once_drawn_is_one_query(
    viewer_client, incident, django_assert_num_queries
):
    url = f"/incidents/{incident.pk}/"
    first = viewer_client.get(url).content.decode()
    with django_assert_num_queries(1):
        again = viewer_client.get(url).content.decode()
    # The same page, with this request's own CSRF token (masked afresh).
    assert again.count("csrfmiddlewaretoken") == first.count("csrfmiddlewaretoken")
    assert "sentinel" not in again
    assert re.sub(r'value="[^"]{64}"|"x-csrftoken": "[^"]+"', "", first) == re.sub(
        r'value="[^"]{64}"|"x-csrftoken": "[^"]+"', "", again
    )


def two_polls(client, incident):  # noqa: ANN001, ANN201
    """A poll the ordinary way, then one the one-query way."""
    last = incident.events.order_by("-seq").first().seq
    url = f"/incidents/{incident.pk}/changes?since={last}"
    assert client.get(url).status_code == 204
    assert client.get(url).status_code == 204
    return url


def test_after_signing_out_the_next_poll_is_sent_to_sign_in(viewer, incident):
    client = signed_in(viewer)
    url = two_polls(client, incident)
    cookie = client.cookies["sessionid"].value
    client.post("/accounts/logout/")
    # The old cookie, replayed (as a copied one would be): its session is gone.
    client.cookies["sessionid"] = cookie
    response = client.get(url)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert client.get(f"/incidents/{incident.pk}/").status_code == 302


def test_a_changed_password_or_a_deactivated_account_ends_the_fast_way(
    viewer, incident
):
    client = signed_in(viewer)
    url = two_polls(client, incident)
    viewer.set_password("another-horse-battery")
    viewer.save()
    assert client.get(url).status_code == 302
    client = signed_in(viewer)
    url = two_polls(client, incident)
    type(viewer).objects.filter(pk=viewer.pk).update(is_active=False)
    assert client.get(url).status_code == 302


def test_an_expired_session_ends_the_fast_way(viewer, incident):
    from django.contrib.sessions.models import Session

    client = signed_in(viewer)
    url = two_polls(client, incident)
    Session.objects.filter(session_key=client.cookies["sessionid"].value).update(
        expire_date=timezone.now() - timedelta(seconds=1)
    )
    assert client.get(url).status_code == 302


def test_another_persons_cookie_is_not_their_session(viewer, commander, incident):
    """The memory of a session is keyed by its key: a made-up key finds nothing."""
    client = signed_in(viewer)
    url = two_polls(client, incident)
    client.cookies["sessionid"] = "x" * 32
    assert client.get(url).status_code == 302


def test_a_poll_of_an_incident_that_does_not_exist_is_404(viewer_client, incident):
    assert viewer_client.get("/incidents/999999/changes?since=0").status_code == 404


def test_a_poll_needs_the_right_to_see_incidents(
    client, nobody_client, nobody, incident
):
    url = f"/incidents/{incident.pk}/changes?since="
    assert nobody_client.get(url + "0").status_code == 403
    assert nobody_client.get(url + "x").status_code == 403
    assert nobody_client.post(url + "0").status_code == 403
    assert nobody_client.get(url + "0").status_code == 403  # the one-query way too
    url += "0"
    assert client.get(url).status_code == 302


# --- grants kept in memory, never stale ----------------------------------------------


def test_a_revoked_role_is_refused_on_the_very_next_request(viewer, incident):
    client = signed_in(viewer)
    last = incident.events.order_by("-seq").first().seq
    poll = f"/incidents/{incident.pk}/changes?since={last}"
    assert client.get(poll).status_code == 204
    assert client.get(poll).status_code == 204  # answered from memory
    viewer.groups.remove(Group.objects.get(name="Viewer"))
    assert client.get(poll).status_code == 403
    assert client.get(f"/incidents/{incident.pk}/").status_code == 403
    viewer.groups.add(Group.objects.get(name="Viewer"))
    assert client.get(poll).status_code == 204


def test_a_role_losing_a_permission_is_refused_at_once(viewer, incident):
    client = signed_in(viewer)
    assert client.get("/incidents/").status_code == 200
    Group.objects.get(name="Viewer").permissions.remove(
        Permission.objects.get(codename="view_incident")
    )
    assert client.get("/incidents/").status_code == 403


def test_a_per_playbook_grant_taken_back_is_gone_at_once(responder, incident):
    def fresh():  # noqa: ANN202 - the user as the next request loads it
        return type(responder).objects.get(pk=responder.pk)

    playbook = incident.playbook
    assert not access.can_on_playbook(fresh(), access.RUN_ACTIONS, playbook)
    assign_perm("incidents.run_actions", responder, playbook)
    assert access.can_on_playbook(fresh(), access.RUN_ACTIONS, playbook)
    assert access.can_on_playbook(fresh(), access.RUN_ACTIONS, playbook)  # memory
    assert access.permissions_for(fresh(), playbook)["actions"] is True
    remove_perm("incidents.run_actions", responder, playbook)
    assert not access.can_on_playbook(fresh(), access.RUN_ACTIONS, playbook)
    assert access.permissions_for(fresh(), playbook)["actions"] is False


def test_a_revocation_written_straight_to_the_database_is_seen_too(viewer, incident):
    """psql, a script, another process: the counter is moved by the database."""
    client = signed_in(viewer)
    assert client.get("/incidents/").status_code == 200
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM auth_user_groups WHERE user_id = %s", [viewer.pk])
    assert client.get("/incidents/").status_code == 403


def test_grants_are_read_once_per_change_not_once_per_request(
    viewer, django_assert_num_queries
):
    def fresh():  # noqa: ANN202 - the user as the next request loads it
        return type(viewer).objects.get(pk=viewer.pk)

    first, second, third = fresh(), fresh(), fresh()
    with django_assert_num_queries(2):  # the counter, then the grants
        assert access.can(first, access.VIEW_INCIDENTS)
    with django_assert_num_queries(1):  # the counter only: the rest from memory
        assert access.can(second, access.VIEW_INCIDENTS)
        assert not access.can(second, access.ADD_NOTES)
    before = access.grants_version()
    viewer.user_permissions.add(Permission.objects.get(codename="add_note"))
    assert access.grants_version() > before
    with django_assert_num_queries(2):  # changed: read again
        assert access.can(third, access.ADD_NOTES)


# --- each step drawn once per change of what it shows --------------------------------


@pytest.fixture
def drawn_steps(monkeypatch):  # noqa: ANN001, ANN201
    """The numbers of the steps drawn (Markdown and template), in order."""
    from incidents import presenters

    drawn: list[int] = []
    original = presenters.step_view

    def counting(step, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        drawn.append(step.number)
        return original(step, *args, **kwargs)

    monkeypatch.setattr(presenters, "step_view", counting)
    return drawn


def test_a_change_redraws_only_the_step_it_touched(
    responder_client, responder, incident, drawn_steps
):
    url = f"/incidents/{incident.pk}/"
    numbers = list(incident.playbook.steps.values_list("number", flat=True))
    assert len(numbers) >= 3
    responder_client.get(url)
    assert sorted(drawn_steps) == numbers  # the first viewer draws every step
    drawn_steps.clear()
    tick_step(
        incident=incident,
        step=incident.playbook.steps.get(number=2),
        state="done",
        expected=0,
        actor=Actor.person(responder),
    )
    page = responder_client.get(url).content.decode()
    assert drawn_steps == [2]
    assert 'class="step state-done"' in step_html(page, 2)
    assert 'class="step state-pending"' in step_html(page, 1)
    drawn_steps.clear()
    add_note(
        incident=incident,
        text="nothing to do with a step",
        actor=Actor.person(responder),
    )
    page = responder_client.get(url).content.decode()
    assert drawn_steps == []  # a new event, the same steps
    assert "nothing to do with a step" in page


def test_the_answer_to_a_click_carries_only_the_step_it_changed(
    responder_client, responder, incident, drawn_steps
):
    responder_client.get(f"/incidents/{incident.pk}/")
    since = incident.events.order_by("-seq").first().seq
    drawn_steps.clear()
    response = responder_client.post(
        f"/incidents/{incident.pk}/steps/3/tick",
        {"state": "done", "expected": 0, "since": since},
        HTTP_HX_REQUEST="true",
    )
    answer = response.content.decode()
    assert response.status_code == 200 and drawn_steps == [3]
    assert 'id="step-3" hx-swap-oob="true"' in answer
    assert 'class="step state-done"' in answer
    assert 'id="step-1"' not in answer and 'id="step-2"' not in answer
    assert (
        'id="incident-head"' in answer
        and 'hx-swap-oob="afterbegin:#timeline-list"' in answer
    )
    assert "sentinel" not in answer
    # A second tab's poll brings the same change without drawing the step again.
    drawn_steps.clear()
    poll = responder_client.get(
        f"/incidents/{incident.pk}/changes?since={since}", HTTP_HX_REQUEST="true"
    ).content.decode()
    assert drawn_steps == [] and 'id="step-3" hx-swap-oob="true"' in poll


def test_a_refusal_in_a_step_is_that_answers_own_and_not_kept(
    responder_client, incident, drawn_steps
):
    """A skip without a reason: the error and what was typed show in the step for
    this answer only; the next viewer's step has neither."""
    url = f"/incidents/{incident.pk}/steps/1/tick"
    response = responder_client.post(
        url, {"state": "skipped", "expected": 0, "reason": ""}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 400
    said = '<p class="error" role="alert">'
    assert said in step_html(response.content.decode(), 1)
    page = responder_client.get(f"/incidents/{incident.pk}/").content.decode()
    assert said not in step_html(page, 1)


def test_a_runs_end_redraws_its_step_even_without_a_step_event(
    responder_client, responder, incident
):
    step = incident.playbook.steps.get(number=1)
    command = add_runs(incident, step, 1, state="running")
    url = f"/incidents/{incident.pk}/"
    assert "Running" in step_html(responder_client.get(url).content.decode(), 1)
    run = incident.executions.get(command=command)
    StepExecution.objects.filter(pk=run.pk).update(
        state="succeeded", summary="found the culprit", finished_at=timezone.now()
    )
    # Any event makes the page drawn again; the step is drawn again for its run.
    add_note(incident=incident, text="later", actor=Actor.person(responder))
    html = step_html(responder_client.get(url).content.decode(), 1)
    assert "found the culprit" in html and "Running" not in html


def test_a_rebinding_redraws_the_steps(responder_client, incident):
    from django.db.models import F

    step = incident.playbook.steps.get(number=1)
    command = step.commands.order_by("position").first()
    url = f"/incidents/{incident.pk}/"
    assert "bench_param" not in responder_client.get(url).content.decode()
    # As the admin's command form does: the command, then the playbook's version.
    Command.objects.filter(pk=command.pk).update(parameters=["bench_param"])
    Playbook.objects.filter(pk=incident.playbook_id).update(
        binding_version=F("binding_version") + 1
    )
    assert "bench_param" in step_html(responder_client.get(url).content.decode(), 1)


def test_a_steps_cached_html_never_carries_another_persons_rights(
    responder_client, viewer_client, incident
):
    url = f"/incidents/{incident.pk}/"
    # The responder draws (and caches) every step first, with its tick buttons.
    assert "✓ Done" in step_html(responder_client.get(url).content.decode(), 1)
    viewer_page = viewer_client.get(url).content.decode()
    assert "✓ Done" not in viewer_page and "/steps/1/tick" not in viewer_page
    # And the other way round, on a step the viewer draws first after a change.
    tick_step(
        incident=incident,
        step=incident.playbook.steps.get(number=2),
        state="done",
        expected=0,
        actor=Actor.person(Incident.objects.get(pk=incident.pk).opened_by),
    )
    assert "Reopen" not in step_html(viewer_client.get(url).content.decode(), 2)
    assert "Reopen" in step_html(responder_client.get(url).content.decode(), 2)


def test_a_role_taken_back_takes_the_buttons_off_a_cached_step(responder, incident):
    client = signed_in(responder)
    url = f"/incidents/{incident.pk}/"
    assert "✓ Done" in step_html(client.get(url).content.decode(), 1)
    responder.groups.clear()
    responder.groups.add(Group.objects.get(name="Viewer"))
    assert "✓ Done" not in client.get(url).content.decode()


# --- the top bar, drawn once per person, rights and page -----------------------------


def topbar(page: str) -> str:
    return page[page.index('<header class="topbar">') : page.index("</header>")]


def test_the_top_bar_is_each_persons_own(viewer_client, commander_client, incident):
    url = f"/incidents/{incident.pk}/"
    cole = topbar(commander_client.get(url).content.decode())
    vera = topbar(viewer_client.get(url).content.decode())
    assert ">cole</a>" in cole and "Open incident" in cole
    assert ">vera</a>" in vera and "cole" not in vera and "Open incident" not in vera
    # Each answer's own CSRF token in the sign-out form (never a kept one).
    again = topbar(viewer_client.get(url).content.decode())
    token = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
    assert token.search(vera).group(1) != token.search(again).group(1)
    assert "sentinel" not in vera + cole


def test_a_right_taken_back_leaves_the_top_bar_at_once(commander, incident):
    client = signed_in(commander)
    url = f"/incidents/{incident.pk}/"
    assert "Open incident" in topbar(client.get(url).content.decode())
    commander.groups.clear()
    commander.groups.add(Group.objects.get(name="Viewer"))
    assert "Open incident" not in topbar(client.get(url).content.decode())


def test_a_waiting_request_names_an_approver_granted_after_it_was_drawn(
    viewer_client, commander, make_user, incident
):
    step = incident.playbook.steps.get(number=1)
    add_runs(incident, step, 1, state="awaiting_approval")
    incident.executions.update(requested_by=commander)
    url = f"/incidents/{incident.pk}/"
    assert "Waiting for a second person" in step_html(
        viewer_client.get(url).content.decode(), 1
    )
    assert "zeno" not in viewer_client.get(url).content.decode()
    zeno = make_user("zeno")
    assign_perm("incidents.approve_actions", zeno, incident.playbook)
    add_note(incident=incident, text="asked zeno", actor=Actor.person(commander))
    assert "zeno" in step_html(viewer_client.get(url).content.decode(), 1)


# --- can(): the permission cache read directly, as Django's backends would --------------

ALL_PERMS = [
    access.VIEW_INCIDENTS,
    access.OPEN_INCIDENTS,
    access.COMMAND_INCIDENTS,
    access.TICK_STEPS,
    access.ADD_NOTES,
    access.EXPORT_INCIDENTS,
    access.RUN_PROBES,
    access.RUN_ACTIONS,
    access.APPROVE_ACTIONS,
    access.BREAK_GLASS,
    access.IMPORT_RUNBOOKS,
    access.CHANGE_GRANTS,
    "incidents.view_playbook",
    "auth.change_user",
    "no_such.permission",
]


@pytest.mark.parametrize("role", ["Viewer", "Responder", "Commander", "Admin", None])
def test_can_answers_as_djangos_has_perm(yomira, make_user, role):
    person = make_user(f"p{role or 'none'}", *([role] if role else []))
    for perm in ALL_PERMS:
        fresh = type(person).objects.get(pk=person.pk)  # no caches of its own
        assert access.can(fresh, perm) == fresh.has_perm(perm), perm
    person.is_superuser = True
    assert all(access.can(person, perm) for perm in ALL_PERMS)
    person.is_active = False
    assert not any(access.can(person, perm) for perm in ALL_PERMS)


def test_with_another_backend_can_asks_every_backend(yomira, make_user, settings):
    """A backend the console does not know may grant what the cache does not hold:
    then Django's has_perm, which asks them all, decides."""
    settings.AUTHENTICATION_BACKENDS = [
        *settings.AUTHENTICATION_BACKENDS,
        "tests.test_page_costs.GrantsEverything",
    ]
    nora = make_user("nora-unknown-backend")
    assert access.can(nora, access.VIEW_INCIDENTS)


class GrantsEverything:
    def authenticate(self, request, **credentials):  # noqa: ANN001, ANN003, ANN201
        return None

    def has_perm(self, user, perm, obj=None) -> bool:  # noqa: ANN001
        return True
