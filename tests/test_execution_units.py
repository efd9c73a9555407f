"""Execution pieces without a worker: targets, redaction, what a person sees of a
command, the run view's checks, the execution fragment, the targets page; the
claim, the worker's re-check, the sweepers and approval expiry."""

# The safety matrix's world is imported by name, so tests name it as an argument:
# that is how pytest uses it, not a redefinition.
# ruff: noqa: F811

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from incidents import tasks
from incidents.actors import Actor
from incidents.models import AuditEvent, Command, Playbook, StepExecution
from incidents.services import (
    decide_approval,
    open_incident,
    request_run,
    runs,
    sweeper,
)
from incidents.services import execution as runner
from probes import redaction, targets
from probes.commands import confirm_word, display_text, missing_targets
from tests.stack import console_server
from tests.test_safety_matrix import world  # noqa: F401 - fixture

State = StepExecution.State


@pytest.fixture
def env(monkeypatch):
    monkeypatch.setenv(
        "TARGET_DATABASE_URL", "postgres://app:s3cr3t-pw@db.internal:5432/yomira"
    )
    monkeypatch.setenv("TARGET_ADMIN_TOKEN", "tok-abcdef123456")
    monkeypatch.setenv(
        "TARGET_HOSTS",
        "api.yomira.app=http://127.0.0.1:8001, cdn.yomira.app = http://127.0.0.1:8002",
    )
    monkeypatch.delenv("TARGET_REDIS_URL", raising=False)


def test_targets_come_from_the_environment(env):
    assert targets.value("ADMIN_TOKEN") == "tok-abcdef123456"
    assert targets.require("ADMIN_TOKEN") == "tok-abcdef123456"
    assert targets.host_map() == {
        "api.yomira.app": "http://127.0.0.1:8001",
        "cdn.yomira.app": "http://127.0.0.1:8002",
    }
    assert (
        targets.rewrite("https://api.yomira.app/api/v1/x?y=1")
        == "http://127.0.0.1:8001/api/v1/x?y=1"
    )
    assert (
        targets.rewrite("https://elsewhere.example/x") == "https://elsewhere.example/x"
    )
    with pytest.raises(
        targets.TargetMissing, match="set TARGET_REDIS_URL in the worker's environment"
    ):
        targets.require("REDIS_URL")


def test_redaction_removes_every_kind_of_secret(env):
    text = (
        "dsn postgres://app:s3cr3t-pw@db.internal:5432/yomira password s3cr3t-pw\n"
        "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig tok-abcdef123456\n"
        "AKIAIOSFODNN7EXAMPLE aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"
        "redis://:hunter22@cache:6379/0 api_key=zzzz-1234"
    )
    clean = redaction.redact(text)
    for secret in [
        "s3cr3t-pw",
        "eyJhbGci",
        "tok-abcdef123456",
        "AKIAIOSFODNN7EXAMPLE",
        "wJalrXUtnFEMI",
        "hunter22",
        "zzzz-1234",
    ]:
        assert secret not in clean, secret
    assert (
        "@cache:6379/0" in clean
    )  # an unconfigured URL keeps its host, loses its password
    assert redaction.redact_data({"a": ["tok-abcdef123456"]}) == {"a": ["••••"]}


def test_display_text_keeps_runbook_hosts_fills_parameters_and_masks(env, yomira):
    revoke = Command.objects.get(playbook__number=12, executor="http")
    shown = display_text(revoke, {"userId": "u-42"})
    # The runbook's text: its own host, not where TARGET_HOSTS sends it.
    assert shown.startswith(
        "curl -X POST https://api.yomira.app/api/v1/admin/users/u-42/sessions"
    )
    assert "${ADMIN_TOKEN}" in shown and "tok-abcdef" not in shown
    sql = Command.objects.get(
        playbook__number=12, text__startswith="UPDATE users.session"
    )
    assert display_text(sql, {"$1": "u-42"}).endswith("-- bound: $1 = 'u-42'")


