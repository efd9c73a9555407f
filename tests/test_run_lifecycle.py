"""A run's life from preview to result, as issue 8 found it could go wrong: one
preview confirms one run; nothing runs on a resolved incident; the Approve button
only for those who may approve; refusals that say exactly what happened, in the
panel that caused them; forms that work without JavaScript; Run keys per person
and page load; queued runs whose message was lost; and the services' own checks
(tested directly, not through the views that check first)."""

# The safety matrix's fixtures are imported by name, so tests name them as
# arguments: that is how pytest uses them, not a redefinition.
# ruff: noqa: F811

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client, override_settings
from django.utils import timezone

from incidents.actors import Actor
from incidents.models import AuditEvent, Command, Incident, StepExecution
from incidents.services import (
    RunRefused,
    change_status,
    decide_approval,
    request_run,
    sweeper,
)
from incidents.services import execution as runner
from tests.conftest import grant, signed_in
from tests.test_safety_matrix import (  # noqa: F401 - fixtures
    decide,
    live_pid,
    post_run,
    preview_then_run,
    targets_and_no_broker,
    waiting,
    world,
)

State = StepExecution.State


def page_of(client: Client, incident: Incident) -> str:
    response = client.get(f"/incidents/{incident.pk}/")
    assert response.status_code == 200
    return response.content.decode()


def run_form(html: str, command: Command) -> str:
    """The Run (or Preview) form inside the command's run panel."""
    panel = html[html.index(f'id="run-{command.pk}"') :]
    return panel[panel.index("<form") : panel.index("</form>")]


