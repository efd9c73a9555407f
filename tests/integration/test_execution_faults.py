"""Running commands when things go wrong: dead, silent and slow targets, a killed
worker, a broker that is down, leaky outputs, hostile parameters."""

from __future__ import annotations

import subprocess
import time

import psycopg
import pytest
import redis
from django.db import connection
from django.test import override_settings

from incidents.actors import Actor
from incidents.models import AuditEvent, Command, StepExecution
from incidents.services import (
    RunRefused,
    import_runbook,
    open_incident,
    request_run,
    sweeper,
)
from incidents.services import execution as runner
from probes.commands import confirm_word
from probes.families.sql.runner import bind
from probes.runtime import ParameterError
from tests.conftest import IMPORTER, TEST_RUNBOOKS, grant, signed_in

from .conftest import wait_for
from .targets import ADMIN_TOKEN, DB_PASSWORD_CANARY, free_port

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def faults(make_user, target_env):  # noqa: ANN001, ANN201
    cole = make_user("cole", "Commander")
    runbook = import_runbook(
        source=(TEST_RUNBOOKS / "faults.md").read_bytes(), actor=IMPORTER
    ).runbook
    playbook = runbook.playbooks.get()
    grant(cole, "run_actions", playbooks=[playbook])
    incident = open_incident(playbook=playbook, title="fire", actor=Actor.person(cole))

    def command(step: int, index: int = 0) -> Command:
        return list(playbook.commands.filter(step__number=step).order_by("position"))[
            index
        ]

    def run(step: int, index: int = 0, **params) -> StepExecution:  # noqa: ANN003
        cmd = command(step, index)
        # Approval-required ones break glass here; four eyes have their own tests.
        reason = "fault test" if cmd.requires_approval else ""
        result = request_run(
            incident=incident,
            command=cmd,
            params=params,
            actor=Actor.person(cole),
            confirmation=confirm_word(cmd),
            break_glass_reason=reason,
        )
        return result.execution

    return type(
        "Faults",
        (),
        {
            "incident": incident,
            "user": cole,
            "command": staticmethod(command),
            "run": staticmethod(run),
        },
    )


def counter(target_database: str) -> int:
    with psycopg.connect(target_database) as conn:
        return conn.execute("SELECT n FROM counter").fetchone()[0]


@pytest.mark.usefixtures("worker")
def test_a_target_refusing_connections_is_a_clear_failure(faults):
    db = wait_for(faults.run(2))
    api = wait_for(faults.run(3))
    assert db.state == "failed" and db.summary.startswith(
        "Cannot reach the target database"
    )
    assert (
        api.state == "failed" and "cannot connect (connection refused)" in api.summary
    )


@pytest.mark.usefixtures("worker")
def test_a_target_that_never_answers_times_out_before_the_worker_limit(faults):
    started = time.monotonic()
    silent = wait_for(faults.run(4), seconds=15)
    assert silent.state == "timed_out"
    assert "no answer within" in silent.summary
    assert time.monotonic() - started < 8  # the 3 s client timeout, well before 13 s


@pytest.mark.usefixtures("worker")
def test_pg_sleep_past_the_timeout_is_cancelled_by_statement_timeout(faults):
    slow = wait_for(faults.run(5), seconds=15)
    assert slow.state == "timed_out"
    assert slow.summary.startswith("Cancelled by statement_timeout")


@pytest.mark.usefixtures("worker")
def test_secrets_never_reach_stored_output_the_timeline_or_exports(
    faults, viewer_client
):
    leaky = wait_for(faults.run(6))
    assert leaky.state == "succeeded"
    assert "auth_seen" in leaky.output  # the API did echo the header...
    stored = leaky.output + leaky.summary + leaky.command_text
    assert ADMIN_TOKEN not in stored and DB_PASSWORD_CANARY not in stored  # ...redacted
    assert "Bearer ••••" in leaky.output
    events = str(list(AuditEvent.objects.values_list("data", flat=True)))
    assert ADMIN_TOKEN not in events and DB_PASSWORD_CANARY not in events
    page = viewer_client.get(f"/incidents/{faults.incident.pk}/").content.decode()
    assert ADMIN_TOKEN not in page and DB_PASSWORD_CANARY not in page
    for name in ("postmortem.md", "timeline.json", "timeline.csv"):
        body = b"".join(
            viewer_client.get(
                f"/incidents/{faults.incident.pk}/{name}"
            ).streaming_content
        )
        assert (
            ADMIN_TOKEN.encode() not in body and DB_PASSWORD_CANARY.encode() not in body
        )