def test_each_action_has_a_word_from_its_own_command(yomira):
    def word(start: str) -> str:
        return confirm_word(Command.objects.get(kind="action", text__startswith=start))

    assert word("SELECT pg_cancel_backend(pid);") == "cancel"
    assert word("SELECT pg_terminate_backend(pid);") == "terminate"
    assert word("DROP TABLE IF EXISTS") == "drop"
    assert word("VACUUM FULL") == "vacuum"
    assert (
        word("curl -X POST https://api.yomira.app/api/v1/admin/crawler/pause")
        == "pause"
    )
    assert (
        word("curl -X POST https://api.yomira.app/api/v1/admin/users/{userId}")
        == "revoke-all"
    )
    assert word("PATCH /admin/crawler/sources/:id") == "sources"
    assert word('redis-cli -u "${REDIS_URL}" config set') == "config"
    assert (
        word(
            'migrate -database "${DATABASE_URL}" -path src/common/DML/migrations force'
        )
        == "force"
    )


def test_missing_targets_name_the_variables(env, yomira):
    ping = Command.objects.get(playbook__number=4, text__contains="ping")
    assert missing_targets(ping) == ["TARGET_REDIS_URL"]
    select = Command.objects.get(playbook__number=3, text__contains="SELECT 1")
    assert missing_targets(select) == []


def test_the_targets_page_says_what_is_set_never_the_value(env, viewer_client, yomira):
    page = viewer_client.get("/targets/").content.decode()
    assert "TARGET_DATABASE_URL ✓ set" in page and "TARGET_REDIS_URL ✗ not set" in page
    assert "api.yomira.app → mapped" in page
    assert "s3cr3t" not in page and "tok-abcdef" not in page
    assert "Drill target" not in page  # no simulated stack here


def test_targets_from_the_simulated_stack_say_drill_target_everywhere(
    env, viewer_client, yomira, monkeypatch
):
    """runconsole names in SANDBOX_TARGETS the TARGET_* it pointed at the simulated
    stack: the targets page marks them, and the top bar of every page says so."""
    monkeypatch.setenv("SANDBOX_TARGETS", "TARGET_DATABASE_URL,TARGET_HOSTS")
    page = viewer_client.get("/targets/").content.decode()
    assert "TARGET_DATABASE_URL ✓ drill target" in page
    assert "api.yomira.app → drill target" in page
    assert "TARGET_REDIS_URL ✗ not set" in page  # not set is still not set
    assert "nothing here reaches a real system" in page
    home = viewer_client.get("/playbooks/").content.decode()
    assert 'class="drill-badge drill-target"' in home


def run_url(incident, command) -> str:  # noqa: ANN001
    return f"/incidents/{incident.pk}/commands/{command.pk}/run"


def test_viewers_cannot_run_and_responders_cannot_run_actions(
    env, incident, viewer_client, responder_client
):
    ping = Command.objects.get(playbook=incident.playbook, text__contains="ping")
    policy = Command.objects.get(
        playbook=incident.playbook, text__contains="config set"
    )
    assert viewer_client.post(run_url(incident, ping)).status_code == 403
    assert (
        responder_client.post(
            run_url(incident, policy), {"confirmation": "config"}
        ).status_code
        == 403
    )
    denied = AuditEvent.objects.filter(verb="permission.denied").values_list(
        "data", flat=True
    )
    assert {d["permission"] for d in denied} == {
        "incidents.run_probes",
        "incidents.run_actions",
    }
    assert StepExecution.objects.count() == 0


def test_a_command_from_another_playbook_is_404(
    env, incident, commander_client, yomira
):
    other = Command.objects.filter(playbook__number=5).exclude(kind="manual").first()
    assert commander_client.post(run_url(incident, other)).status_code == 404


def test_a_refused_run_explains_itself(env, incident, responder_client):
    ping = Command.objects.get(playbook=incident.playbook, text__contains="ping")
    response = responder_client.post(run_url(incident, ping), HTTP_HX_REQUEST="true")
    assert response.status_code == 400
    assert "Not configured: set TARGET_REDIS_URL" in response.content.decode()