def field(form: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', form)
    assert found, f"no {name} in {form[:300]}"
    return found.group(1)


def raw(user) -> Client:  # noqa: ANN001
    """A signed-in client that answers 500s instead of raising them."""
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


# --- point 5: nothing runs on a resolved incident ------------------------------------


def test_an_approval_after_the_incident_is_resolved_is_refused(
    world, waiting, targets_and_no_broker
):
    change_status(
        incident=world.pool,
        to="resolved",
        actor=Actor.person(world.people["commander"]),
    )
    response = decide(world, "approver", waiting)
    assert response.status_code == 409
    assert "The incident is resolved: nothing runs on it" in response.content.decode()
    waiting.refresh_from_db()
    assert waiting.state == State.AWAITING_APPROVAL and targets_and_no_broker == []
    assert not AuditEvent.objects.filter(
        incident=world.pool, verb="execution.approved"
    ).exists()


def test_the_approval_queue_leaves_out_resolved_incidents(world, waiting):
    approvals = signed_in(world.people["approver"])
    assert (
        "SELECT pg_terminate_backend" in approvals.get("/approvals/").content.decode()
    )
    change_status(
        incident=world.pool,
        to="resolved",
        actor=Actor.person(world.people["commander"]),
    )
    page = approvals.get("/approvals/").content.decode()
    assert "SELECT pg_terminate_backend" not in page
    assert "Nothing is waiting for you" in page


def test_the_worker_refuses_a_run_whose_incident_was_resolved_after_approval(
    world, waiting
):
    decide_approval(
        execution=waiting, approve=True, actor=Actor.person(world.people["approver"])
    )
    change_status(
        incident=world.pool,
        to="resolved",
        actor=Actor.person(world.people["commander"]),
    )
    assert runner.execute(waiting.pk) == State.FAILED
    waiting.refresh_from_db()
    assert (
        waiting.summary == "Not run: the incident was resolved before the run started."
    )
    assert AuditEvent.objects.filter(
        incident=world.pool, verb="permission.denied", object_id=str(waiting.pk)
    ).exists()


# --- point 6: one preview, one run ---------------------------------------------------


def test_a_preview_confirms_one_run_and_cannot_be_replayed(world):
    gina = signed_in(world.people["granted"])
    shown = gina.post(
        f"/incidents/{world.incident.pk}/commands/{world.policy.pk}/preview",
        HTTP_HX_REQUEST="true",
    )
    token = field(shown.content.decode(), "preview")

    def confirm(key: str):  # noqa: ANN202
        return post_run(
            gina,
            world.incident,
            world.policy,
            preview=token,
            confirmation="config",
            request_key=key,
        )

    # A double click (same key, same preview) is the same run, not a refusal.
    assert confirm("k1").status_code == 200
    assert confirm("k1").status_code == 200
    run = StepExecution.objects.get(command=world.policy)
    StepExecution.objects.filter(pk=run.pk).update(state=State.SUCCEEDED)
    # Once that run is over, the same preview runs nothing again.
    replay = confirm("k2")
    assert replay.status_code == 400
    confirmed = AuditEvent.objects.get(
        incident=world.incident, verb="execution.requested", object_id=str(run.pk)
    )
    assert confirmed.data["preview"]  # the run records the preview it used
    assert (
        f"That preview already confirmed a run at {confirmed.created_at:%H:%M:%S} UTC"
        in replay.content.decode()
    )
    assert StepExecution.objects.filter(command=world.policy).count() == 1


# --- point 15: the Approve button, and the real reason --------------------------------


def test_only_people_who_may_approve_a_request_are_offered_the_button(
    world, waiting, make_user
):
    gina = world.people["granted"]
    # Someone with exactly gina's rights draws (and caches) the page first.
    twin = make_user("gus", "Commander")
    grant(twin, "run_actions", "approve_actions", playbooks=[world.pool.playbook])
    grant(gina, "approve_actions", playbooks=[world.pool.playbook])
    assert "Approve and run" in page_of(signed_in(twin), world.pool)
    assert "Approve and run" not in page_of(signed_in(gina), world.pool)
    assert "Approve and run" in page_of(signed_in(world.people["approver"]), world.pool)


def test_the_requester_is_told_four_eyes_in_the_panel(world, waiting):
    grant(world.people["granted"], "approve_actions", playbooks=[world.pool.playbook])
    response = decide(world, "granted", waiting)
    html = response.content.decode()
    assert response.status_code == 403
    assert "Four eyes: someone else must approve your request." in html
    assert "approve_actions" not in html
    assert f'id="run-error-{world.terminate.pk}"' in html
    waiting.refresh_from_db()
    assert waiting.state == State.AWAITING_APPROVAL
    denial = AuditEvent.objects.filter(
        incident=world.pool, verb="permission.denied"
    ).last()
    assert denial.data["why"] == "the requester cannot approve"


def test_without_javascript_the_requester_gets_the_four_eyes_page(world, waiting):
    grant(world.people["granted"], "approve_actions", playbooks=[world.pool.playbook])
    response = signed_in(world.people["granted"]).post(
        f"/incidents/{world.pool.pk}/executions/{waiting.pk}/decide",
        {"decision": "approve"},
    )
    assert response.status_code == 403
    assert "Four eyes" in response.content.decode()


# --- point 16: say exactly what happened ----------------------------------------------


def test_deciding_a_request_someone_already_decided_says_who_and_when(
    world, waiting, make_user
):
    grant(
        make_user("amy", "Commander"),
        "approve_actions",
        playbooks=[world.pool.playbook],
    )
    world.people["amy"] = world.people["approver"].__class__.objects.get(username="amy")
    assert decide(world, "approver", waiting).status_code == 200
    waiting.refresh_from_db()
    late = decide(world, "amy", waiting)
    html = late.content.decode()
    assert late.status_code == 409
    assert (
        f"abe already approved this request at {waiting.approved_at:%H:%M:%S} UTC; "
        "the run is queued." in html
    )
    assert "is queued, not waiting" not in html


def test_a_rejected_request_says_who_rejected_it(world, waiting):
    assert decide(world, "approver", waiting, "reject", "wrong pid").status_code == 200
    html = decide(world, "approver", waiting).content.decode()
    assert "abe already rejected this request at" in html


def test_changed_parameters_are_named_as_parameters_not_as_the_command(world, waiting):
    StepExecution.objects.filter(pk=waiting.pk).update(parameters={"pid": "1"})
    html = decide(world, "approver", waiting).content.decode()
    assert "The parameters changed since it was requested" in html
    assert "command" not in html.split("changed since")[0].lower()[-60:]


def test_a_rebound_command_is_named_as_the_command(world, waiting):
    Command.objects.filter(pk=world.terminate.pk).update(
        spec={**world.terminate.spec, "x": 1}
    )
    html = decide(world, "approver", waiting).content.decode()
    assert "The command (its text or binding) changed since it was requested" in html


# --- the worker's fingerprint re-check (a mutation survived it) -----------------------


@pytest.mark.parametrize(
    ("tamper", "said"),
    [
        ("parameters", "Not run: the parameters changed after it was requested"),
        ("binding", "Not run: the command (its text or binding) changed after it"),
    ],
)
def test_the_worker_refuses_a_run_whose_command_or_parameters_changed(
    world, waiting, tamper, said
):
    decide_approval(
        execution=waiting, approve=True, actor=Actor.person(world.people["approver"])
    )
    if tamper == "parameters":
        StepExecution.objects.filter(pk=waiting.pk).update(parameters={"pid": "1"})
    else:
        Command.objects.filter(pk=world.terminate.pk).update(text="SELECT 1")
    assert runner.execute(waiting.pk) == State.FAILED
    waiting.refresh_from_db()
    assert waiting.summary.startswith(said)


# --- point 9 and NULs: bad input is a 400 with a message ------------------------------


def test_a_request_key_over_64_characters_is_refused_not_cut(world):
    rita = raw(world.people["responder"])
    key = "k" * 65
    response = post_run(rita, world.incident, world.ping, request_key=key)
    assert response.status_code == 400
    assert "request key is malformed" in response.content.decode()
    assert not StepExecution.objects.filter(command=world.ping).exists()
    # 64 is the column's size: a double click with it runs once.
    for _ in range(2):
        ok = post_run(rita, world.incident, world.ping, request_key="k" * 64)
        assert ok.status_code == 200
        StepExecution.objects.filter(command=world.ping).update(state=State.SUCCEEDED)
    assert StepExecution.objects.filter(command=world.ping).count() == 1


def test_nul_bytes_in_a_request_key_or_a_reason_are_a_400(world, waiting):
    rita = raw(world.people["responder"])
    response = post_run(rita, world.incident, world.ping, request_key="a\x00b")
    assert response.status_code == 400
    assert not StepExecution.objects.filter(command=world.ping).exists()
    abe = raw(world.people["approver"])
    rejected = abe.post(
        f"/incidents/{world.pool.pk}/executions/{waiting.pk}/decide",
        {"decision": "reject", "reason": "bad\x00pid"},
        HTTP_HX_REQUEST="true",
    )
    assert rejected.status_code == 409
    assert "NUL" in rejected.content.decode()
    waiting.refresh_from_db()
    assert waiting.state == State.AWAITING_APPROVAL


# --- errors belong in the panel that caused them --------------------------------------


def test_a_wrong_word_answers_in_the_panel_and_leaves_the_rest_alone(world):
    gina = signed_in(world.people["granted"])
    response = preview_then_run(gina, world.incident, world.policy, confirmation="yes")
    html = response.content.decode()
    assert response.status_code == 400
    assert re.search(rf'id="run-error-{world.policy.pk}"[^>]*hx-swap-oob="true"', html)
    assert "Type “config” to confirm this action." in html
    # Nothing else is swapped: not the steps (the preview stays), not the page.
    assert (
        'id="step-' not in html and 'id="run-' + str(world.policy.pk) + '"' not in html
    )
    assert response["X-Console-Explained"] == "1"


# --- no JavaScript: the Run and Preview forms carry their CSRF token ------------------


def test_run_and_preview_work_without_javascript(world):
    gina = Client(enforce_csrf_checks=True)
    gina.force_login(world.people["granted"])
    html = page_of(gina, world.incident)
    probe = run_form(html, world.ping)
    response = gina.post(
        f"/incidents/{world.incident.pk}/commands/{world.ping.pk}/run",
        {
            "csrfmiddlewaretoken": field(probe, "csrfmiddlewaretoken"),
            "request_key": field(probe, "request_key"),
        },
    )
    assert response.status_code == 302
    assert StepExecution.objects.filter(command=world.ping).count() == 1

    html = page_of(gina, world.incident)
    action = run_form(html, world.policy)
    shown = gina.post(
        f"/incidents/{world.incident.pk}/commands/{world.policy.pk}/preview",
        {"csrfmiddlewaretoken": field(action, "csrfmiddlewaretoken")},
    )
    assert shown.status_code == 200  # a page with the preview and its form
    page = shown.content.decode()
    assert "Will send to Redis" in page
    confirm = run_form(page, world.policy)
    done = gina.post(
        f"/incidents/{world.incident.pk}/commands/{world.policy.pk}/run",
        {
            "csrfmiddlewaretoken": field(confirm, "csrfmiddlewaretoken"),
            "request_key": field(confirm, "request_key"),
            "preview": field(confirm, "preview"),
            "confirmation": "config",
        },
    )
    assert done.status_code == 302
    assert StepExecution.objects.filter(command=world.policy).count() == 1


# --- faults (c): the Run key is per person and per page load --------------------------


def test_run_keys_differ_per_person_and_page_load(world, make_user):
    rita = signed_in(world.people["responder"])
    ralph = signed_in(make_user("ralph", "Responder"))  # same rights: same cache
    keys = [
        field(run_form(page_of(client, world.incident), world.ping), "request_key")
        for client in (rita, ralph, rita)
    ]
    assert len(set(keys)) == 3, keys


def test_a_second_person_with_the_first_ones_key_gets_a_run_of_their_own(
    world, make_user
):
    rita = signed_in(world.people["responder"])
    ralph = signed_in(make_user("ralph", "Responder"))
    assert (
        post_run(rita, world.incident, world.ping, request_key="shared").status_code
        == 200
    )
    StepExecution.objects.filter(command=world.ping).update(state=State.SUCCEEDED)
    assert (
        post_run(ralph, world.incident, world.ping, request_key="shared").status_code
        == 200
    )
    runs = StepExecution.objects.filter(command=world.ping).order_by("pk")
    assert [r.requested_by.username for r in runs] == ["rita", "ralph"]
    assert AuditEvent.objects.filter(
        incident=world.incident, verb="execution.requested", actor_name="ralph"
    ).exists()


# --- services tested directly (the views check first; mutations survived) -------------


def test_the_service_refuses_the_requester_even_with_approve_actions(world, waiting):
    grant(world.people["granted"], "approve_actions", playbooks=[world.pool.playbook])
    with pytest.raises(RunRefused, match="^Four eyes: someone else must approve"):
        decide_approval(
            execution=waiting, approve=True, actor=Actor.person(world.people["granted"])
        )
    waiting.refresh_from_db()
    assert waiting.state == State.AWAITING_APPROVAL and waiting.approved_by is None


@pytest.mark.parametrize(
    "finished", [State.SUCCEEDED, State.FAILED, State.QUEUED, State.OUTCOME_UNKNOWN]
)
def test_a_request_no_longer_waiting_is_never_decided_again(
    world, waiting, targets_and_no_broker, finished, django_capture_on_commit_callbacks
):
    StepExecution.objects.filter(pk=waiting.pk).update(state=finished)
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(RunRefused, match="no longer waiting for approval"),
    ):
        decide_approval(
            execution=waiting,
            approve=True,
            actor=Actor.person(world.people["approver"]),
        )
    waiting.refresh_from_db()
    assert waiting.state == finished and targets_and_no_broker == []
    assert not AuditEvent.objects.filter(
        incident=world.pool, verb="execution.approved"
    ).exists()


