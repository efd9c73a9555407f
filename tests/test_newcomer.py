"""A newcomer's first five minutes, in the configuration `make run` produces: no
DATABASE_URL (so the embedded PostgreSQL in VAR_DIR), kombu's filesystem broker,
DEBUG on, the bundled runbook and the demo accounts, the console and its worker
served by `runconsole`. Every demo account signs in over real HTTP and uses its
pages; the commander runs a probe through the worker.

The rest of the suite runs on the test PostgreSQL with production settings; this
test is what catches a setting only the default install has (it once served a 500
to every account but the admin)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from tests import http_client
from tests.conftest import ROOT
from tests.http_client import form_fields, post, run_form_action
from tests.integration.targets import free_port
from yomira_console import embedded

PASSWORD = "newcomer-demo-password"
ACCOUNTS = ("admin", "commander", "responder", "viewer")
PAGES = ("/", "/playbooks/", "/incidents/", "/targets/", "/approvals/")


def make_run_env(workdir: Path) -> dict[str, str]:
    """What `make run` gives manage.py: its .env values and no service URLs."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_URL", "REDIS_URL", "CELERY_", "TARGET_"))
    }
    env.update(
        DEBUG="true",
        SECRET_KEY="newcomer-secret",
        AUDIT_HMAC_KEY="newcomer-audit-key",
        DEMO_PASSWORD=PASSWORD,
        # The default database, broker and simulated Yomira stack (SANDBOX, as
        # make run's .env says), in a scratch folder instead of var/.
        VAR_DIR=str(workdir / "var"),
        SANDBOX="true",
        PYTHONUNBUFFERED="1",
    )
    return env


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"manage.py {' '.join(args)}:\n{done.stderr}"
    return done.stdout


def scratch() -> Path:
    """A folder the embedded PostgreSQL can use: when we are root it runs as an
    unprivileged user, who cannot reach pytest's own (0700) temporary folders."""
    folder = Path(tempfile.mkdtemp(prefix="yomira-newcomer-"))
    folder.chmod(0o755)
    return folder


@pytest.fixture(scope="module")
def console():  # noqa: ANN201
    workdir = scratch()
    env = make_run_env(workdir)
    manage(env, "migrate", "--no-input")
    manage(env, "import_runbook")
    logins = manage(env, "seed_demo")
    port = free_port()
    log = workdir / "runconsole.log"
    process = subprocess.Popen(
        [sys.executable, "manage.py", "runconsole", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/health/live", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail(f"runconsole did not serve:\n{log.read_text()[-3000:]}")
    yield base, logins, log
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(30)
    # runconsole stops the simulated stack and the embedded PostgreSQL when it
    # ends: nothing is left running.
    assert not embedded.postgres_running(workdir / "var" / "postgres")
    assert not embedded.postgres_running(workdir / "var" / "sandbox" / "pg")
    shutil.rmtree(workdir, ignore_errors=True)


def sign_in(base: str, username: str) -> httpx.Client:
    return http_client.sign_in(base, username, PASSWORD)


def test_make_run_prints_every_demo_login(console):
    _, logins, _ = console
    assert PASSWORD in logins
    for username in ACCOUNTS:
        assert re.search(rf"^\s+{username}\s", logins, re.M), logins


@pytest.mark.parametrize("username", ACCOUNTS)
def test_every_demo_account_can_use_every_page(console, username):
    base, _, log = console
    client = sign_in(base, username)
    for url in PAGES:
        reply = client.get(url, follow_redirects=True)
        assert reply.status_code == 200, (
            url,
            reply.status_code,
            log.read_text()[-2000:],
        )
        assert "/accounts/login/" not in str(reply.url), f"{username} was signed out"
    playbooks = client.get("/playbooks/").text
    # DEBUG is on here: django-htmx's debug handler (which swaps a whole page for
    # any 4xx fragment, e.g. a wrong confirmation word) must not be loaded.
    assert "htmx-2.min.js" in playbooks and "django-htmx.js" not in playbooks
    assert "Disk Space Critical" in playbooks
    detail = client.get("/playbooks/disk-space-critical/")
    assert detail.status_code == 200 and "df -h" in detail.text


def test_responder_opens_an_incident_and_the_commander_runs_a_probe(console):
    base, _, log = console
    responder = sign_in(base, "responder")
    new = responder.get("/incidents/new/")
    assert new.status_code == 200
    opened = post(
        responder,
        "/incidents/new/",
        {
            **form_fields(new.text, "/incidents/new/"),
            "playbook": "disk-space-critical",
            "title": "Disk filling on web-1",
        },
    )
    assert opened.status_code == 302, opened.text
    incident_url = opened.headers["location"]
    assert re.fullmatch(r"/incidents/\d+/", incident_url)

    commander = sign_in(base, "commander")
    page = commander.get(incident_url)
    assert page.status_code == 200 and "Disk filling on web-1" in page.text
    run_action = run_form_action(page.text)
    ran = post(commander, run_action, form_fields(page.text, run_action))
    assert ran.status_code in (200, 302), ran.text
    # The worker (filesystem broker) picks the probe up; its result reaches the page.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = commander.get(incident_url).text
        if "Succeeded" in text and "used" in text:
            break
        time.sleep(0.3)
    else:
        pytest.fail(f"df -h did not succeed:\n{log.read_text()[-3000:]}")

    viewer = sign_in(base, "viewer")
    assert viewer.get(incident_url).status_code == 200
    assert viewer.get(f"{incident_url}postmortem.md").status_code == 200
    refused = post(viewer, run_action, {})
    assert refused.status_code == 403


def test_a_busy_port_is_named_before_any_worker_starts():
    """runserver leaves with os._exit on a taken port: a worker started before it
    would be orphaned, sweeping away under PID 1."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "manage.py", "runconsole", "--port", str(port)],
            cwd=ROOT,
            env=make_run_env(workdir := scratch()),
            capture_output=True,
            text=True,
            timeout=120,
        )
    embedded.stop_all(workdir / "var")
    shutil.rmtree(workdir, ignore_errors=True)
    assert done.returncode != 0
    assert f"Cannot serve on 127.0.0.1:{port}" in done.stderr
    assert "Started a Celery worker" not in done.stdout


def test_an_alert_opens_an_incident_with_its_diagnosis(console):
    """Alertmanager's first notification in the newcomer's setup: the receipt goes
    through the filesystem broker to the worker, which opens the incident while the
    web process writes too (a refused request's audit record)."""
    base, _, log = console
    env = make_run_env(log.parent)  # the console's own database and broker
    token = manage(env, "alert_source", "add", "newcomer-am").splitlines()[-1]
    body = {
        "version": "4",
        "status": "firing",
        "receiver": "console",
        "groupKey": '{}:{alertname="HighLatency"}',
        "groupLabels": {"alertname": "HighLatency"},
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "HighLatency", "severity": "warning"},
                "annotations": {"summary": "p95 above 500 ms"},
                "startsAt": "2026-11-29T06:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "fingerprint": "1234567890abcdef",
            }
        ],
    }
    hook = f"{base}/hooks/alertmanager/newcomer-am"
    accepted = httpx.post(hook, json=body, headers={"Authorization": f"Bearer {token}"})
    assert accepted.status_code == 202, accepted.text
    refused = httpx.post(hook, json=body, headers={"Authorization": "Bearer wrong"})
    assert refused.status_code == 401
    viewer = sign_in(base, "viewer")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        listing = viewer.get("/incidents/").text
        found = re.search(r'href="(/incidents/\d+/)"[^>]*>HighLatency: p95', listing)
        if found:
            page = viewer.get(found.group(1)).text
            if "Diagnosis probes" in page and "alert-intake" in page:
                break
        time.sleep(0.3)
    else:
        pytest.fail(f"no incident with its diagnosis:\n{log.read_text()[-3000:]}")
    # Its targets point at the simulated stack: both Diagnosis probes can run.
    assert "queued 2 of 2 Diagnosis probes" in page
    assert "Traceback" not in log.read_text()