def test_the_execution_fragment_polls_until_terminal_then_answers_286(
    incident, commander, responder_client
):
    ping = Command.objects.get(playbook=incident.playbook, text__contains="ping")
    execution = StepExecution.objects.create(
        incident=incident,
        step=ping.step,
        command=ping,
        state="running",
        requested_by=commander,
    )
    url = f"/incidents/{incident.pk}/executions/{execution.pk}"
    running = responder_client.get(url, HTTP_HX_REQUEST="true")
    assert (
        running.status_code == 200
        and 'hx-trigger="every 400ms"' in running.content.decode()
    )
    StepExecution.objects.filter(pk=execution.pk).update(
        state="succeeded", summary="PING: PONG", output="PONG <script>x</script>"
    )
    done = responder_client.get(url, HTTP_HX_REQUEST="true")
    html = done.content.decode()
    assert done.status_code == 286 and "hx-trigger" not in html
    assert "PING: PONG" in html and "&lt;script&gt;" in html and "<script>x" not in html
    # Followed as a link (no HTMX): the run on a whole page, back to its step.
    page = responder_client.get(url)
    html = page.content.decode()
    assert page.status_code == 200 and "<!doctype html>" in html
    assert f'href="/incidents/{incident.pk}/#step-{ping.step.number}"' in html
    assert "&lt;script&gt;" in html and "<script>x" not in html


def test_an_execution_of_another_incident_is_404(incident, commander, responder_client):
    ping = Command.objects.get(playbook=incident.playbook, text__contains="ping")
    execution = StepExecution.objects.create(
        incident=incident,
        step=ping.step,
        command=ping,
        state="running",
        requested_by=commander,
    )
    assert (
        responder_client.get(
            f"/incidents/{incident.pk + 1}/executions/{execution.pk}"
        ).status_code
        == 404
    )


# --- the worker's claim and re-check, the sweepers, approval expiry ------------------
# Called in-process (not through a worker), so that mutation testing judges them
# (issue 8 point 17): every message a person reads is asserted whole.

ACTION_LOST = (
    "The worker stopped while this action ran. Check the target by hand: the "
    "console will not run it again by itself."
)
PROBE_LOST = "The worker stopped before this probe finished; run it again."
# What the sweepers need of a run is read with it: a query of its own per run
# (an incident, step, command or requester) would make a backlog a query storm.
PER_ROW = re.compile(
    r'FROM "(incidents_incident|incidents_step|incidents_command|auth_user)"'
)


@pytest.fixture
def sent(monkeypatch):
    """Targets configured; what would go to the broker, collected instead."""
    monkeypatch.setenv("TARGET_REDIS_URL", "redis://127.0.0.1:6379/14")
    monkeypatch.setenv("TARGET_DATABASE_URL", console_server("postgres"))
    found: list[tuple] = []
    monkeypatch.setattr("incidents.services.runs.dispatch", lambda *a: found.append(a))
    return found


@pytest.fixture
def clock(monkeypatch):
    """The worker's and the sweeper's now, held still, so that waits are exact."""
    now = timezone.now()
    for module in (runner, sweeper):
        monkeypatch.setattr(module, "timezone", SimpleNamespace(now=lambda: now))
    return now


def a_run(world, command: Command, state: str, ago=timedelta(0), now=None, **fields):  # noqa: ANN001, ANN003, ANN201
    """A run of `command` created `ago` before now, requested by rita."""
    incident = (
        world.incident
        if command.playbook_id == world.incident.playbook_id
        else world.pool
    )
    return StepExecution.objects.create(
        incident=incident,
        step=command.step,
        command=command,
        state=state,
        requested_by=world.people["responder"],
        command_text=f"run of command {command.pk}",
        created_at=(now or timezone.now()) - ago,
        **fields,
    )


