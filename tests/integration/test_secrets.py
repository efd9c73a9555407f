"""Secrets and injection against real targets: what a preview shows and the audit
log keeps, parameter values as data in every executor, one deadline for a whole
call, huge answers, and what the worker's `finish` stores."""

from __future__ import annotations

import json
import re
import socket
import threading
from types import SimpleNamespace
from urllib.parse import parse_qs

import pytest
import redis
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from incidents.actors import Actor
from incidents.models import AuditEvent, Command, StepExecution
from incidents.services import execution as runner
from incidents.services import import_runbook, open_incident
from probes.commands import display_text
from probes.families.http import runner as http_executor
from probes.families.redis import runner as redis_executor
from probes.preview import preview
from probes.runtime import NOTE_ROOM, Context, Result
from tests.conftest import IMPORTER, grant, signed_in

from .conftest import TARGET_REDIS_URL

pytestmark = [pytest.mark.django_db(transaction=True)]

HOOK_PASSWORD = "hook-pass-8c1f"
DSN = "postgres://app:dsn-pass-20e7@db.internal:5432/yomira"

RUNBOOK = """# Secrets runbook

Commands the secrets tests run.

## 1. Hooks Misfire

**Alert:** `HooksMisfire`
**Severity:** Critical → PagerDuty

### Steps

1. **Fire the hook**
   ```bash
   curl -X POST ${HOOK_URL}/api/v1/fire -H "Authorization: Bearer ${HOOK_TOKEN}"
   ```

2. **Look at a huge page**
   ```bash
   curl https://huge.yomira.test/export
   ```

3. **Look at a slow page**
   ```bash
   curl https://slow.yomira.test/status
   ```
"""


class StreamServer:
    """A threaded socket server answering every request with `head` and then
    `chunks` pieces of `piece`, `pause` seconds apart; it counts what it sent and
    stops when the client goes away."""

    def __init__(
        self,
        head: bytes,
        piece: bytes,
        chunks: int,
        pause: float,
        *,
        trickle_head: bool = False,
        speaks_first: bool = False,
    ) -> None:
        self.head, self.piece, self.chunks, self.pause = head, piece, chunks, pause
        self.trickle_head, self.speaks_first = trickle_head, speaks_first
        self.sent_chunks = 0
        self.finished = threading.Event()  # the client stopped or all was sent
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            try:
                if not self.speaks_first:  # SMTP servers greet first
                    conn.recv(65536)
                step = 5 if self.trickle_head else len(self.head)
                for i in range(0, len(self.head), step):
                    conn.sendall(self.head[i : i + step])
                    if self.trickle_head:
                        self.stop.wait(self.pause)
                for _ in range(self.chunks):
                    conn.sendall(self.piece)
                    self.sent_chunks += 1
                    if self.pause:
                        self.stop.wait(self.pause)
            except OSError:
                pass
            finally:
                self.finished.set()

    def close(self) -> None:
        self.stop.set()
        self.listener.close()


@pytest.fixture
def hooks(monkeypatch, make_user):  # noqa: ANN001, ANN201
    """The secrets runbook imported, its targets in the environment, a commander
    allowed to run its actions, and an open incident."""
    huge = StreamServer(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
        b"Content-Length: 52428800\r\n\r\n",
        (b"x" * 1000 + f" token {HOOK_PASSWORD} ".encode()) * 64,
        chunks=52428800 // 65000,
        pause=0,
    )
    # 5 bytes every 0.2 s: every read succeeds, so only a deadline for the whole
    # call stops it (the body would take about 40 s).
    slow = StreamServer(
        b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", b"abcde", 200, 0.2
    )
    monkeypatch.setenv("TARGET_HOOK_URL", f"http://hooker:{HOOK_PASSWORD}@127.0.0.1:9")
    monkeypatch.setenv("TARGET_HOOK_TOKEN", "hook-token-71aa90")
    monkeypatch.setenv("TARGET_DATABASE_URL", DSN)
    monkeypatch.setenv(
        "TARGET_HOSTS",
        f"huge.yomira.test=http://127.0.0.1:{huge.port},"
        f"slow.yomira.test=http://127.0.0.1:{slow.port}",
    )
    cole = make_user("cole", "Commander")
    runbook = import_runbook(
        source=RUNBOOK.encode(), source_name="secrets.md", actor=IMPORTER
    ).runbook
    playbook = runbook.playbooks.get()
    grant(cole, "run_actions", "approve_actions", playbooks=[playbook])
    incident = open_incident(playbook=playbook, title="hooks", actor=Actor.person(cole))
    yield SimpleNamespace(
        user=cole,
        incident=incident,
        playbook=playbook,
        huge=huge,
        slow=slow,
        command=lambda step: playbook.commands.get(step__number=step),
    )
    huge.close()
    slow.close()


