"""The runbook stays readable when the console's database is down (issue 14).

Three parts:

- The store: every current playbook's page (incidents.views.offline renders them)
  kept as static HTML in OFFLINE_PAGES_DIR, refreshed when a runbook is imported
  (the `runbook.imported` audit event, after commit) and on web start-up when its
  key (runbook revisions, bindings, templates) no longer matches. A refresh writes a
  new generation directory and swaps the `current` symlink, so a reader never sees
  half of one render and half of another.
- The reader cookie: the session lives in the database, so without it nobody can
  be recognised. A signed, HttpOnly cookie (user id, expiry and a digest of the
  session key; nothing secret) is issued on ordinary pages to people who may view
  playbooks, and deleted when the person is signed out. Offline pages go only to a
  request whose cookie verifies against SECRET_KEY and whose session cookie is the
  one it was issued with: deny by default.
- OfflineMiddleware: when a request fails because the database cannot be reached
  (not for any other database error), it answers instead of a 500: the stored page
  for /playbooks/ and /playbooks/<slug>/ to a reader, a 503 page for the rest.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import secrets
import shutil
import sys
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.core import signing
from django.core.signals import got_request_exception
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.urls import Resolver404, resolve
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.functional import empty

log = logging.getLogger(__name__)

CURRENT = "current"
MANIFEST = "manifest.json"
INDEX = "index.html"
SLUG = re.compile(r"^[-a-zA-Z0-9_]+$")
# A generation another process is still writing is younger than this: never
# removed by a refresh that ends first.
KEEP_YOUNG_GENERATIONS = 300  # seconds
READER_SALT = "yomira_console.offline.reader"
SESSION_SALT = "yomira_console.offline.session"
REISSUE_AFTER = 3600  # seconds: the cookie is re-issued when older
# The SQLSTATE classes that mean "the server is not there for us": connection
# exceptions (08), and admin/crash shutdown or "cannot connect now" (57P01-03).
UNREACHABLE_STATES = ("08", "57P01", "57P02", "57P03")


# --- the store -------------------------------------------------------------------


def pages_dir() -> Path | None:
    """OFFLINE_PAGES_DIR, or None when the store is switched off (empty)."""
    value = getattr(settings, "OFFLINE_PAGES_DIR", "")
    return Path(value) if value else None


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


@contextmanager
def _locked(root: Path):  # noqa: ANN202
    """One refresh at a time per store (web workers start together)."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def manifest(root: Path | None = None) -> dict | None:
    """The current generation's manifest, or None when there is no usable store."""
    root = root or pages_dir()
    if root is None:
        return None
    try:
        return json.loads((root / CURRENT / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def read_page(name: str, root: Path | None = None) -> str | None:
    """A stored page: INDEX, or a playbook's slug. None when not stored."""
    root = root or pages_dir()
    if root is None:
        return None
    if name == INDEX:
        path = root / CURRENT / INDEX
    elif SLUG.match(name):
        path = root / CURRENT / "playbooks" / f"{name}.html"
    else:
        return None
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return None


def write_store(root: Path, key: str, pages: dict[str, str], meta: dict) -> Path:
    """Write a complete generation, then point `current` at it in one rename."""
    generation = root / f"gen-{time.time_ns()}-{secrets.token_hex(3)}"
    generation.mkdir(parents=True)
    for name, html in pages.items():
        _write_atomically(generation / name, html)
    _write_atomically(generation / MANIFEST, json.dumps({**meta, "key": key}))
    link = root / f".{CURRENT}.{secrets.token_hex(4)}"
    os.symlink(generation.name, link)
    os.replace(link, root / CURRENT)
    _remove_old_generations(root)
    return generation


def _remove_old_generations(root: Path) -> None:
    try:
        current = os.readlink(root / CURRENT)
    except OSError:
        return
    now = time.time()
    for path in root.glob("gen-*"):
        if path.name == current:
            continue
        try:
            if now - path.stat().st_mtime > KEEP_YOUNG_GENERATIONS:
                shutil.rmtree(path, ignore_errors=True)
        except OSError:
            continue


def is_stale(key: str, root: Path | None = None) -> bool:
    stored = manifest(root)
    return stored is None or stored.get("key") != key


def refresh(*, force: bool = False) -> bool:
    """Render the store again if its key changed (or `force`). Needs the database.
    Whether it wrote a new generation."""
    root = pages_dir()
    if root is None:
        return False
    from incidents.views.offline import render_store, store_key

    with _locked(root):
        if not force and not is_stale(store_key(), root):
            return False
        rendered = render_store()
        write_store(root, rendered.key, rendered.pages, rendered.manifest)
    log.info("offline pages: %d playbook pages stored", len(rendered.pages) - 1)
    return True


def refresh_in_background() -> threading.Thread | None:
    """Web start-up: bring the store up to date without delaying the server, and
    without failing it when the database is down (the old store then stays)."""
    if pages_dir() is None:
        return None

    def run() -> None:
        from django.db import connections

        try:
            refresh()
        except Exception as exc:  # noqa: BLE001 - a start-up must not die on this
            if database_unreachable(exc):
                Outage.begin(exc)
            else:
                log.warning("offline pages: not refreshed at start-up", exc_info=True)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, name="offline-pages", daemon=True)
    thread.start()
    return thread


def on_audit_event(sender, event, **kwargs) -> None:  # noqa: ANN001
    """A runbook was imported (and committed): store its pages now, while the
    database is surely up. A failure is logged by events.publish, and the import
    stands."""
    if event.verb == "runbook.imported":
        refresh()


# --- the reader cookie -----------------------------------------------------------


def _reader_hours() -> float:
    return float(getattr(settings, "OFFLINE_READER_HOURS", 12))


def _cookie_name() -> str:
    return getattr(settings, "OFFLINE_READER_COOKIE", "yomira_reader")


def _session_digest(session_key: str) -> str:
    return salted_hmac(SESSION_SALT, session_key).hexdigest()[:32]


def reader_token(user_id: int, session_key: str, now: float | None = None) -> str:
    expires = int((now or time.time()) + _reader_hours() * 3600)
    return signing.dumps(
        {"u": user_id, "e": expires, "s": _session_digest(session_key)},
        salt=READER_SALT,
    )


def verify_reader(request: HttpRequest, now: float | None = None) -> dict | None:
    """The reader cookie's content when it is genuine, unexpired and issued with
    this request's session cookie; None otherwise. No database."""
    value = request.COOKIES.get(_cookie_name())
    session_key = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
    if not value or not session_key:
        return None
    try:
        data = signing.loads(value, salt=READER_SALT)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict):
        return None
    expires, digest = data.get("e"), data.get("s")
    if not isinstance(expires, int) or not isinstance(digest, str):
        return None
    if expires <= (now or time.time()):
        return None
    if not constant_time_compare(digest, _session_digest(session_key)):
        return None
    return data