# One read-only command of each executor family the bundled runbook uses, run by the
# commander through the web process and the worker against the simulated stack.
FAMILY_PROBES = [
    ("high-api-error-rate-5xx", "curl https://api.yomira.app/health/ready", "http"),
    ("postgresql-down-unreachable", 'psql "${DATABASE_URL}" -c "SELECT 1;"', "sql"),
    ("redis-down-unreachable", 'redis-cli -u "${REDIS_URL}" ping', "redis"),
    ("disk-space-critical", "df -h", "disk"),
    ("failed-migration", 'migrate -database "${DATABASE_URL}"', "migrate"),
]


def console_database(log: Path) -> str:
    return embedded.postgres_url(log.parent / "var" / "postgres")


@pytest.mark.parametrize(("slug", "text", "family"), FAMILY_PROBES)
def test_a_probe_of_every_family_succeeds_against_the_simulated_stack(
    console, slug, text, family
):
    base, _, log = console
    assert "Started the simulated Yomira stack" in log.read_text()
    commander = sign_in(base, "commander")
    new = commander.get(f"/incidents/new/?playbook={slug}")
    opened = post(
        commander,
        "/incidents/new/",
        {**form_fields(new.text, "/incidents/new/"), "playbook": slug,
         "title": f"{family} check"},
    )  # fmt: skip
    assert opened.status_code == 302, opened.text
    incident_url = opened.headers["location"]
    with psycopg.connect(console_database(log), autocommit=True) as db:
        (command_id, executor) = db.execute(
            "SELECT c.id, c.executor FROM incidents_command c "
            "JOIN incidents_playbook p ON p.id = c.playbook_id "
            "WHERE p.slug = %s AND c.text LIKE %s AND c.kind = 'probe' "
            "ORDER BY c.id LIMIT 1",
            [slug, text.replace("%", "%%") + "%"],
        ).fetchone()
        assert executor == family
        action = f"{incident_url}commands/{command_id}/run"
        page = commander.get(incident_url).text
        ran = post(commander, action, form_fields(page, action))
        assert ran.status_code in (200, 302), ran.text
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            row = db.execute(
                "SELECT state, summary FROM incidents_stepexecution "
                "WHERE command_id = %s ORDER BY id DESC LIMIT 1",
                [command_id],
            ).fetchone()
            if row and row[0] not in ("queued", "running"):
                break
            time.sleep(0.3)
    assert row and row[0] == "succeeded", (row, log.read_text()[-3000:])