def stored_everywhere() -> str:
    """Everything the console keeps that a Viewer can reach: audit data, runs."""
    events = [json.dumps(e.data) for e in AuditEvent.objects.all()]
    runs = [
        f"{r.command_text}\n{r.summary}\n{r.output}"
        for r in StepExecution.objects.all()
    ]
    return "\n".join(events + runs)


# --- 1. nothing derived from a target value is shown or stored unredacted -------------


def test_an_http_preview_shows_the_runbook_text_and_stores_no_credential(hooks):
    fire = hooks.command(1)
    shown = preview(fire, {})
    assert shown.headline == "Will send POST ${HOOK_URL}/api/v1/fire"
    assert "Authorization: Bearer ${HOOK_TOKEN}" in shown.detail
    client = signed_in(hooks.user)
    answer = client.post(
        f"/incidents/{hooks.incident.pk}/commands/{fire.pk}/preview",
        HTTP_HX_REQUEST="true",
    )
    assert answer.status_code == 200
    page = answer.content.decode()
    event = AuditEvent.objects.get(verb="execution.previewed", incident=hooks.incident)
    assert event.data["headline"] == "Will send POST ${HOOK_URL}/api/v1/fire"
    for secret in (HOOK_PASSWORD, "hook-token-71aa90", "hooker:"):
        assert secret not in page and secret not in stored_everywhere()


def test_what_a_run_stores_is_the_runbook_text(hooks):
    huge = hooks.command(2)
    assert display_text(huge) == "curl https://huge.yomira.test/export"
    assert display_text(hooks.command(1)).startswith("curl -X POST ${HOOK_URL}/api")


def test_failures_name_the_runbook_url_not_the_target(hooks):
    # Port 9 (discard) refuses: the error must not carry the expanded URL.
    result = http_executor.run(hooks.command(1), {}, Context(timeout=3))
    assert not result.ok
    assert result.summary.startswith("POST ${HOOK_URL}/api/v1/fire: cannot connect")
    assert HOOK_PASSWORD not in result.summary


# --- 2. parameter values are data ------------------------------------------------------


INJECTION = 'x", "admin": true, "leak": "${DATABASE_URL}'


@pytest.fixture
def echo_server():  # noqa: ANN201
    server = HTTPServer(host="127.0.0.1", port=0)
    seen: list[Request] = []

    def keep(request: Request) -> Response:
        request.get_data()
        seen.append(request)
        return Response("ok")

    server.expect_request(
        re.compile(r"^/api/v1/notes/.*"), method="POST"
    ).respond_with_handler(keep)
    server.start()
    yield SimpleNamespace(url=f"http://127.0.0.1:{server.port}", seen=seen)
    server.clear()
    server.stop()


def http_command(url: str, body: str, **headers: str) -> SimpleNamespace:
    spec = {"method": "POST", "url": url, "headers": headers, "body": body}
    return SimpleNamespace(spec=spec, parameters=["note", "reason"], kind="action")