@pytest.mark.usefixtures("worker")
def test_redirects_to_other_hosts_are_not_followed(faults):
    redirect = wait_for(faults.run(7))
    assert "→ 302" in redirect.summary and "not followed" in redirect.summary
    assert (
        "169.254.169.254" not in redirect.output.split("\n\n", 1)[-1]
    )  # no body fetched


def test_a_missing_target_says_which_variable_to_set(faults):
    with pytest.raises(RunRefused, match="set TARGET_NOT_CONFIGURED_URL"):
        faults.run(8)
    assert StepExecution.objects.count() == 0


@pytest.mark.usefixtures("worker")
def test_parameters_are_bound_never_pasted_into_sql(faults, target_database):
    revoked = "SELECT count(*) FROM users.session WHERE revokedat IS NOT NULL"
    with psycopg.connect(target_database) as conn:
        before = conn.execute(revoked).fetchone()[0]
    hostile = wait_for(faults.run(10, **{"$1": "x' OR '1'='1"}))
    assert hostile.state == "succeeded" and "UPDATE 0" in hostile.summary
    with psycopg.connect(target_database) as conn:
        assert conn.execute(revoked).fetchone()[0] == before  # it matched no row at all
    # A pid that is not a number is refused when the run is asked for (before any
    # approval), and again by the executor, which never pastes it into the SQL.
    hostile_pid = "1); DROP TABLE counter; --"
    with pytest.raises(RunRefused, match="must be a backend process id"):
        faults.run(11, pid=hostile_pid)
    with pytest.raises(ParameterError, match="must be a backend process id"):
        bind("SELECT pg_terminate_backend(pid);", ["pid"], {"pid": hostile_pid})
    assert counter(target_database) >= 0  # the table is still there


@pytest.mark.usefixtures("worker")
def test_s3_and_smtp_probes_against_moto_and_aiosmtpd(faults):
    import boto3

    from probes import targets

    boto3.client(
        "s3",
        endpoint_url=targets.value("S3_ENDPOINT_URL"),
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="y",
    ).create_bucket(Bucket="yomira-covers")
    head, listing, missing = (wait_for(faults.run(12, i)) for i in range(3))
    assert (head.state, head.summary) == (
        "succeeded",
        "bucket yomira-covers is reachable",
    )
    assert listing.state == "succeeded" and listing.summary.startswith(
        "0 objects in yomira-covers"
    )
    assert missing.state == "failed" and "404" in missing.summary
    mail = wait_for(faults.run(13))
    assert mail.state == "succeeded", mail.summary
    assert "EHLO → 250" in mail.output and "NOOP → 250" in mail.output


@pytest.mark.usefixtures("worker")
def test_a_probe_cannot_write_even_if_bound_as_one(
    faults, target_database, admin_client
):
    command = faults.command(14)
    assert command.kind == "action"
    Command.objects.filter(pk=command.pk).update(kind="probe")  # an admin's mistake
    write = wait_for(faults.run(14))
    assert write.state == "failed" and "read-only" in write.summary
    assert counter(target_database) != 100


def test_a_duplicate_delivery_does_nothing(faults, monkeypatch):
    monkeypatch.setattr(
        "incidents.services.runs.dispatch", lambda *a, **k: None
    )  # deliver by hand
    execution = faults.run(9)
    assert runner.execute(execution.pk) == "succeeded"
    assert runner.execute(execution.pk) is None  # the second delivery claims nothing
    execution.refresh_from_db()
    assert execution.state == "succeeded"
    started = AuditEvent.objects.filter(
        verb="execution.succeeded", object_id=str(execution.pk)
    )
    assert started.count() == 1


