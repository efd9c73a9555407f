"""Tests written for issue 14's mutation run (docs/mutation/issue14.md): each judges
one decision of the new safety code directly, in the test process, so that mutmut
(which cannot run the integration tests' real worker and killed broker) sees them.

- inline.run_instead: an action is never run inline, a probe of a site of its own
  is never run inline, the concurrency cap, a run no longer queued is not run, the
  re-check refuses as on the worker; every path gives its slot back exactly once.
- inline._run_bounded: a probe that overruns the wall clock ends timed_out and
  keeps its slot until its thread ends; no thread to be had gives the slot back.
- offline.offline_answer / keep_reader_cookie: a stored page only to a verified
  reader, for a GET or HEAD of a playbook page; the cookie's attributes, when it is
  issued again and when it is taken away.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import timedelta

import pytest
from django.contrib.auth import HASH_SESSION_KEY
from django.contrib.auth.models import AnonymousUser
from django.core import signing
from django.core.cache import caches
from django.test import Client, RequestFactory

from incidents import access
from incidents.actors import Actor
from incidents.models import AuditEvent, Command, Playbook, StepExecution
from incidents.services import inline, request_run, runs, sites
from probes import sites as probe_sites
from probes.runtime import Result
from yomira_console import offline

from .conftest import grant, hanging_probes, signed_in

# The run's own Redis (tests/stack.py), the target of §4's ping probe.
TEST_REDIS = os.environ.get("TARGET_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
PG_SLUG = "postgresql-down-unreachable"


# --- inline probes -----------------------------------------------------------------


@pytest.fixture
def queued(incident, commander, monkeypatch) -> StepExecution:  # noqa: ANN001
    """§4's ping probe requested by the commander and left queued: the send held
    back, as if the broker had refused it."""
    monkeypatch.setattr(runs, "dispatch", lambda *a, **k: None)
    monkeypatch.setenv("TARGET_REDIS_URL", TEST_REDIS)
    command = next(
        c
        for c in Command.objects.filter(
            playbook=incident.playbook, executor="redis", kind=Command.Kind.PROBE
        ).order_by("pk")
        if not c.parameters
    )
    execution = request_run(
        incident=incident, command=command, params={}, actor=Actor.person(commander)
    ).execution
    assert execution.state == StepExecution.State.QUEUED
    assert inline.SLOTS.taken == 0
    return execution


def verbs(execution: StepExecution) -> list[str]:
    return list(
        AuditEvent.objects.filter(
            object_type="stepexecution", object_id=str(execution.pk)
        )
        .order_by("seq")
        .values_list("verb", flat=True)
    )


def untouched(execution: StepExecution) -> None:
    before = verbs(execution)
    execution.refresh_from_db()
    assert execution.state == StepExecution.State.QUEUED
    assert execution.started_at is None and execution.summary == ""
    assert verbs(execution) == before == ["execution.requested"]
    assert inline.SLOTS.taken == 0


def test_a_probe_runs_inline_marked_and_gives_its_slot_back(queued):
    assert inline.run_instead(queued.pk, Command.Kind.PROBE) == ""
    queued.refresh_from_db()
    assert queued.state == StepExecution.State.SUCCEEDED, queued.summary
    assert queued.summary == f"{inline.INLINE_MARK} PING: PONG"
    assert queued.started_at is not None
    assert verbs(queued) == ["execution.requested", "execution.succeeded"]
    event = AuditEvent.objects.get(verb="execution.succeeded")
    assert event.data["result"][inline.INLINE_KEY] is True
    assert inline.SLOTS.taken == 0


@pytest.mark.parametrize("kind", [Command.Kind.ACTION, "action", "", "PROBE"])
def test_anything_but_a_probe_is_refused_and_not_even_claimed(queued, kind):
    assert inline.run_instead(queued.pk, kind) == inline.ACTIONS_ONLY_ON_WORKER
    untouched(queued)


def test_an_action_is_refused_even_with_a_site_queue_and_a_free_slot(queued):
    # The action's reason, not the site's: the kind is decided first.
    assert (
        inline.run_instead(queued.pk, Command.Kind.ACTION, "site.b")
        == inline.ACTIONS_ONLY_ON_WORKER
    )
    untouched(queued)


def test_a_probe_of_a_site_of_its_own_is_refused_with_its_queue(queued):
    assert inline.run_instead(queued.pk, Command.Kind.PROBE, "site.b") == (
        inline.site_reason("site.b")
    )
    untouched(queued)


def test_no_site_queue_runs_it_here(queued):
    assert inline.run_instead(queued.pk, Command.Kind.PROBE, "") == ""
    queued.refresh_from_db()
    assert queued.state == StepExecution.State.SUCCEEDED


def test_the_cap_refuses_when_every_slot_is_taken(queued, settings):
    settings.INLINE_PROBE_CONCURRENCY = 1
    assert inline.SLOTS.take(1)  # another inline probe is running
    try:
        assert inline.run_instead(queued.pk, Command.Kind.PROBE) == (
            inline.cap_reason(1)
        )
        assert inline.SLOTS.taken == 1  # the refusal took nothing
    finally:
        inline.SLOTS.give()
    untouched(queued)


def test_a_free_slot_under_the_cap_runs(queued, settings):
    settings.INLINE_PROBE_CONCURRENCY = 2
    assert inline.SLOTS.take(2)
    try:
        assert inline.run_instead(queued.pk, Command.Kind.PROBE) == ""
        assert inline.SLOTS.taken == 1  # its own slot given back, the other kept
    finally:
        inline.SLOTS.give()
    queued.refresh_from_db()
    assert queued.state == StepExecution.State.SUCCEEDED


def test_inline_runs_off_refuses_everything(queued, settings):
    settings.INLINE_PROBE_CONCURRENCY = 0
    assert inline.run_instead(queued.pk, Command.Kind.PROBE) == inline.cap_reason(0)
    untouched(queued)


def test_the_slots_count(settings):
    slots = inline._Slots()
    assert slots.take(2) and slots.take(2) and not slots.take(2)
    assert slots.taken == 2
    slots.give()
    assert slots.taken == 1 and slots.take(2)
    assert not inline._Slots().take(0)


def test_a_run_no_longer_queued_is_not_run_and_its_slot_is_free(queued):
    StepExecution.objects.filter(pk=queued.pk).update(state=StepExecution.State.RUNNING)
    assert inline.run_instead(queued.pk, Command.Kind.PROBE) == ""
    queued.refresh_from_db()
    assert queued.state == StepExecution.State.RUNNING
    assert queued.summary == "" and queued.started_at is None
    assert verbs(queued) == ["execution.requested"]
    assert inline.SLOTS.taken == 0


def test_the_recheck_refuses_inline_as_on_the_worker(queued, commander):
    commander.groups.clear()  # revoked between the click and the run
    assert inline.run_instead(queued.pk, Command.Kind.PROBE) == ""
    queued.refresh_from_db()
    assert queued.state == StepExecution.State.FAILED
    assert queued.summary == "Not run: the requester may no longer run this command."
    assert verbs(queued) == ["execution.requested", "permission.denied"]
    event = AuditEvent.objects.get(verb="permission.denied", object_id=str(queued.pk))
    assert event.data["result"][inline.INLINE_KEY] is True
    assert inline.SLOTS.taken == 0


def test_an_overrun_is_timed_out_and_the_hung_thread_keeps_its_slot(
    queued, settings, monkeypatch
):
    settings.INLINE_PROBE_TIMEOUT = 0.2
    with hanging_probes(monkeypatch) as threads:
        assert inline.run_instead(queued.pk, Command.Kind.PROBE) == ""
        queued.refresh_from_db()
        assert queued.state == StepExecution.State.TIMED_OUT
        assert queued.summary == (
            f"{inline.INLINE_MARK} Stopped: no answer within the inline limit of 0.2 s."
        )
        assert inline.SLOTS.taken == 1  # the hung thread still holds it
    assert inline.SLOTS.taken == 0
    assert threads and threads[0].daemon  # never holds the web process at exit
    assert threads[0].name == f"inline-probe-{queued.pk}"


def test_the_probe_gets_the_inline_limits_and_its_parameters(
    queued, settings, monkeypatch
):
    seen = []

    def records(command, params, ctx):  # noqa: ANN001, ANN202
        seen.append((command.pk, params, ctx))
        return Result(True, "ok", data={"n": 1})

    monkeypatch.setattr(inline.commands, "run", records)
    settings.INLINE_PROBE_TIMEOUT = 2
    settings.EXECUTION_TIMEOUT = 15
    settings.EXECUTION_CONNECT_TIMEOUT = 1
    assert inline.run_instead(queued.pk, Command.Kind.PROBE) == ""
    ((pk, params, ctx),) = seen
    assert (pk, params) == (queued.command_id, {})
    assert (ctx.timeout, ctx.connect_timeout) == (2, 1)
    event = AuditEvent.objects.get(verb="execution.succeeded")
    assert event.data["result"]["n"] == 1 and event.data["result"][inline.INLINE_KEY]


def test_no_thread_to_be_had_gives_the_slot_back(queued, monkeypatch):
    class NoThread(threading.Thread):
        def start(self) -> None:
            raise RuntimeError("can't start new thread")

    monkeypatch.setattr(inline.threading, "Thread", NoThread)
    with pytest.raises(RuntimeError):
        inline.run_instead(queued.pk, Command.Kind.PROBE)
    assert inline.SLOTS.taken == 0


# --- the offline answer and the reader cookie --------------------------------------


@pytest.fixture
def store(settings, tmp_path, yomira):  # noqa: ANN001, ANN201
    settings.OFFLINE_PAGES_DIR = str(tmp_path / "offline")
    assert offline.refresh(force=True)
    return tmp_path / "offline"


def outage_request(
    path: str, method: str = "GET", reader: str | None = None, session: str = "s1"
):  # noqa: ANN201
    request = getattr(RequestFactory(), method.lower())(path)
    request.COOKIES["sessionid"] = session
    if reader is not None:
        request.COOKIES["yomira_reader"] = reader
    return request


def stored_headers(response) -> None:  # noqa: ANN001
    assert response["Cache-Control"] == "no-store, private"
    assert response["X-Console-Database"] == "unreachable"


def test_a_reader_gets_the_stored_library_and_playbook(store):
    token = offline.reader_token(1, "s1")
    library = offline.offline_answer(outage_request("/playbooks/", reader=token))
    assert library.status_code == 200
    assert library.content.decode() == offline.read_page(offline.INDEX)
    stored_headers(library)
    page = offline.offline_answer(
        outage_request(f"/playbooks/{PG_SLUG}/", reader=token)
    )
    assert page.status_code == 200
    assert page.content.decode() == offline.read_page(PG_SLUG)
    stored_headers(page)
    head = offline.offline_answer(outage_request("/playbooks/", "HEAD", token))
    assert head.status_code == 200


@pytest.mark.parametrize(
    "reader",
    [
        None,
        "garbage",
        "other-session",
        "expired",
    ],
)
def test_no_stored_page_without_a_verified_reader(store, reader):
    token = {
        None: None,
        "garbage": "garbage",
        "other-session": offline.reader_token(1, "s2"),
        "expired": offline.reader_token(1, "s1", now=time.time() - 13 * 3600),
    }[reader]
    for path in ("/playbooks/", f"/playbooks/{PG_SLUG}/"):
        response = offline.offline_answer(outage_request(path, reader=token))
        assert response.status_code == 503
        text = response.content.decode()
        assert "PostgreSQL" not in text  # no playbook title listed either
        assert response["Retry-After"] == "30"
        stored_headers(response)


def test_a_reader_writing_gets_the_refusal_with_the_list(store):
    token = offline.reader_token(1, "s1")
    response = offline.offline_answer(outage_request("/playbooks/", "POST", token))
    assert response.status_code == 503
    text = response.content.decode()
    assert "Nothing was saved and nothing was run." in text
    assert f'href="/playbooks/{PG_SLUG}/"' in text
    stored_headers(response)


def test_a_reader_on_another_page_gets_the_list_of_stored_playbooks(store):
    token = offline.reader_token(1, "s1")
    for path in ("/incidents/", "/no/such/page/"):
        response = offline.offline_answer(outage_request(path, reader=token))
        assert response.status_code == 503
        text = response.content.decode()
        assert f'href="/playbooks/{PG_SLUG}/"' in text
        assert "Nothing was saved" not in text
        assert " UTC" in text  # when the stored copy was imported


def test_a_slug_not_stored_is_the_refusal_page(store):
    token = offline.reader_token(1, "s1")
    response = offline.offline_answer(outage_request("/playbooks/nope/", reader=token))
    assert response.status_code == 503


def test_the_reader_cookie_is_httponly_lax_for_its_hours_and_secure_on_https(
    yomira, viewer, settings
):
    settings.OFFLINE_READER_HOURS = 5
    settings.SESSION_COOKIE_SECURE = False
    client = signed_in(viewer)
    cookie = client.get("/playbooks/").cookies["yomira_reader"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    assert cookie["max-age"] == 5 * 3600
    assert not cookie["secure"]
    data = offline.verify_reader(
        outage_request(
            "/", reader=cookie.value, session=client.cookies["sessionid"].value
        )
    )
    assert data["u"] == viewer.pk
    assert 5 * 3600 - 60 < data["e"] - time.time() <= 5 * 3600
    settings.SESSION_COOKIE_SECURE = True
    client = signed_in(viewer)
    assert client.get("/playbooks/").cookies["yomira_reader"]["secure"]
    settings.SESSION_COOKIE_SECURE = False
    client = signed_in(viewer)
    assert client.get("/playbooks/", secure=True).cookies["yomira_reader"]["secure"]


def test_a_cookie_issued_to_another_person_is_replaced(yomira, viewer):
    client = signed_in(viewer)
    session = client.cookies["sessionid"].value
    client.cookies["yomira_reader"] = offline.reader_token(viewer.pk + 1000, session)
    cookie = client.get("/playbooks/").cookies["yomira_reader"]
    data = offline.verify_reader(
        outage_request("/", reader=cookie.value, session=session)
    )
    assert data["u"] == viewer.pk


def test_a_fresh_cookie_is_not_issued_again_an_hour_old_one_is(yomira, viewer):
    client = signed_in(viewer)
    session = client.cookies["sessionid"].value
    client.cookies["yomira_reader"] = offline.reader_token(
        viewer.pk, session, now=time.time() - 1800
    )
    assert "yomira_reader" not in client.get("/playbooks/").cookies
    client.cookies["yomira_reader"] = offline.reader_token(
        viewer.pk, session, now=time.time() - 3660
    )
    assert "yomira_reader" in client.get("/playbooks/").cookies


def test_no_cookie_on_an_error_answer(yomira, viewer):
    client = signed_in(viewer)
    assert client.get("/incidents/?page=abc").status_code == 400
    assert "yomira_reader" not in client.cookies


def test_a_person_who_lost_the_right_loses_the_cookie(yomira, viewer):
    client = signed_in(viewer)
    session = client.cookies["sessionid"].value
    # Looked at again once it is an hour old (a fresh one is not: see the report).
    client.cookies["yomira_reader"] = offline.reader_token(
        viewer.pk, session, now=time.time() - 3660
    )
    viewer.groups.clear()
    response = client.get("/")
    assert response.cookies["yomira_reader"]["max-age"] == 0
    assert response.cookies["yomira_reader"]["samesite"] == "Lax"


def test_a_signed_out_visitor_with_a_cookie_loses_it(yomira, viewer):
    client = signed_in(viewer)
    token = client.get("/playbooks/").cookies["yomira_reader"].value
    anonymous = Client()
    anonymous.cookies["yomira_reader"] = token
    response = anonymous.get("/accounts/login/")
    assert response.cookies["yomira_reader"]["max-age"] == 0
    assert response.cookies["yomira_reader"]["samesite"] == "Lax"


# --- the one-query sign-in's memory of sessions -------------------------------------


class Session(dict):
    """A stand-in for request.session with the two things remember_session reads."""

    def __init__(self, key: str | None, **data: object) -> None:
        super().__init__(data)
        self.session_key = key


def remembered(key: str) -> object:
    return caches["fragments"].get(f"session:{key}")


def test_a_session_is_remembered_only_for_a_signed_in_person_with_a_hash(viewer):
    request = RequestFactory().get("/")
    request.user = viewer
    request.session = Session("a" * 32, **{HASH_SESSION_KEY: "h"})
    access.remember_session(request)
    assert remembered("a" * 32) == (viewer.pk, "h")
    # Anonymous, though the session carries a hash: nothing.
    request.user = AnonymousUser()
    request.session = Session("b" * 32, **{HASH_SESSION_KEY: "h"})
    access.remember_session(request)
    assert remembered("b" * 32) is None
    # Signed in but no hash in the session (not signed in by Django's login).
    request.user = viewer
    request.session = Session("c" * 32)
    access.remember_session(request)
    assert remembered("c" * 32) is None
    # No session key yet.
    request.session = Session(None, **{HASH_SESSION_KEY: "h"})
    access.remember_session(request)
    assert remembered("None") is None


# --- which queue -------------------------------------------------------------------


def test_the_queue_of_an_execution_that_is_gone_is_the_default(db, monkeypatch):
    monkeypatch.setenv("TARGET_SITE_REDIS_URL", "eu")
    assert sites.queue_for_execution(10**9) is None


def test_a_worker_reads_its_site_from_its_own_environment(monkeypatch):
    monkeypatch.setenv("WORKER_SITE", "EU")
    assert probe_sites.worker_site() == "eu"
    monkeypatch.delenv("WORKER_SITE")
    assert probe_sites.worker_site() == ""


def test_a_bad_site_name_is_refused_in_full_words():
    with pytest.raises(probe_sites.SiteConfigError) as refused:
        probe_sites.clean_site(" e/u ", "TARGET_SITE_REDIS_URL")
    assert str(refused.value) == (
        "TARGET_SITE_REDIS_URL: 'e/u' is not a site name (letters, digits, "
        "'-' and '_', at most 40, starting with a letter or digit)."
    )


def test_the_fast_way_sets_a_person_bound_to_the_database(viewer, incident):
    client = signed_in(viewer)
    assert client.get(f"/incidents/{incident.pk}/").status_code == 200  # remembered
    request = RequestFactory().get("/")
    request.COOKIES["sessionid"] = client.cookies["sessionid"].value
    assert access.signed_in_with(request, "%s + 1", [41]) == (42,)
    assert request.user.pk == viewer.pk
    # As the ORM would have loaded it: its later queries go to the same database.
    assert request.user._state.db == "default" and not request.user._state.adding
    assert request.user.groups.get().name == "Viewer"


def test_an_empty_entry_in_target_sites_does_not_end_the_list():
    env = {"TARGET_SITES": "DATABASE_URL=eu, ,,REDIS_URL=us"}
    assert probe_sites.site_map(env) == {"DATABASE_URL": "eu", "REDIS_URL": "us"}


def test_a_second_equals_sign_is_read_as_part_of_the_site():
    with pytest.raises(probe_sites.SiteConfigError) as refused:
        probe_sites.site_map({"TARGET_SITES": "DATABASE_URL=eu=us"})
    assert str(refused.value).startswith("TARGET_SITES: 'eu=us' is not a site name")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"TARGET_SITES": " DATABASE_URL "},
            "TARGET_SITES: 'DATABASE_URL' is not NAME=site (for example "
            "DATABASE_URL=eu or api.yomira.app=eu).",
        ),
        (
            {"TARGET_SITES": "no/such=eu"},
            "TARGET_SITES: 'no/such' is neither a target variable (DATABASE_URL) nor "
            "a runbook host (api.yomira.app).",
        ),
        (
            {"TARGET_SITES": "DATABASE_URL=eu", "TARGET_SITE_DATABASE_URL": "us"},
            "TARGET_SITE_DATABASE_URL: DATABASE_URL is at site us, but TARGET_SITES "
            "puts it at site eu.",
        ),
        (
            {"TARGET_SITE_A-B": "eu"},
            "TARGET_SITE_A-B: 'A-B' is not a target variable.",
        ),
    ],
)
def test_site_settings_refused_in_full_words(env, message):
    with pytest.raises(probe_sites.SiteConfigError) as refused:
        probe_sites.site_map(env)
    assert str(refused.value) == message


@pytest.mark.parametrize("method", ["HEAD", "OPTIONS"])
def test_reading_methods_are_not_told_nothing_was_saved(store, method):
    token = offline.reader_token(1, "s1")
    response = offline.offline_answer(outage_request("/incidents/", method, token))
    assert response.status_code == 503
    assert "Nothing was saved" not in response.content.decode()


def test_the_list_says_when_the_stored_copy_was_imported(store):
    imported_at = offline.manifest()["imported_at"]  # ISO 8601, as stored
    token = offline.reader_token(1, "s1")
    text = offline.offline_answer(
        outage_request("/incidents/", reader=token)
    ).content.decode()
    shown = f"{imported_at[:10]} {imported_at[11:16]}"
    assert f"as imported at {shown} UTC:" in text


def test_the_outage_answer_is_not_logged_as_an_error_per_request(store, caplog):
    """The outage is logged once when it begins (Outage.begin): Django's request
    logger must not add an error for every 503 answered meanwhile."""
    from django.utils.log import log_response

    request = outage_request("/incidents/")
    response = offline.offline_answer(request)
    with caplog.at_level("WARNING", logger="django.request"):
        log_response("Service Unavailable: %s", request.path, response=response)
    assert not [r for r in caplog.records if r.name == "django.request"]


# --- what the operator reads in the log --------------------------------------------


def inline_log(caplog) -> list[tuple[int, str]]:  # noqa: ANN001
    return [
        (r.levelno, r.getMessage())
        for r in caplog.records
        if r.name == "incidents.services.inline"
    ]


def test_an_inline_run_is_logged_as_a_warning(queued, caplog):
    with caplog.at_level("INFO", logger="incidents.services.inline"):
        assert inline.run_instead(queued.pk, Command.Kind.PROBE) == ""
    assert inline_log(caplog) == [
        (30, f"execution {queued.pk} runs inline: task queue unreachable")
    ]


def test_a_run_no_longer_queued_is_logged_as_such(queued, caplog):
    StepExecution.objects.filter(pk=queued.pk).update(state=StepExecution.State.RUNNING)
    with caplog.at_level("INFO", logger="incidents.services.inline"):
        assert inline.run_instead(queued.pk, Command.Kind.PROBE) == ""
    assert inline_log(caplog) == [
        (20, f"execution {queued.pk} was not queued any more: not run inline")
    ]


def test_an_overrun_is_logged_with_its_limit(queued, settings, monkeypatch, caplog):
    settings.INLINE_PROBE_TIMEOUT = 0.2
    with (
        hanging_probes(monkeypatch),
        caplog.at_level("INFO", logger="incidents.services.inline"),
    ):
        inline.run_instead(queued.pk, Command.Kind.PROBE)
    assert inline_log(caplog)[-1] == (
        30,
        f"inline execution {queued.pk} overran 0.2 s",
    )


def test_an_executor_failure_is_a_result_naming_the_run(queued, monkeypatch, caplog):
    def fails(command, params, ctx):  # noqa: ANN001, ANN202
        raise RuntimeError("boom")

    monkeypatch.setattr(inline.commands, "run", fails)
    with caplog.at_level("INFO", logger="incidents.services.inline"):
        assert inline.run_instead(queued.pk, Command.Kind.PROBE) == ""
    queued.refresh_from_db()
    assert queued.state == StepExecution.State.FAILED
    assert queued.summary == f"{inline.INLINE_MARK} RuntimeError: boom"
    assert inline_log(caplog)[-1] == (
        40,
        f"executor redis failed on inline execution {queued.pk}",
    )
    assert inline.SLOTS.taken == 0


def test_a_probe_answering_within_the_limit_is_waited_for(
    queued, settings, monkeypatch
):
    """The wait is the limit plus a grace, never less: a probe answering well
    inside the limit is its result, not a timeout."""

    def answers_soon(command, params, ctx):  # noqa: ANN001, ANN202
        time.sleep(0.1)
        return Result(True, "answered")

    monkeypatch.setattr(inline.commands, "run", answers_soon)
    settings.INLINE_PROBE_TIMEOUT = 0.4
    assert inline.run_instead(queued.pk, Command.Kind.PROBE) == ""
    queued.refresh_from_db()
    assert queued.state == StepExecution.State.SUCCEEDED
    assert queued.summary == f"{inline.INLINE_MARK} answered"


@pytest.mark.parametrize(
    "payload",
    [
        {"u": 1, "e": "later", "s": "digest"},
        {"u": 1, "e": None, "s": None},
        {"u": 1, "s": "digest"},
        {"u": 1, "e": 2**40, "s": 7},
        ["u", 1],
    ],
)
def test_a_genuine_signature_over_a_malformed_payload_is_refused(payload):
    """Deny by default, never an error: only the shape we issue verifies."""
    if isinstance(payload, dict) and payload.get("s") == "digest":
        payload = {**payload, "s": offline._session_digest("s1")}
    token = signing.dumps(payload, salt=offline.READER_SALT)
    assert offline.verify_reader(outage_request("/", reader=token)) is None


def test_a_reader_cookie_is_refused_from_the_second_it_expires():
    token = offline.reader_token(1, "s1", now=1_000_000)
    expires = signing.loads(token, salt=offline.READER_SALT)["e"]
    request = outage_request("/", reader=token)
    assert offline.verify_reader(request, now=expires - 1)["u"] == 1
    assert offline.verify_reader(request, now=expires) is None


def test_an_empty_site_variable_does_not_end_the_others():
    """TARGET_SITE_* are read in name order: an empty one (no site) before
    another must not leave that other's commands on the default queue."""
    env = {"TARGET_SITE_A_URL": " ", "TARGET_SITE_B_URL": "eu"}
    assert probe_sites.site_map(env) == {"B_URL": "eu"}


# --- the per-process grants cache ---------------------------------------------------


def test_both_permission_caches_are_filled_unless_both_are_there(viewer, yomira):
    """Something may have filled Django's own cache first (ModelBackend's
    _perm_cache): the per-playbook one must still be read."""
    grant(viewer, "run_probes")
    user = type(viewer).objects.get(pk=viewer.pk)
    user._perm_cache = set()
    access.remember_grants(user)
    assert "incidents.view_incident" in user._perm_cache
    playbook = Playbook.objects.current().get(number=4)
    assert access.playbook_perms(user, playbook) == {"run_probes"}


def test_a_reused_primary_key_never_gets_the_other_accounts_grants(make_user):
    """The cache key holds when the account was made: were the counter ever to
    stand where it stood for a deleted account (a restored database), the new
    account with its number still reads its own grants."""
    old = make_user("old", "Commander")
    version = access.grants_version()
    access.remember_grants(type(old).objects.get(pk=old.pk), version)
    pk = old.pk
    old.delete()
    new = type(old).objects.create_user("new", pk=pk)
    new.date_joined = new.date_joined + timedelta(seconds=1)
    new.save()
    fresh = type(old).objects.get(pk=pk)
    access.remember_grants(fresh, version)
    assert fresh._perm_cache == set()
