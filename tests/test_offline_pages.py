"""The offline store (issue 14): playbook pages kept on disk for a database outage,
written atomically, re-rendered when stale, escaped; the reader cookie that lets
them be served without a session; which database errors count as "unreachable".
The outage itself, with a real PostgreSQL stopped, is tests/integration/
test_database_down.py."""

from __future__ import annotations

import os
import time
from pathlib import Path

import psycopg
import pytest
from django.core import signing
from django.db import IntegrityError, InterfaceError, OperationalError
from django.test import Client, RequestFactory

from incidents.models import Playbook
from incidents.services import import_runbook
from incidents.views.offline import render_store, store_key
from yomira_console import offline

from .conftest import IMPORTER, PASSWORD

PG_SLUG = "postgresql-down-unreachable"
HOSTILE = """# Hostile runbook <b>bold</b>

## 1. <script>alert("title")</script> Down

**Alert:** `X<img src=x onerror=alert(1)>`
**Severity:** Critical → PagerDuty

### Steps

1. **Look <script>alert("step")</script>:**
   ```bash
   curl -s "https://api.yomira.app/health?<script>=1"
   ```
"""


@pytest.fixture
def store(settings, tmp_path) -> Path:
    settings.OFFLINE_PAGES_DIR = str(tmp_path / "offline")
    return tmp_path / "offline"


def test_it_stores_every_current_playbook_and_the_library(store, yomira):
    assert offline.refresh() is True
    slugs = set(Playbook.objects.current().values_list("slug", flat=True))
    stored = {p.stem for p in (store / "current" / "playbooks").iterdir()}
    assert stored == slugs
    assert {p["slug"] for p in offline.manifest()["playbooks"]} == slugs
    index = offline.read_page(offline.INDEX)
    assert "PostgreSQL Down / Unreachable" in index
    assert f'href="/playbooks/{PG_SLUG}/"' in index


def test_a_stored_page_holds_the_commands_and_the_banner_and_nothing_personal(
    store, yomira
):
    offline.refresh()
    page = offline.read_page(PG_SLUG)
    assert "The console's database is unreachable:</strong> this is the runbook" in page
    assert "Running, ticking and notes are unavailable." in page
    imported = yomira.imported_at.strftime("%Y-%m-%d %H:%M")
    assert "as imported at <time datetime=" in page and imported in page
    # Commands with their copy buttons, for pasting into a terminal.
    assert 'data-copy="docker compose logs postgres"' in page
    assert 'data-copy="docker compose restart postgres"' in page
    assert "js/console.js" in page
    # Nothing that needs the database or a person.
    for absent in ("<form", "csrf", "hx-", "Log out", "request_key"):
        assert absent not in page