def test_only_overdue_approval_requests_expire(world, waiting, make_user):
    gina = world.people["granted"]
    fresh = request_run(
        incident=world.pool,
        command=world.terminate,
        params={"pid": "7"},
        actor=Actor.person(gina),
        confirmation="terminate",
    ).execution
    StepExecution.objects.filter(pk=waiting.pk).update(
        approval_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert sweeper.expire_approvals() == 1
    waiting.refresh_from_db()
    fresh.refresh_from_db()
    assert waiting.state == State.CANCELLED
    assert fresh.state == State.AWAITING_APPROVAL


# --- the running sweeper: its cutoff and its probe branch -----------------------------


def running(world, command: Command, started_ago: timedelta) -> StepExecution:  # noqa: ANN001
    return StepExecution.objects.create(
        incident=world.incident,
        step=command.step,
        command=command,
        state=State.RUNNING,
        requested_by=world.people["responder"],
        started_at=timezone.now() - started_ago,
        created_at=timezone.now() - started_ago,
    )


@override_settings(STALE_RUNNING_AFTER=600)
def test_the_sweeper_leaves_live_runs_alone_and_fails_stale_probes(world):
    live = running(world, world.ping, timedelta(seconds=30))
    stale = running(world, world.ping, timedelta(seconds=601))
    action = running(world, world.policy, timedelta(seconds=601))
    assert sweeper.sweep_stale() == 2
    for e in (live, stale, action):
        e.refresh_from_db()
    assert live.state == State.RUNNING
    assert stale.state == State.FAILED
    assert (
        stale.summary == "The worker stopped before this probe finished; run it again."
    )
    assert action.state == State.OUTCOME_UNKNOWN
    assert AuditEvent.objects.filter(
        incident=world.incident,
        verb="execution.failed",
        object_id=str(stale.pk),
        actor_name="sweeper",
    ).exists()


# --- faults (a): a queued run whose message was lost ----------------------------------


def queued(world, command: Command, ago: timedelta, **fields) -> StepExecution:  # noqa: ANN001, ANN003
    return StepExecution.objects.create(
        incident=world.incident,
        step=command.step,
        command=command,
        state=State.QUEUED,
        requested_by=world.people["granted"],
        created_at=timezone.now() - ago,
        **fields,
    )


@override_settings(STALE_QUEUED_AFTER=120)
def test_an_unclaimed_probe_is_sent_again_once_then_ended(
    world, monkeypatch, django_capture_on_commit_callbacks
):
    sent: list[tuple] = []
    monkeypatch.setattr("incidents.services.runs.dispatch", lambda *a: sent.append(a))
    live = queued(world, world.ping, timedelta(seconds=10))
    lost = queued(world, world.ping, timedelta(seconds=121))
    with django_capture_on_commit_callbacks(execute=True):
        assert sweeper.sweep_unclaimed() == 1
    lost.refresh_from_db()
    assert lost.state == State.QUEUED and lost.task_id.startswith("resent-")
    assert sent == [(lost.pk, Command.Kind.PROBE, lost.task_id)]
    resent = AuditEvent.objects.filter(incident=world.incident, verb="execution.resent")
    assert resent.count() == 1
    # Its second message gets a whole bound as well...
    with django_capture_on_commit_callbacks(execute=True):
        assert sweeper.sweep_unclaimed() == 0
    # ...and when that is lost too, it ends, saying so; the live one is untouched.
    StepExecution.objects.filter(pk=lost.pk).update(
        created_at=timezone.now() - timedelta(seconds=241)
    )
    assert sweeper.sweep_unclaimed() == 1
    lost.refresh_from_db()
    live.refresh_from_db()
    assert lost.state == State.DISPATCH_FAILED
    assert "no worker picked it up" in lost.summary and "twice" in lost.summary
    assert live.state == State.QUEUED and len(sent) == 1


@override_settings(STALE_QUEUED_AFTER=120)
def test_an_unclaimed_action_ends_not_run_and_a_late_delivery_does_nothing(world):
    lost = queued(world, world.policy, timedelta(seconds=121))
    # Requested long ago but approved just now: queued only since the approval.
    approved = queued(
        world,
        world.policy,
        timedelta(hours=1),
        approved_at=timezone.now() - timedelta(seconds=5),
        approved_by=world.people["approver"],
    )
    assert sweeper.sweep_unclaimed() == 1
    lost.refresh_from_db()
    approved.refresh_from_db()
    assert lost.state == State.DISPATCH_FAILED
    assert lost.summary.startswith("Not run: no worker picked it up in 12")
    assert "Nothing ran" in lost.summary
    assert approved.state == State.QUEUED
    event = AuditEvent.objects.get(
        incident=world.incident, verb="execution.dispatch_failed"
    )
    assert event.actor_name == "sweeper" and event.object_id == str(lost.pk)
    assert runner.execute(lost.pk) is None  # the message turns up late: no run
    lost.refresh_from_db()
    assert lost.state == State.DISPATCH_FAILED


@pytest.mark.django_db(transaction=True)
def test_one_preview_confirmed_from_four_tabs_at_once_runs_once(world):
    from tests.test_concurrency import run_together

    gina = signed_in(world.people["granted"])
    shown = gina.post(
        f"/incidents/{world.incident.pk}/commands/{world.policy.pk}/preview",
        HTTP_HX_REQUEST="true",
    )
    token = field(shown.content.decode(), "preview")
    clients = [signed_in(world.people["granted"]) for _ in range(4)]
    jobs = [
        lambda c=c, key=f"tab-{i}": post_run(
            c,
            world.incident,
            world.policy,
            preview=token,
            confirmation="config",
            request_key=key,
        )
        for i, c in enumerate(clients)
    ]
    responses = run_together(*jobs)
    assert sorted(r.status_code for r in responses) == [200, 400, 400, 400]
    assert StepExecution.objects.filter(command=world.policy).count() == 1
    refused = [r for r in responses if r.status_code == 400]
    assert all("already confirmed a run" in r.content.decode() for r in refused)


# --- found in the newcomer walk ----------------------------------------------------


def test_break_glass_pressed_without_a_reason_files_nothing(
    world, targets_and_no_broker
):
    gina = signed_in(world.people["granted"])
    response = preview_then_run(
        gina, world.pool, world.terminate, {"pid": live_pid()}, mode="break_glass"
    )
    assert response.status_code == 400
    assert "Breaking glass needs a reason" in response.content.decode()
    assert not StepExecution.objects.filter(command=world.terminate).exists()
    assert targets_and_no_broker == []


def test_a_parameter_the_executor_would_refuse_is_refused_before_any_approval(
    world, targets_and_no_broker
):
    gina = signed_in(world.people["granted"])
    preview = gina.post(
        f"/incidents/{world.pool.pk}/commands/{world.terminate.pk}/preview",
        {"param-pid": "abc"},
        HTTP_HX_REQUEST="true",
    )
    assert preview.status_code == 400
    assert "pid must be a backend process id" in preview.content.decode()
    with pytest.raises(RunRefused, match="pid must be a backend process id"):
        request_run(
            incident=world.pool,
            command=world.terminate,
            params={"pid": "abc"},
            confirmation="terminate",
            actor=Actor.person(world.people["granted"]),
        )
    assert not StepExecution.objects.filter(command=world.terminate).exists()