def test_a_run_is_sent_by_the_name_the_worker_registers_its_task_under(
    world, monkeypatch
):
    """The services send runs by name (they never import the tasks, which call
    back into them): the names must be the ones the worker knows."""
    sent = []

    def send_task(name, **options):  # noqa: ANN001, ANN003, ANN202
        sent.append((name, options["args"], options["task_id"], options["retry"]))
        return SimpleNamespace(id=f"task-{len(sent)}")

    monkeypatch.setattr(runs, "current_app", SimpleNamespace(send_task=send_task))
    probe = a_run(world, world.ping, State.QUEUED)
    # A run whose caller chose the message's id stored it with the row already.
    action = a_run(world, world.policy, State.QUEUED, task_id="resent-7")
    runs.dispatch(probe.pk, Command.Kind.PROBE)
    with CaptureQueriesContext(connection) as sending:
        runs.dispatch(action.pk, Command.Kind.ACTION, "resent-7")
    assert sent == [
        (tasks.run_probe.name, [probe.pk], None, True),
        (tasks.run_action.name, [action.pk], "resent-7", True),
    ]
    assert (tasks.run_probe.name, tasks.run_action.name) == (
        "incidents.tasks.run_probe",
        "incidents.tasks.run_action",
    )
    # Probes may be delivered again; actions are acknowledged on receipt.
    assert tasks.run_probe.acks_late and not tasks.run_action.acks_late
    probe.refresh_from_db()
    action.refresh_from_db()
    # Without an id, the message's is recorded after the send; with one, nothing
    # is written after sending (no statement at all: no site is configured).
    assert (probe.task_id, action.task_id) == ("task-1", "resent-7")
    assert sending.captured_queries == []


def event_data(execution: StepExecution, summary: str) -> dict:
    return {
        "step": execution.command.step.number,
        "command": execution.command_text,
        "kind": execution.command.kind,
        "executor": execution.command.executor,
        "requested_by": "rita",
        "summary": summary,
    }


def writes(queries: CaptureQueriesContext) -> list[str]:
    return [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].startswith('UPDATE "incidents_stepexecution"')
    ]


def per_row_loads(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if PER_ROW.search(q["sql"])]


def test_a_claim_takes_one_queued_run_once_and_stamps_its_start(world):
    first = a_run(world, world.ping, State.QUEUED)
    other = a_run(world, world.ping, State.QUEUED)
    cancelled = a_run(world, world.ping, State.CANCELLED)
    before = timezone.now()
    assert runner.claim(first.pk) is True
    after = timezone.now()
    first.refresh_from_db()
    other.refresh_from_db()
    assert first.state == State.RUNNING and before <= first.started_at <= after
    assert other.state == State.QUEUED and other.started_at is None
    started = first.started_at
    assert runner.claim(first.pk) is False  # a duplicate delivery
    assert runner.claim(cancelled.pk) is False
    first.refresh_from_db()
    cancelled.refresh_from_db()
    assert (first.state, first.started_at) == (State.RUNNING, started)
    assert (cancelled.state, cancelled.started_at) == (State.CANCELLED, None)


def test_the_workers_recheck_lets_through_what_is_still_allowed(world, sent):
    probe = request_run(
        incident=world.incident,
        command=world.ping,
        params={},
        actor=Actor.person(world.people["responder"]),
    ).execution
    requested = request_run(
        incident=world.pool,
        command=world.terminate,
        params={"pid": "4242"},
        actor=Actor.person(world.people["granted"]),
        confirmation="terminate",
    ).execution
    decide_approval(
        execution=requested, approve=True, actor=Actor.person(world.people["approver"])
    )
    approved = StepExecution.objects.get(pk=requested.pk)
    glass = request_run(
        incident=world.pool,
        command=world.terminate,
        params={"pid": "4243"},
        actor=Actor.person(world.people["granted"]),
        confirmation="terminate",
        break_glass_reason="nobody else awake",
        break_glass=True,
    ).execution
    assert glass.break_glass and glass.approved_by is None
    for execution in (probe, approved, glass):
        assert execution.fingerprint  # checked, not skipped
        assert runner.recheck(execution) == ""