def test_a_double_click_and_a_second_responder_make_one_execution(
    faults, make_user, monkeypatch
):
    monkeypatch.setattr(
        "incidents.services.runs.dispatch", lambda *a, **k: None
    )  # keep it queued
    command = faults.command(9)
    url = f"/incidents/{faults.incident.pk}/commands/{command.pk}/run"
    rita = signed_in(make_user("rita", "Responder"))
    cole = signed_in(faults.user)
    for client, key in [(cole, "k1"), (cole, "k1"), (rita, "k2")]:
        assert (
            client.post(url, {"request_key": key}, HTTP_HX_REQUEST="true").status_code
            == 200
        )
    assert StepExecution.objects.filter(command=command).count() == 1


def test_a_permission_revoked_after_the_click_stops_the_run(faults, monkeypatch):
    monkeypatch.setattr("incidents.services.runs.dispatch", lambda *a, **k: None)
    execution = faults.run(9)
    faults.user.groups.clear()  # revoked between the click and the run
    assert runner.execute(execution.pk) == "failed"
    execution.refresh_from_db()
    assert execution.summary == "Not run: the requester may no longer run this command."
    denial = AuditEvent.objects.filter(verb="permission.denied").last()
    assert denial.object_id == str(execution.pk)


def test_the_broker_down_at_dispatch_is_dispatch_failed_within_a_second(
    faults, target_database
):
    """An action, which never runs anywhere but on a worker (a probe runs inline
    instead: tests/integration/test_broker_down_inline.py)."""
    from yomira_console.celery import app

    port = free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    broker = f"redis://127.0.0.1:{port}/0"
    try:
        for _ in range(50):
            try:
                redis.Redis.from_url(broker).ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        saved = app.conf.broker_url
        app.conf.broker_url = broker
        app._pool = None
        app.amqp._producer_pool = None
        server.terminate()
        server.wait(5)  # Redis is now down
        before = counter(target_database)
        started = time.monotonic()
        execution = faults.run(14)  # UPDATE counter SET n = 100
        elapsed = time.monotonic() - started
    finally:
        app.conf.broker_url = saved
        app._pool = None
        app.amqp._producer_pool = None
        server.kill()
    execution.refresh_from_db()
    assert execution.state == "dispatch_failed"
    assert execution.summary.startswith("Not sent: the task queue is unreachable")
    assert "Actions run only on a worker" in execution.summary
    assert counter(target_database) == before  # nothing ran
    assert elapsed < 1.5, elapsed
    mine = AuditEvent.objects.filter(
        object_type="stepexecution", object_id=str(execution.pk)
    ).order_by("seq")
    verbs = list(mine.values_list("verb", flat=True))
    requested = (
        "execution.break_glass" if execution.break_glass else "execution.requested"
    )
    assert verbs == [requested, "execution.dispatch_failed"]  # nothing lost


def test_a_killed_worker_leaves_an_action_outcome_unknown_and_never_reruns_it(
    faults, worker, target_database
):
    execution = faults.run(1)  # UPDATE counter ... pg_sleep(3)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        execution.refresh_from_db()
        if execution.state == "running":
            break
        time.sleep(0.05)
    assert execution.state == "running"
    time.sleep(0.5)  # inside pg_sleep
    worker.kill()
    worker.restart()
    time.sleep(4)  # a redelivery, if there were one, would have run by now
    execution.refresh_from_db()
    assert execution.state == "running"
    assert (
        counter(target_database) == 0
    )  # the killed transaction rolled back; no second run
    with override_settings(STALE_RUNNING_AFTER=0):
        assert sweeper.sweep_stale() == 1
    execution.refresh_from_db()
    assert execution.state == "outcome_unknown"
    assert "Check the target by hand" in execution.summary
    assert AuditEvent.objects.filter(verb="execution.outcome_unknown").count() == 1
    assert connection.vendor == "postgresql"
