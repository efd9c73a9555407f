"""The console's own database goes down (issue 14, runbook §3): the playbooks stay
readable, to people who signed in, from the pages stored at import time.

A real fault: a private PostgreSQL (the embedded server `make run` uses) that this
test stops and starts, the console served by gunicorn in a subprocess against it,
the runbook imported by `manage.py import_runbook` (whose commit stores the pages).
Nothing here touches the suite's own database."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from django.core import signing

from tests.conftest import ROOT
from tests.http_client import post, sign_in
from yomira_console import embedded, offline

PASSWORD = "correct-horse-battery"
PG_SLUG = "postgresql-down-unreachable"
BANNER = "database is unreachable:</strong> this is the runbook as imported at"
# §3's own commands, as their copy buttons carry them.
PG_COMMANDS = (
    'data-copy="docker compose logs postgres"',
    'data-copy="docker compose restart postgres"',
)
CREATE_USERS = """
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from incidents.roles import ensure_roles
ensure_roles(Group, Permission)
vera = get_user_model().objects.create_user("vera", password="{password}")
vera.groups.add(Group.objects.get(name="Viewer"))
"""


@dataclass
class Console:
    base: str
    data_dir: Path
    env: dict[str, str]
    log: Path

    def stop_database(self) -> None:
        assert embedded.stop_postgres(self.data_dir), "the database was not running"

    def start_database(self) -> None:
        embedded.postgres_url(self.data_dir)

    def logs(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def wait_for(check, seconds: float = 60) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def console() -> Iterator[Console]:
    folder = Path(tempfile.mkdtemp(prefix="yomira-dbdown-"))
    # The server runs as an unprivileged user when we are root.
    folder.chmod(0o755)
    data_dir = folder / "pg"
    url = embedded.postgres_url(data_dir)
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "VAR_DIR": str(folder / "var"),
        "OFFLINE_PAGES_DIR": str(folder / "offline"),
        "CELERY_BROKER_URL": "filesystem://",
        "BROKER_DIR": str(folder / "broker"),
        "DATABASE_CONNECT_TIMEOUT": "2",
    }
    log = folder / "gunicorn.log"
    process = None
    try:
        manage(env, "migrate", "--no-input", "-v0")
        manage(env, "shell", "-c", CREATE_USERS.format(password=PASSWORD))
        manage(env, "import_runbook", str(ROOT / "runbooks" / "yomira.md"))
        # The import's commit stored the pages...
        store = folder / "offline"
        assert offline.manifest(store)["playbooks"], "the import stored no pages"
        # ...and a web process finds a stale store and renders it again.
        (store / "current" / "manifest.json").write_text("stale")
        with open(log, "w") as out:
            process = subprocess.Popen(
                [
                    str(Path(sys.executable).with_name("gunicorn")),
                    "yomira_console.wsgi:application",
                    "--bind",
                    "127.0.0.1:0",
                    "--workers",
                    "1",
                    "--threads",
                    "4",
                    "--timeout",
                    "60",
                    # Its default control socket is one path for every gunicorn.
                    "--no-control-socket",
                ],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        found: list[str] = []

        def listening() -> bool:
            found[:] = re.findall(r"Listening at: (http://\S+)", log.read_text())
            return bool(found)

        if not wait_for(listening):
            pytest.fail(f"gunicorn did not start:\n{log.read_text()[-3000:]}")
        base = found[0]
        assert wait_for(lambda: httpx.get(f"{base}/health/live").status_code == 200)
        assert wait_for(lambda: offline.manifest(store) is not None), log.read_text()
        yield Console(base=base, data_dir=data_dir, env=env, log=log)
    finally:
        if process is not None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(30)
        embedded.stop_postgres(data_dir)
        shutil.rmtree(folder, ignore_errors=True)


def page_is_live(client: httpx.Client, url: str) -> bool:
    reply = client.get(url)
    return reply.status_code == 200 and BANNER not in reply.text


def test_the_runbook_stays_readable_while_the_database_is_down(console):
    vera = sign_in(console.base, "vera", PASSWORD)
    assert vera.cookies.get("yomira_reader"), "signing in issues the reader cookie"
    normal = vera.get(f"/playbooks/{PG_SLUG}/")
    assert normal.status_code == 200 and BANNER not in normal.text
    library = vera.get("/playbooks/").text
    anonymous = httpx.Client(base_url=console.base, timeout=10)

    console.stop_database()
    try:
        # The responder working §3 reads §3: its steps and commands, with copy
        # buttons, under the banner.
        reply = vera.get(f"/playbooks/{PG_SLUG}/")
        assert reply.status_code == 200, (reply.status_code, console.logs())
        assert BANNER in reply.text
        assert "PostgreSQL Down / Unreachable" in reply.text
        for command in PG_COMMANDS:
            assert command in reply.text
        assert "<form" not in reply.text
        assert reply.headers["Cache-Control"] == "no-store, private"
        # Its cross-reference (§9) and the library are there too.
        assert vera.get("/playbooks/disk-space-critical/").status_code == 200
        listing = vera.get("/playbooks/")
        assert listing.status_code == 200 and BANNER in listing.text
        assert f'href="/playbooks/{PG_SLUG}/"' in listing.text
        assert "Search is unavailable" in listing.text
        # A playbook that does not exist is not invented.
        missing = vera.get("/playbooks/no-such-playbook/")
        assert missing.status_code == 503 and "docker compose" not in missing.text

        # Pages that need the database say so, and point at what can be read.
        other = vera.get("/incidents/")
        assert other.status_code == 503
        assert "database is unreachable" in other.text
        assert f'href="/playbooks/{PG_SLUG}/"' in other.text

        # A change is refused in words, never with a 500.
        refused = post(
            vera,
            "/incidents/new/",
            {"playbook": PG_SLUG, "title": "db"},
        )
        assert refused.status_code == 503, refused.text[:500]
        assert "Nothing was saved and nothing was run." in refused.text
        # Also when it fails before any view (the CSRF refusal is audited).
        no_token = vera.post("/incidents/new/", data={"title": "db"})
        assert no_token.status_code == 503
        assert "Nothing was saved" in no_token.text

        # Nobody else reads the runbook: no cookie, a forged one, an expired one,
        # one issued with another session.
        for client in (anonymous, *forged_clients(console, vera)):
            for url in (
                "/playbooks/",
                f"/playbooks/{PG_SLUG}/",
                "/",
                "/accounts/login/",
            ):
                reply = client.get(url)
                assert reply.status_code == 503, (url, reply.status_code)
                assert "database is unreachable" in reply.text
                assert "PostgreSQL Down" not in reply.text
                assert "docker compose" not in reply.text

        # Static files still load (whitenoise needs no database).
        assert vera.get("/static/js/console.js").status_code == 200
        # Health: alive, not ready, and the database named.
        assert vera.get("/health/live").status_code == 200
        ready = httpx.get(f"{console.base}/health/ready", timeout=30)
        assert ready.status_code == 503
        assert "database" in ready.text
        assert "Traceback" not in console.log.read_text(errors="replace")
    finally:
        console.start_database()

    # Back: normal pages, the same session (nothing lost, nobody signed out).
    assert wait_for(lambda: page_is_live(vera, f"/playbooks/{PG_SLUG}/")), (
        console.logs()
    )
    again = vera.get("/playbooks/")
    assert again.status_code == 200 and BANNER not in again.text
    assert again.text.count("<tr>") == library.count("<tr>")
    assert vera.get("/incidents/").status_code == 200
    assert wait_for(
        lambda: httpx.get(f"{console.base}/health/ready").json()["database"] == "ok"
    )


def forged_clients(console: Console, vera: httpx.Client) -> list[httpx.Client]:
    session = vera.cookies["sessionid"]
    secret = console.env["SECRET_KEY"]
    in_a_day = int(time.time()) + 86400
    forged = signing.dumps(
        {"u": 1, "e": in_a_day, "s": offline._session_digest(session)},
        key="someone-elses-key",
        salt=offline.READER_SALT,
    )
    expired = signing.dumps(
        {"u": 1, "e": int(time.time()) - 1, "s": offline._session_digest(session)},
        key=secret,
        salt=offline.READER_SALT,
    )
    clients = []
    for reader, session_cookie in (
        (forged, session),
        (expired, session),
        # Vera's genuine cookie, with someone else's session cookie.
        (vera.cookies["yomira_reader"], "another-session"),
    ):
        client = httpx.Client(base_url=console.base, timeout=10)
        client.cookies.set("yomira_reader", reader)
        client.cookies.set("sessionid", session_cookie)
        clients.append(client)
    return clients