def test_a_parameter_is_json_encoded_into_a_json_body_and_never_expanded(
    echo_server, monkeypatch
):
    monkeypatch.setenv("TARGET_DATABASE_URL", DSN)
    command = http_command(
        echo_server.url + "/api/v1/notes/{note}",
        '{"note": {note}, "reason": "{reason}"}',
    )
    result = http_executor.run(
        command, {"note": "17", "reason": INJECTION}, Context(timeout=5)
    )
    assert result.ok, result.summary
    sent = echo_server.seen[-1]
    assert json.loads(sent.get_data()) == {"reason": INJECTION, "note": 17}
    assert b"dsn-pass" not in sent.get_data()
    # A bare placeholder gets a JSON string unless the value is a number.
    http_executor.run(command, {"note": '1, "x": 2', "reason": "r"}, Context())
    assert json.loads(echo_server.seen[-1].get_data()) == {
        "reason": "r",
        "note": '1, "x": 2',
    }


def test_a_parameter_is_form_encoded_into_a_form_body(echo_server, monkeypatch):
    monkeypatch.setenv("TARGET_DATABASE_URL", DSN)
    command = http_command(echo_server.url + "/api/v1/notes/", "reason={reason}&n=1")
    value = "x&admin=1&leak=${DATABASE_URL}"
    assert http_executor.run(command, {"reason": value}, Context(timeout=5)).ok
    sent = echo_server.seen[-1].get_data().decode()
    assert parse_qs(sent) == {"reason": [value], "n": ["1"]}


def test_a_parameter_is_percent_encoded_into_the_url(echo_server, monkeypatch):
    monkeypatch.setenv("TARGET_DATABASE_URL", DSN)
    command = http_command(echo_server.url + "/api/v1/notes/{note}", "{}")
    value = "../x?admin=1#${DATABASE_URL}"
    assert http_executor.run(command, {"note": value}, Context(timeout=5)).ok
    sent = echo_server.seen[-1]
    assert sent.path == "/api/v1/notes/" + value and not sent.args


def test_a_redis_parameter_is_one_argument_and_never_expanded(monkeypatch):
    monkeypatch.setenv("TARGET_REDIS_URL", TARGET_REDIS_URL)
    monkeypatch.setenv("TARGET_DATABASE_URL", DSN)
    target = redis.Redis.from_url(TARGET_REDIS_URL, decode_responses=True)
    target.delete("note:${DATABASE_URL} x")
    command = SimpleNamespace(
        spec={"command": "SET", "args": ["SET", "note:{key}", "{value}"]},
        parameters=["key", "value"],
        kind="action",
    )
    result = redis_executor.run(
        command, {"key": "${DATABASE_URL} x", "value": "${DATABASE_URL}"}, Context()
    )
    assert result.ok, result.summary
    assert target.get("note:${DATABASE_URL} x") == "${DATABASE_URL}"
    target.delete("note:${DATABASE_URL} x")


# --- 3. huge and slow answers: capped, one deadline, the result always stored ----------


def queued_run(hooks, step: int) -> StepExecution:  # noqa: ANN001
    """A queued run of a probe, as the Run button leaves it for the worker (the
    test then does the worker's part itself, in this process)."""
    command = hooks.command(step)
    return StepExecution.objects.create(
        incident=hooks.incident,
        step=command.step,
        command=command,
        state=StepExecution.State.QUEUED,
        requested_by=hooks.user,
        command_text=display_text(command),
    )


def test_a_huge_answer_is_read_only_up_to_the_cap_and_stored(hooks, settings):
    run = queued_run(hooks, 2)
    assert runner.execute(run.pk) == "succeeded"
    run.refresh_from_db()
    assert run.state == "succeeded"
    assert len(run.output.encode()) <= settings.EXECUTION_OUTPUT_CAP
    assert "output trimmed: read only the first 64 KB" in run.output
    assert "(body cut at 64 KB)" in run.summary
    assert HOOK_PASSWORD not in run.output and "hook-pass" not in run.output
    event = AuditEvent.objects.get(verb="execution.succeeded", object_id=str(run.pk))
    assert event.data["result"]["truncated"] is True
    hooks.huge.finished.wait(10)
    # The console stopped reading: most of the 50 MB was never sent.
    assert hooks.huge.sent_chunks < hooks.huge.chunks // 2