def test_the_worker_refuses_an_action_queued_without_its_approval(world, sent):
    requested = request_run(
        incident=world.pool,
        command=world.terminate,
        params={"pid": "4242"},
        actor=Actor.person(world.people["granted"]),
        confirmation="terminate",
    ).execution
    StepExecution.objects.filter(pk=requested.pk).update(state=State.QUEUED)
    assert runner.execute(requested.pk) == State.FAILED
    requested.refresh_from_db()
    assert requested.summary == "Not run: it needs an approval and has none."
    assert AuditEvent.objects.filter(
        verb="permission.denied", object_id=str(requested.pk)
    ).exists()


def test_only_requests_still_waiting_and_overdue_expire_in_one_read(world, sent):
    def ask(pid: str) -> StepExecution:
        return request_run(
            incident=world.pool,
            command=world.terminate,
            params={"pid": pid},
            actor=Actor.person(world.people["granted"]),
            confirmation="terminate",
        ).execution

    overdue = [ask("4242"), ask("4243")]
    fresh = ask("4244")
    approved = ask("4245")
    decide_approval(
        execution=approved, approve=True, actor=Actor.person(world.people["approver"])
    )
    StepExecution.objects.filter(pk__in=[e.pk for e in (*overdue, approved)]).update(
        approval_expires_at=timezone.now() - timedelta(seconds=1)
    )
    with CaptureQueriesContext(connection) as queries:
        assert sweeper.expire_approvals() == 2
    assert per_row_loads(queries) == []
    assert len(writes(queries)) == 2  # the approved run is not even touched
    states = dict(StepExecution.objects.values_list("pk", "state"))
    assert [states[e.pk] for e in (*overdue, fresh, approved)] == [
        State.CANCELLED,
        State.CANCELLED,
        State.AWAITING_APPROVAL,
        State.QUEUED,
    ]


@override_settings(STALE_RUNNING_AFTER=600)
def test_the_running_sweeper_ends_stale_runs_only_and_says_what_to_do(world, clock):
    live = a_run(
        world, world.ping, State.RUNNING, started_at=clock - timedelta(seconds=30)
    )
    probe = a_run(
        world, world.ping, State.RUNNING, started_at=clock - timedelta(seconds=601)
    )
    action = a_run(
        world, world.policy, State.RUNNING, started_at=clock - timedelta(seconds=601)
    )
    done = a_run(
        world, world.ping, State.SUCCEEDED, started_at=clock - timedelta(days=1)
    )
    with CaptureQueriesContext(connection) as queries:
        assert sweeper.sweep_stale() == 2
    assert per_row_loads(queries) == []
    assert len(writes(queries)) == 2  # finished runs are not swept over again
    ended = {
        e.pk: (e.state, e.summary, e.finished_at) for e in StepExecution.objects.all()
    }
    assert ended == {
        live.pk: (State.RUNNING, "", None),
        probe.pk: (State.FAILED, PROBE_LOST, clock),
        action.pk: (State.OUTCOME_UNKNOWN, ACTION_LOST, clock),
        done.pk: (State.SUCCEEDED, "", None),
    }
    events = AuditEvent.objects.filter(actor_name="sweeper").order_by("seq")
    assert [(e.verb, e.incident_id, e.object_id, e.data) for e in events] == [
        (
            "execution.failed",
            world.incident.pk,
            str(probe.pk),
            event_data(probe, PROBE_LOST),
        ),
        (
            "execution.outcome_unknown",
            world.incident.pk,
            str(action.pk),
            event_data(action, ACTION_LOST),
        ),
    ]


def test_a_run_its_worker_ended_meanwhile_is_left_as_the_worker_left_it(world):
    loaded = a_run(
        world,
        world.ping,
        State.RUNNING,
        started_at=timezone.now() - timedelta(hours=1),
    )
    # The sweeper read it as running; the worker stores its result just then.
    StepExecution.objects.filter(pk=loaded.pk).update(
        state=State.SUCCEEDED, summary="PONG"
    )
    assert (
        sweeper._end_swept(
            loaded, was=State.RUNNING, state=State.FAILED, summary=PROBE_LOST
        )
        is False
    )
    loaded.refresh_from_db()
    assert (loaded.state, loaded.summary) == (State.SUCCEEDED, "PONG")
    assert not AuditEvent.objects.filter(actor_name="sweeper").exists()