def _resolved_user(request: HttpRequest):  # noqa: ANN202
    """request.user if something already loaded it; never loads it (that would
    cost a query on pages that need none, /health/live included)."""
    user = getattr(request, "user", None)
    if user is None:
        return None
    wrapped = getattr(user, "_wrapped", user)
    return None if wrapped is empty else wrapped


def keep_reader_cookie(request: HttpRequest, response: HttpResponse) -> None:
    """Issue the cookie to a signed-in person who may view playbooks (again when
    older than an hour, or issued with another session); delete it for anyone
    else whose identity this request established (signed out, expired, no longer
    allowed)."""
    user = _resolved_user(request)
    if user is None:
        return
    name = _cookie_name()
    if not user.is_authenticated:
        if name in request.COOKIES:
            response.delete_cookie(name, samesite="Lax")
        return
    from incidents import access  # the project may import the apps

    # Asked on every page view, a fresh cookie or not, and on refusals too (the
    # answer is kept in memory under the grants counter): a right taken back
    # takes the cookie with it at the person's next page.
    session = getattr(request, "session", None)
    session_key = session.session_key if session is not None else None
    if not session_key or not access.can(user, access.VIEW_PLAYBOOKS):
        if name in request.COOKIES:
            response.delete_cookie(name, samesite="Lax")
        return
    current = verify_reader(request)
    fresh = (
        current is not None
        and current.get("u") == user.pk
        and current["e"] - _reader_hours() * 3600 > time.time() - REISSUE_AFTER
    )
    if fresh or response.status_code >= 400:
        return
    response.set_cookie(
        name,
        reader_token(user.pk, session_key),
        max_age=int(_reader_hours() * 3600),
        httponly=True,
        samesite="Lax",
        secure=request.is_secure() or settings.SESSION_COOKIE_SECURE,
    )


# --- the middleware --------------------------------------------------------------


def database_unreachable(exc: BaseException | None) -> bool:
    """Whether an exception says the database cannot be reached (refused, timed
    out, shut down, connection lost) rather than refused one query (a timeout, a
    deadlock, a constraint): only the first is served from the store."""
    if isinstance(exc, InterfaceError):
        return True  # "connection already closed"
    if not isinstance(exc, OperationalError):
        return False
    state = getattr(exc.__cause__, "sqlstate", None)
    # libpq's connection failures carry no SQLSTATE at all.
    return state is None or state.startswith(UNREACHABLE_STATES)