def test_a_trickling_answer_stops_at_the_deadline_and_is_stored(hooks, settings):
    settings.EXECUTION_TIMEOUT = 1.5
    run = queued_run(hooks, 3)
    assert runner.execute(run.pk) == "timed_out"
    run.refresh_from_db()
    assert run.state == "timed_out" and run.finished_at is not None
    assert "did not finish within 1.5 s" in run.summary
    assert "abcde" in run.output  # what arrived before the deadline is kept
    hooks.slow.finished.wait(10)
    assert hooks.slow.sent_chunks < hooks.slow.chunks // 2


def test_headers_trickling_in_stop_at_the_deadline_too():
    slow_head = StreamServer(
        b"HTTP/1.1 200 OK\r\n" + b"X-Pad: " + b"p" * 4000 + b"\r\n\r\n",
        b"",
        0,
        0.2,
        trickle_head=True,
    )
    try:
        command = http_command(f"http://127.0.0.1:{slow_head.port}/", "")
        command.spec["method"] = "GET"
        result = http_executor.run(command, {}, Context(timeout=1.5))
        assert result.timed_out and not result.ok
        assert "no answer within 1.5 s" in result.summary
    finally:
        slow_head.close()


def test_an_object_store_trickling_its_answer_stops_at_the_deadline(monkeypatch):
    from probes.families.s3 import runner as s3_executor

    store = StreamServer(
        b"HTTP/1.1 200 OK\r\nX-Pad: " + b"p" * 300 + b"\r\n\r\n",
        b"",
        0,
        0.2,
        trickle_head=True,  # about 13 s at 5 bytes every 0.2 s
    )
    monkeypatch.setenv("TARGET_S3_ENDPOINT_URL", f"http://127.0.0.1:{store.port}")
    monkeypatch.setenv("TARGET_AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
    monkeypatch.setenv("TARGET_AWS_SECRET_ACCESS_KEY", "canary/secret/key/wJalrXUtn")
    try:
        command = SimpleNamespace(
            spec={"operation": "head_bucket", "bucket": "media"}, parameters=[]
        )
        result = s3_executor.run(command, {}, Context(timeout=1.5))
        assert result.timed_out and not result.ok
        assert result.summary == "The object store did not answer within 1.5 s."
        assert not store.finished.is_set()  # answered before the store was done
    finally:
        store.close()


def test_statements_together_past_the_deadline_are_cancelled(
    target_database, monkeypatch
):
    from probes.families.sql import runner as sql_executor

    monkeypatch.setenv("TARGET_DATABASE_URL", target_database)
    # Each statement is well inside statement_timeout; together they are not.
    command = SimpleNamespace(
        spec={"sql": "SELECT pg_sleep(0.8);\n" * 6},
        parameters=[],
        kind="probe",
    )
    result = sql_executor.run(command, {}, Context(timeout=1.5))
    assert result.timed_out and not result.ok
    assert result.summary == "Cancelled: the statements took more than 1.5 s."


def test_a_redis_reply_trickling_in_stops_at_the_deadline(monkeypatch):
    # A bulk reply of 100,000 bytes, 5 bytes every 0.2 s: every read succeeds.
    slow = StreamServer(b"$100000\r\n", b"abcde", 200, 0.2)
    monkeypatch.setenv("TARGET_SLOW_REDIS_URL", f"redis://127.0.0.1:{slow.port}/0")
    try:
        command = SimpleNamespace(
            spec={
                "command": "GET",
                "args": ["GET", "big"],
                "target": "SLOW_REDIS_URL",
            },
            parameters=[],
            kind="probe",
        )
        result = redis_executor.run(command, {}, Context(timeout=1.5))
        assert result.timed_out and not result.ok
        assert result.summary == "Redis did not answer within 1.5 s."
        slow.finished.wait(10)
        assert slow.sent_chunks < slow.chunks // 2
    finally:
        slow.close()


def test_an_smtp_banner_trickling_in_stops_at_the_deadline(monkeypatch):
    from probes.families.smtp import runner as smtp_executor

    slow = StreamServer(
        b"220 " + b"x" * 300 + b"\r\n",
        b"",
        0,
        0.2,
        trickle_head=True,
        speaks_first=True,
    )
    monkeypatch.setenv("TARGET_HOSTS", f"smtp.slow.test=smtp://127.0.0.1:{slow.port}")
    try:
        command = SimpleNamespace(spec={"host": "smtp.slow.test"}, parameters=[])
        result = smtp_executor.run(command, {}, Context(timeout=1.5, connect_timeout=1))
        assert result.timed_out and not result.ok
        assert "did not finish within 1.5 s" in result.summary
        assert slow.finished.wait(10)  # the console hung up: the server stopped early
    finally:
        slow.close()


def test_a_call_with_no_socket_to_shut_is_answered_at_the_deadline():
    # What disk (statvfs on a hung mount) and S3 rely on: the result comes at the
    # deadline, and the blocked call ends on its own later.
    from probes.runtime import within_deadline

    release = threading.Event()

    def blocked() -> Result:
        release.wait(30)
        return Result(True, "late")

    try:
        result = within_deadline(
            Context(timeout=0.5), blocked, lambda: Result(False, "cut", timed_out=True)
        )
    finally:
        release.set()
    assert result.summary == "cut" and result.timed_out
    assert (
        within_deadline(
            Context(timeout=5),
            lambda: Result(True, "on time"),
            lambda: Result(False, "x"),
        ).summary
        == "on time"
    )
    with pytest.raises(ZeroDivisionError):  # an error is the caller's to handle
        within_deadline(Context(timeout=5), lambda: 1 / 0, lambda: Result(False, "x"))


def test_a_migrate_preview_does_not_wait_on_a_locked_table(
    target_database, monkeypatch
):
    import psycopg

    monkeypatch.setenv("TARGET_DATABASE_URL", target_database)
    command = SimpleNamespace(
        executor="migrate", spec={"subcommand": "force", "argument": "7"}
    )
    shown: list = []
    with psycopg.connect(target_database) as migration:
        migration.execute("LOCK TABLE schema_migrations IN ACCESS EXCLUSIVE MODE")
        # A helper thread only so that a regression fails instead of hanging.
        helper = threading.Thread(target=lambda: shown.append(preview(command, {})))
        helper.start()
        helper.join(60)
        waited = helper.is_alive()
        migration.rollback()
    helper.join()
    assert not waited, "the preview waited on the lock"
    assert shown[0].headline.startswith("No preview: the database said canceling")


# --- point 17: what `finish` stores ----------------------------------------------------


def test_finish_redacts_before_capping_and_redacts_the_data(hooks, settings):
    run = queued_run(hooks, 2)
    StepExecution.objects.filter(pk=run.pk).update(state="running")
    secret = "hook-token-71aa90"
    limit = settings.EXECUTION_OUTPUT_CAP
    # A secret straddles each place a cap could cut (the cap, and the cap less the
    # room for its note): capped first, a head would stay in clear.
    output = (
        "x" * (limit - NOTE_ROOM - 8)
        + secret
        + "x" * (NOTE_ROOM - len(secret))
        + secret
        + "y" * 100
    )
    assert output.index(secret, limit - NOTE_ROOM) == limit - 8
    data = {"echo": f"Bearer {secret}", "Password": "pw", "nested": [DSN]}
    runner.finish(run, Result(True, f"echoed {secret}", output, data))
    run.refresh_from_db()
    assert secret[:6] not in run.output and secret not in run.summary
    assert len(run.output.encode()) <= limit
    event = AuditEvent.objects.get(verb="execution.succeeded", object_id=str(run.pk))
    assert secret not in json.dumps(event.data) and "dsn-pass" not in json.dumps(
        event.data
    )
    assert event.data["result"]["Password"] == "••••"


def test_commands_and_parameters_unused(hooks):
    # Guard for the fixture itself: the three commands are what the tests think.
    kinds = {c.step.number: (c.kind, c.executor) for c in hooks.playbook.commands.all()}
    assert kinds == {1: ("action", "http"), 2: ("probe", "http"), 3: ("probe", "http")}
    assert Command.objects.filter(playbook=hooks.playbook).count() == 3