@override_settings(STALE_QUEUED_AFTER=120)
def test_each_unclaimed_probe_is_sent_again_and_the_resend_is_audited(
    world, sent, clock, django_capture_on_commit_callbacks
):
    older = a_run(world, world.ping, State.QUEUED, timedelta(seconds=130), clock)
    old = a_run(world, world.ping, State.QUEUED, timedelta(seconds=121), clock)
    live = a_run(
        world, world.ping, State.QUEUED, timedelta(seconds=10), clock, task_id="t-1"
    )
    with (
        CaptureQueriesContext(connection) as queries,
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert sweeper.sweep_unclaimed() == 2
    assert per_row_loads(queries) == []
    for e in (older, old, live):
        e.refresh_from_db()
    assert (live.state, live.task_id) == (State.QUEUED, "t-1")
    assert older.state == old.state == State.QUEUED
    assert re.fullmatch(r"resent-[0-9a-f-]{36}", older.task_id)
    assert re.fullmatch(r"resent-[0-9a-f-]{36}", old.task_id)
    assert older.task_id != old.task_id
    assert sent == [
        (older.pk, Command.Kind.PROBE, older.task_id),
        (old.pk, Command.Kind.PROBE, old.task_id),
    ]
    events = AuditEvent.objects.filter(verb="execution.resent").order_by("seq")
    assert [(e.actor_name, e.incident_id, e.object_id, e.data) for e in events] == [
        (
            "sweeper",
            world.incident.pk,
            str(older.pk),
            event_data(older, "No worker picked it up in 130 s; sent again."),
        ),
        (
            "sweeper",
            world.incident.pk,
            str(old.pk),
            event_data(old, "No worker picked it up in 121 s; sent again."),
        ),
    ]


@override_settings(STALE_QUEUED_AFTER=120)
def test_unclaimed_runs_end_saying_why_and_a_resent_probe_gets_two_bounds(
    world, sent, clock
):
    def queued(command: Command, seconds: float, task_id: str) -> StepExecution:
        ago = timedelta(seconds=seconds)
        return a_run(world, command, State.QUEUED, ago, clock, task_id=task_id)

    # In the order the sweeper reads them (oldest first).
    twice = queued(world.ping, 241, "resent-3")
    edge = queued(world.ping, 240, "resent-2")  # exactly two bounds: still its chance
    second_chance = queued(world.ping, 150, "resent-1")
    action = queued(world.policy, 130, "t-9")
    with CaptureQueriesContext(connection) as queries:
        assert sweeper.sweep_unclaimed() == 2
    assert per_row_loads(queries) == []
    assert sent == []  # nothing is sent a third time, no action a second
    never = "(no worker is running, or the task queue lost it). Nothing ran; press Run again."
    said = {
        twice: f"Not run: no worker picked it up in 241 s, though it was sent twice {never}",
        action: f"Not run: no worker picked it up in 130 s, {never}",
    }
    ended = {
        e.pk: (e.state, e.summary, e.finished_at, e.task_id)
        for e in StepExecution.objects.all()
    }
    assert ended == {
        twice.pk: (State.DISPATCH_FAILED, said[twice], clock, "resent-3"),
        edge.pk: (State.QUEUED, "", None, "resent-2"),
        second_chance.pk: (State.QUEUED, "", None, "resent-1"),
        action.pk: (State.DISPATCH_FAILED, said[action], clock, "t-9"),
    }
    events = AuditEvent.objects.filter(actor_name="sweeper").order_by("seq")
    assert [(e.verb, e.incident_id, e.object_id, e.data) for e in events] == [
        (
            "execution.dispatch_failed",
            world.incident.pk,
            str(e.pk),
            event_data(e, said[e]),
        )
        for e in (twice, action)
    ]


@override_settings(STALE_QUEUED_AFTER=120)
def test_a_probe_claimed_while_the_sweeper_resends_it_is_left_to_its_worker(
    world, sent, clock, monkeypatch, django_capture_on_commit_callbacks
):
    raced = a_run(
        world, world.ping, State.QUEUED, timedelta(seconds=140), clock, task_id="t-1"
    )
    lost = a_run(
        world, world.ping, State.QUEUED, timedelta(seconds=130), clock, task_id="t-2"
    )
    calls = []

    def uuid4() -> uuid.UUID:
        if not calls:  # a worker claims the first just as the sweeper resends it
            assert runner.claim(raced.pk)
        calls.append(1)
        return uuid.uuid4()

    monkeypatch.setattr(sweeper, "uuid", SimpleNamespace(uuid4=uuid4))
    with django_capture_on_commit_callbacks(execute=True):
        assert sweeper.sweep_unclaimed() == 1
    raced.refresh_from_db()
    lost.refresh_from_db()
    assert (raced.state, raced.task_id) == (State.RUNNING, "t-1")
    assert lost.task_id.startswith("resent-")
    assert sent == [(lost.pk, Command.Kind.PROBE, lost.task_id)]
    assert list(
        AuditEvent.objects.filter(verb="execution.resent").values_list(
            "object_id", flat=True
        )
    ) == [str(lost.pk)]


def test_the_claim_and_the_load_are_one_statement_and_give_what_the_run_needs(
    world, django_assert_num_queries
):
    run = a_run(world, world.ping, State.QUEUED, parameters={"a": "b"})
    with django_assert_num_queries(1):
        claimed = runner.claim_and_load(run.pk)
        # Everything the re-check and the result read, already there.
        assert claimed.command.playbook.pk == world.ping.playbook_id
        assert claimed.incident.pk == world.incident.pk
        assert claimed.incident.is_active
        assert claimed.step.number == world.ping.step.number
        assert claimed.requested_by.get_username() == "rita"
        assert claimed.parameters == {"a": "b"}  # JSON, as the ORM reads it
    assert (claimed.state, claimed.pk) == (State.RUNNING, run.pk)
    stored = StepExecution.objects.get(pk=run.pk)
    assert stored.state == State.RUNNING
    assert stored.started_at == claimed.started_at is not None
    # Every column as the ORM would read it.
    loaded = StepExecution.objects.select_related(
        "command__playbook", "incident", "step", "requested_by"
    ).get(pk=run.pk)
    for a, b in (
        (claimed, loaded),
        (claimed.command, loaded.command),
        (claimed.command.playbook, loaded.command.playbook),
        (claimed.incident, loaded.incident),
        (claimed.step, loaded.step),
        (claimed.requested_by, loaded.requested_by),
    ):
        for field in type(a)._meta.concrete_fields:
            assert getattr(a, field.attname) == getattr(b, field.attname), field
    # A second delivery claims nothing, reads nothing more.
    assert runner.claim_and_load(run.pk) is None


def test_a_run_without_step_or_requester_loads_them_as_none(world):
    diagnosis = Command.objects.filter(
        playbook__in=Playbook.objects.current(), step=None, kind=Command.Kind.PROBE
    ).first()
    assert diagnosis is not None, "the runbook has Diagnosis probes"
    incident = open_incident(
        playbook=diagnosis.playbook,
        title="alerted",
        actor=Actor.person(world.people["commander"]),
    )
    run = StepExecution.objects.create(
        incident=incident,
        command=diagnosis,
        state=State.QUEUED,
        requested_as=runner.DIAGNOSIS.name,
    )
    claimed = runner.claim_and_load(run.pk)
    assert claimed.step is None and claimed.requested_by is None
    assert claimed.requested_as == runner.DIAGNOSIS.name
    assert claimed.command == diagnosis and claimed.incident == incident


@pytest.mark.parametrize(
    "state", [State.AWAITING_APPROVAL, State.RUNNING, State.CANCELLED]
)
def test_only_a_queued_run_is_claimed(world, state):
    run = a_run(world, world.ping, state)
    assert runner.claim_and_load(run.pk) is None
    assert StepExecution.objects.get(pk=run.pk).state == state
