"""Shared fixtures: the bundled runbook imported, personas for each role (signed in
through real sessions), and an incident to work on."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.test import Client
from playwright.sync_api import Browser, Page, sync_playwright

from incidents.actors import Actor
from incidents.models import Incident, Playbook, Runbook
from incidents.roles import ensure_roles
from incidents.services import import_runbook, open_incident
from probes import redaction

ROOT = Path(__file__).resolve().parent.parent
YOMIRA_RUNBOOK = ROOT / "runbooks" / "yomira.md"
TEST_RUNBOOKS = Path(__file__).resolve().parent / "runbooks"
PASSWORD = "correct-horse-battery"
ROLES = ("Viewer", "Responder", "Commander", "Admin")
# Who imports runbooks in tests: the identity `manage.py import_runbook` acts as.
IMPORTER = Actor.system("manage.py")


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    """PBKDF2 is slow on purpose; tests make dozens of accounts."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_counters():
    """Per-minute counters (webhook rate limits, the audited-denial budget) live
    in the default cache: each test starts from zero, whatever ran before it."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def _fresh_redaction_forms():
    """Encoded forms of the target values are cached per process. A test must
    compute them itself, or it judges the code that filled the cache earlier (and
    mutation testing, which forks a process that already ran the suite, would see
    no mutant of the encoders at all)."""
    redaction._forms.cache_clear()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup):  # noqa: ANN001, ANN201
    """pytest-django's, plus: a click made the process's run wake-up listener
    (incidents/wakeup.py) connect to the test database; it lets go before the
    database is dropped."""
    yield
    from incidents import wakeup

    wakeup.stop_listener()


@pytest.fixture(scope="session")
def yomira_source() -> bytes:
    return YOMIRA_RUNBOOK.read_bytes()


@pytest.fixture
def yomira(db, yomira_source) -> Runbook:
    return import_runbook(
        source=yomira_source, source_name="yomira.md", actor=IMPORTER
    ).runbook


@pytest.fixture
def make_user(db):
    """make_user("rita", "Responder"): a user in that role's group (or none)."""

    def make(username: str, role: str | None = None, **fields):
        user = get_user_model().objects.create_user(
            username, password=PASSWORD, **fields
        )
        if role:
            # Transactional tests flush the tables, data migrations included.
            ensure_roles(Group, Permission)
            user.groups.add(Group.objects.get(name=role))
        return user

    return make


@pytest.fixture
def viewer(make_user):
    return make_user("vera", "Viewer")


@pytest.fixture
def responder(make_user):
    return make_user("rita", "Responder")


@pytest.fixture
def commander(make_user):
    return make_user("cole", "Commander")


@pytest.fixture
def nobody(make_user):
    return make_user("nora")


def grant(who, *perms: str, playbooks=None) -> None:  # noqa: ANN001
    """Per-playbook grants (django-guardian), on every current playbook by default."""
    from guardian.shortcuts import assign_perm

    for playbook in playbooks if playbooks is not None else Playbook.objects.current():
        for perm in perms:
            assign_perm(f"incidents.{perm}", who, playbook)


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def viewer_client(viewer) -> Client:
    return signed_in(viewer)


@pytest.fixture
def responder_client(responder) -> Client:
    return signed_in(responder)


@pytest.fixture
def commander_client(commander) -> Client:
    return signed_in(commander)


@pytest.fixture
def nobody_client(nobody) -> Client:
    return signed_in(nobody)


@pytest.fixture
def incident(yomira, commander) -> Incident:
    playbook = Playbook.objects.current().get(number=4)  # Redis Down / Unreachable
    return open_incident(
        playbook=playbook,
        title="Redis is refusing connections",
        actor=Actor.person(commander),
    )


# --- browsers: Playwright (Python) driving Debian's Chromium ----------------------------
# Never `playwright install`: the browser comes from `apt-get install chromium`.

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
# Without the background-networking flags Chromium keeps dialling Google's hosts,
# which this closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser() -> Browser:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: apt-get install -y chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Page:
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    if getattr(request.node, "rep_call", None) and request.node.rep_call.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(
            path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True
        )
    context.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):  # noqa: ANN001, ANN201
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@contextmanager
def hanging_probes(monkeypatch) -> Iterator[list[threading.Thread]]:  # noqa: ANN001
    """Every probe run inline hangs, as a driver blocking past its timeout would,
    until the block ends; yields the threads that ran them (released and joined on
    the way out, so a test can check what holds after they end)."""
    from incidents.services import inline
    from probes.runtime import Result

    released = threading.Event()
    threads: list[threading.Thread] = []

    def hangs(command, params, ctx):  # noqa: ANN001, ANN202
        threads.append(threading.current_thread())
        released.wait(30)
        return Result(True, "a late answer, to be dropped")

    monkeypatch.setattr(inline.commands, "run", hangs)
    try:
        yield threads
    finally:
        released.set()
        for thread in threads:
            thread.join(5)