def test_the_store_is_swapped_whole_and_old_generations_go(store, yomira):
    offline.refresh(force=True)
    first = os.readlink(store / "current")
    # Another process's generation that is old enough to be abandoned.
    for generation in store.glob("gen-*"):
        old = time.time() - offline.KEEP_YOUNG_GENERATIONS - 10
        os.utime(generation, (old, old))
    offline.refresh(force=True)
    second = os.readlink(store / "current")
    assert second != first
    assert [p.name for p in store.glob("gen-*")] == [second]
    # Every file was renamed into place: no temporary file is left behind.
    leftovers = [p for p in store.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []
    assert not list(store.glob(".current.*"))


def test_a_young_generation_of_another_process_is_left_alone(store, yomira):
    offline.refresh(force=True)
    writing = store / "gen-0-other"
    writing.mkdir()
    offline.refresh(force=True)
    assert writing.exists()


def test_a_fresh_store_is_not_rendered_again_and_a_change_makes_it_stale(
    store, yomira, yomira_source
):
    assert offline.refresh() is True
    assert offline.is_stale(store_key()) is False
    assert offline.refresh() is False
    # An admin rebinds a command: the page shows the binding.
    Playbook.objects.filter(slug=PG_SLUG).update(binding_version=7)
    assert offline.is_stale(store_key()) is True
    assert offline.refresh() is True
    # A new revision of the runbook.
    import_runbook(
        source=yomira_source + b"\n<!-- edited -->\n",
        source_name="yomira.md",
        actor=IMPORTER,
    )
    assert offline.is_stale(store_key()) is True


def test_a_missing_or_broken_store_is_stale(store, yomira):
    assert offline.is_stale(store_key()) is True
    offline.refresh()
    (store / "current" / "manifest.json").write_text("{not json")
    assert offline.is_stale(store_key()) is True
    assert offline.refresh() is True


def test_an_import_stores_the_pages_once_it_commits(
    store, db, yomira_source, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        import_runbook(source=yomira_source, source_name="yomira.md", actor=IMPORTER)
    assert PG_SLUG in offline.read_page(offline.INDEX)
    assert offline.is_stale(store_key()) is False


def test_the_store_can_be_switched_off(settings, yomira):
    settings.OFFLINE_PAGES_DIR = ""
    assert offline.refresh() is False
    assert offline.read_page(offline.INDEX) is None
    assert offline.refresh_in_background() is None


def test_runbook_text_is_escaped(store, db):
    import_runbook(source=HOSTILE, source_name="hostile.md", actor=IMPORTER)
    rendered = render_store()
    assert len(rendered.pages) == 2, "the library and the hostile playbook"
    for html in rendered.pages.values():
        assert "<script>alert" not in html
        assert "<img src=x" not in html
        assert "<b>bold</b>" not in html
    detail = next(h for n, h in rendered.pages.items() if n.startswith("playbooks/"))
    assert "&lt;script&gt;alert(&quot;title&quot;)&lt;/script&gt;" in detail


def test_a_slug_that_is_not_a_slug_reads_nothing(store, yomira):
    offline.refresh()
    assert offline.read_page("../manifest") is None
    assert offline.read_page("../../etc/passwd") is None
    assert offline.read_page(PG_SLUG) is not None


# --- the reader cookie -------------------------------------------------------------


def request_with(reader: str | None, session: str | None):  # noqa: ANN201
    request = RequestFactory().get("/playbooks/")
    if reader is not None:
        request.COOKIES["yomira_reader"] = reader
    if session is not None:
        request.COOKIES["sessionid"] = session
    return request


def test_a_reader_token_verifies_with_its_own_session_only():
    token = offline.reader_token(42, "session-a")
    assert offline.verify_reader(request_with(token, "session-a"))["u"] == 42
    assert offline.verify_reader(request_with(token, "session-b")) is None
    assert offline.verify_reader(request_with(token, None)) is None
    assert offline.verify_reader(request_with(None, "session-a")) is None


def test_an_expired_reader_token_is_refused(settings):
    settings.OFFLINE_READER_HOURS = 1
    token = offline.reader_token(42, "s", now=time.time() - 3601)
    assert offline.verify_reader(request_with(token, "s")) is None
    # Its signature is genuine: only the expiry refuses it.
    assert signing.loads(token, salt=offline.READER_SALT)["u"] == 42


def test_a_forged_or_tampered_reader_token_is_refused(settings):
    digest = offline._session_digest("s")
    forged = signing.dumps(
        {"u": 1, "e": int(time.time()) + 3600, "s": digest},
        key="not-the-secret-key",
        salt=offline.READER_SALT,
    )
    assert offline.verify_reader(request_with(forged, "s")) is None
    other_salt = signing.dumps({"u": 1, "e": int(time.time()) + 3600, "s": digest})
    assert offline.verify_reader(request_with(other_salt, "s")) is None
    genuine = offline.reader_token(1, "s")
    tampered = genuine[:5] + ("A" if genuine[5] != "A" else "B") + genuine[6:]
    assert offline.verify_reader(request_with(tampered, "s")) is None
    assert offline.verify_reader(request_with("garbage", "s")) is None


def test_signing_in_issues_the_reader_cookie_and_signing_out_deletes_it(
    yomira, make_user
):
    make_user("vera", "Viewer")
    client = Client()
    client.post("/accounts/login/", {"username": "vera", "password": PASSWORD})
    cookie = client.cookies["yomira_reader"]
    assert cookie.value and cookie["httponly"] and cookie["samesite"] == "Lax"
    request = request_with(cookie.value, client.cookies["sessionid"].value)
    assert offline.verify_reader(request) is not None
    # A page view with a fresh cookie does not issue another.
    response = client.get("/playbooks/")
    assert response.status_code == 200
    assert "yomira_reader" not in response.cookies
    response = client.post("/accounts/logout/")
    assert response.cookies["yomira_reader"]["max-age"] == 0


def test_an_old_reader_cookie_is_issued_again(yomira, make_user, settings):
    user = make_user("vera", "Viewer")
    client = Client()
    client.force_login(user)
    session = client.cookies["sessionid"].value
    hours = settings.OFFLINE_READER_HOURS
    old = offline.reader_token(user.pk, session, now=time.time() - 2 * 3600)
    assert hours > 2
    client.cookies["yomira_reader"] = old
    response = client.get("/playbooks/")
    assert response.cookies["yomira_reader"].value != old


def test_an_htmx_fragment_leaves_the_reader_cookie_to_the_page(
    yomira, make_user, settings
):
    """The checklist's 2-second poll costs no cookie work; the page view does it."""
    user = make_user("vera", "Viewer")
    client = Client()
    client.force_login(user)
    session = client.cookies["sessionid"].value
    old = offline.reader_token(user.pk, session, now=time.time() - 2 * 3600)
    client.cookies["yomira_reader"] = old
    fragment = client.get("/playbooks/", HTTP_HX_REQUEST="true")
    assert fragment.status_code == 200
    assert "yomira_reader" not in fragment.cookies
    page = client.get("/playbooks/")
    assert page.cookies["yomira_reader"].value != old


@pytest.mark.parametrize("path", ["/", "/playbooks/"])
def test_a_right_taken_back_takes_a_fresh_reader_cookie_with_it(
    yomira, make_user, path
):
    """Found by mutation testing: a cookie under an hour old was never asked
    about again, and a refused page never deleted it."""
    user = make_user("vera", "Viewer")
    client = Client()
    client.force_login(user)
    client.get("/playbooks/")
    fresh = client.cookies["yomira_reader"].value
    assert fresh
    user.groups.clear()
    response = client.get(path)
    assert response.cookies["yomira_reader"]["max-age"] == 0
    assert response.cookies["yomira_reader"].value == ""


def test_nobody_without_the_playbook_permission_gets_a_reader_cookie(make_user):
    user = make_user("nobody")
    client = Client()
    client.force_login(user)
    client.get("/")
    assert "yomira_reader" not in client.cookies


def test_the_health_check_neither_issues_nor_loads_a_user(yomira, make_user):
    client = Client()
    client.force_login(make_user("vera", "Viewer"))
    response = client.get("/health/live")
    assert "yomira_reader" not in response.cookies


# --- what counts as "unreachable" --------------------------------------------------


def wrapped(cause: Exception) -> OperationalError:
    error = OperationalError(str(cause))
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(
    ("error", "unreachable"),
    [
        (wrapped(psycopg.OperationalError("connection refused")), True),
        (wrapped(psycopg.errors.AdminShutdown("terminating connection")), True),
        (wrapped(psycopg.errors.CannotConnectNow("the system is starting up")), True),
        (wrapped(psycopg.errors.ConnectionFailure("lost")), True),
        (InterfaceError("connection already closed"), True),
        # The database answered: these are a query's problems, not an outage.
        (wrapped(psycopg.errors.QueryCanceled("statement timeout")), False),
        (wrapped(psycopg.errors.DeadlockDetected("deadlock")), False),
        (wrapped(psycopg.errors.LockNotAvailable("lock timeout")), False),
        (IntegrityError("duplicate key"), False),
        (ValueError("not a database error"), False),
    ],
)
def test_only_an_unreachable_database_counts(error, unreachable):
    assert offline.database_unreachable(error) is unreachable


def test_another_database_error_is_left_to_django():
    """A query's own failure (a timeout) is an ordinary 500, not "the database is
    down": the middleware does not answer for it."""
    request = RequestFactory().get("/playbooks/")
    middleware = offline.OfflineMiddleware(lambda r: None)
    timeout = wrapped(psycopg.errors.QueryCanceled("statement timeout"))
    assert middleware.process_exception(request, timeout) is None
    assert not hasattr(request, "database_unreachable")
    refused = wrapped(psycopg.OperationalError("connection refused"))
    assert middleware.process_exception(request, refused) is not None
    assert request.database_unreachable is refused


def test_the_command_renders_the_store_and_says_where(store, yomira):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("render_offline_pages", stdout=out)
    assert f"Stored 12 playbook pages in {store}" in out.getvalue()
    out = StringIO()
    call_command("render_offline_pages", stdout=out)
    assert "Already up to date" in out.getvalue()


def test_the_command_refuses_when_the_store_is_off(settings):
    from django.core.management import CommandError, call_command

    settings.OFFLINE_PAGES_DIR = ""
    with pytest.raises(CommandError, match="OFFLINE_PAGES_DIR is empty"):
        call_command("render_offline_pages")