def _mark_unreachable(sender, request=None, **kwargs) -> None:  # noqa: ANN001
    """For a failure raised outside the view (another middleware's database
    access): Django turns it into a 500, which OfflineMiddleware then replaces."""
    error = sys.exc_info()[1]
    if request is not None and database_unreachable(error):
        request.database_unreachable = error


got_request_exception.connect(_mark_unreachable, dispatch_uid="offline-pages")


def offline_answer(request: HttpRequest) -> HttpResponse:
    """What a request gets while the database is down. Reads files and the
    request's cookies only."""
    reader = verify_reader(request) is not None
    page = None
    if reader and request.method in ("GET", "HEAD"):
        try:
            match = resolve(request.path_info)
        except Resolver404:
            match = None
        if match is not None and match.view_name == "incidents:playbook_list":
            page = read_page(INDEX)
        elif match is not None and match.view_name == "incidents:playbook_detail":
            page = read_page(str(match.kwargs.get("slug", "")))
    if page is not None:
        response = HttpResponse(page)
    elif request.path_info.startswith("/api/"):
        # A script gets the API's own error shape (api/errors.py), not a page.
        response = JsonResponse(
            {
                "error": {
                    "status": 503,
                    "code": "unavailable",
                    "message": "The console's database is unreachable: nothing was "
                    "read, saved or run. Try again shortly.",
                    "fields": {},
                }
            },
            status=503,
        )
        response["Retry-After"] = "30"
    else:
        stored = manifest() if reader else None
        imported_at = (stored or {}).get("imported_at") or ""
        response = HttpResponse(
            render_to_string(
                "offline/unavailable.html",
                {
                    "reader": reader,
                    "playbooks": (stored or {}).get("playbooks", []),
                    "imported_at": imported_at[:16].replace("T", " "),
                    "method_writes": request.method not in ("GET", "HEAD", "OPTIONS"),
                },
            ),
            status=503,
        )
        response["Retry-After"] = "30"
    # Never cached: a shared cache must not hand a reader's page to anyone else.
    response["Cache-Control"] = "no-store, private"
    response["X-Console-Database"] = "unreachable"
    # The outage is logged once, when it begins (Outage.begin), not as an error
    # per request (Django logs every 5xx unless told it was logged).
    response._has_been_logged = True
    return response


class Outage:
    """This process's knowledge that the database is down: set by a request that
    failed to reach it (or by the start-up refresh), cleared by the first request
    that reaches it again. While set, each request tries to connect before its
    view runs, so that pages which need no query (the sign-in form, a redirect to
    it) also say the database is down; while unset it costs nothing."""

    since: float | None = None

    @classmethod
    def begin(cls, reason: BaseException | str) -> None:
        if cls.since is None:
            cls.since = time.time()
            first_line = str(reason).splitlines()[0] if str(reason) else ""
            log.warning(
                "database unreachable: serving the offline playbook pages (%s)",
                first_line or type(reason).__name__,
            )

    @classmethod
    def still_down(cls) -> bool:
        from django.db import connection

        try:
            # A thread's persistent connection may predate the outage: ask it.
            if connection.connection is not None and not connection.is_usable():
                connection.close()
            connection.ensure_connection()
        except Exception as exc:  # noqa: BLE001 - any other failure: the view's
            if database_unreachable(exc):
                return True
        cls.since = None
        log.warning("database reachable again: normal service")
        return False


class OfflineMiddleware:
    """Placed early (after whitenoise, before sessions): the answer it gives
    replaces the whole inner response, so nothing an inner middleware did on the
    failed request (a session cookie deleted for a session it could not read)
    reaches the browser. /health/ is never answered here: it reports the outage
    itself."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        checked = not request.path_info.startswith("/health/")
        if checked and Outage.since is not None and Outage.still_down():
            return offline_answer(request)
        response = self.get_response(request)
        failure = getattr(request, "database_unreachable", None)
        if failure is not None:
            if checked:
                Outage.begin(failure)
            return offline_answer(request)
        # Page views keep the cookie fresh; an HTMX fragment (the checklist's
        # 2-second poll above all) is always part of a page that did.
        if "HX-Request" not in request.headers:
            keep_reader_cookie(request, response)
        return response

    def process_exception(
        self, request: HttpRequest, exception: Exception
    ) -> HttpResponse | None:
        if not database_unreachable(exception):
            return None
        request.database_unreachable = exception
        # A placeholder the inner middlewares see; __call__ answers afresh.
        return HttpResponse(status=503)
