"""Who may do what, endpoint by endpoint, including the POSTs no button sends.
Every refusal is a 403 (or a refusal fragment) and, for permissions, an audit event."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from incidents.actors import Actor
from incidents.models import AuditEvent, Command, Playbook, StepExecution
from incidents.services import RunRefused, decide_approval, open_incident, request_run
from incidents.services import execution as runner
from probes.commands import confirm_word
from tests.conftest import IMPORTER, grant, signed_in
from tests.stack import console_server


@pytest.fixture(autouse=True)
def targets_and_no_broker(monkeypatch):
    monkeypatch.setenv("TARGET_REDIS_URL", "redis://127.0.0.1:6379/14")
    monkeypatch.setenv("TARGET_DATABASE_URL", console_server("postgres"))
    monkeypatch.setenv("TARGET_ADMIN_TOKEN", "matrix-token")
    sent = []
    monkeypatch.setattr(
        "incidents.services.runs.dispatch",
        lambda pk, kind, task_id=None: sent.append(pk),
    )
    return sent


def live_pid() -> str:
    """A backend that is running: this test's own connection, on the server the
    target URL names. Signalling a pid that is not running finds nothing to act
    on, and such a preview confirms no run."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return str(cursor.fetchone()[0])


@pytest.fixture
def world(yomira, make_user):
    people = {
        "nobody": make_user("nora"),
        "viewer": make_user("vera", "Viewer"),
        "responder": make_user("rita", "Responder"),
        "commander": make_user("cole", "Commander"),
        "granted": make_user("gina", "Commander"),  # run_actions on §4 and §5
        "approver": make_user("abe", "Commander"),  # approve_actions on §5
        "elsewhere": make_user("eli", "Commander"),  # run_actions on §9 only
        "admin": make_user("ada", is_superuser=True, is_staff=True),
    }
    redis_down, pool = (Playbook.objects.current().get(number=n) for n in (4, 5))
    grant(people["granted"], "run_actions", playbooks=[redis_down, pool])
    grant(people["approver"], "approve_actions", playbooks=[pool])
    grant(
        people["elsewhere"],
        "run_actions",
        playbooks=[Playbook.objects.current().get(number=9)],
    )
    incident = open_incident(
        playbook=redis_down, title="redis", actor=Actor.person(people["commander"])
    )
    pool_incident = open_incident(
        playbook=pool, title="pool", actor=Actor.person(people["commander"])
    )
    return type(
        "World",
        (),
        {
            "people": people,
            "incident": incident,
            "pool": pool_incident,
            "ping": redis_down.commands.get(text__contains="ping"),
            "policy": redis_down.commands.get(text__contains="config set"),
            "terminate": pool.commands.get(text__startswith="SELECT pg_terminate"),
        },
    )


def post_run(client, incident, command, **data):  # noqa: ANN001, ANN003, ANN201
    return client.post(
        f"/incidents/{incident.pk}/commands/{command.pk}/run",
        data,
        HTTP_HX_REQUEST="true",
    )


def preview_then_run(client, incident, command, params=None, **data):  # noqa: ANN001, ANN003, ANN201
    fields = {f"param-{k}": v for k, v in (params or {}).items()}
    shown = client.post(
        f"/incidents/{incident.pk}/commands/{command.pk}/preview",
        fields,
        HTTP_HX_REQUEST="true",
    )
    if shown.status_code != 200:
        return shown
    token = re.search(r'name="preview" value="([^"]+)"', shown.content.decode()).group(
        1
    )
    data.setdefault("confirmation", confirm_word(command))
    return post_run(client, incident, command, preview=token, **fields, **data)


PROBE = {
    "nobody": 403,
    "viewer": 403,
    "responder": 200,
    "commander": 200,
    "granted": 200,
    "approver": 200,
    "elsewhere": 200,
    "admin": 200,
}
ACTION = {
    "nobody": 403,
    "viewer": 403,
    "responder": 403,
    "commander": 403,
    "granted": 200,
    "approver": 403,
    "elsewhere": 403,
    "admin": 200,
}


@pytest.mark.parametrize("who", sorted(PROBE))
def test_who_may_run_a_probe(world, who):
    response = post_run(signed_in(world.people[who]), world.incident, world.ping)
    assert response.status_code == PROBE[who]
    assert StepExecution.objects.filter(command=world.ping).count() == (
        PROBE[who] == 200
    )


@pytest.mark.parametrize("who", sorted(ACTION))
def test_actions_are_denied_unless_granted_on_this_playbook(world, who):
    response = preview_then_run(
        signed_in(world.people[who]), world.incident, world.policy
    )
    assert response.status_code == ACTION[who], who
    assert StepExecution.objects.filter(command=world.policy).count() == (
        ACTION[who] == 200
    )
    if ACTION[who] == 403:
        denial = AuditEvent.objects.filter(verb="permission.denied").last()
        assert denial.actor_id == world.people[who].pk
        # Those who cannot see incidents are stopped there; the rest at the action.
        assert denial.data["permission"] in {
            "incidents.view_incident",
            "incidents.run_actions",
        }


def test_a_direct_post_without_preview_or_word_is_refused(world):
    client = signed_in(world.people["granted"])
    no_preview = post_run(client, world.incident, world.policy, confirmation="config")
    assert no_preview.status_code == 400
    assert "Preview the action first" in no_preview.content.decode()
    forged = post_run(
        client, world.incident, world.policy, confirmation="config", preview="x:y:z"
    )
    assert "Preview the action first" in forged.content.decode()
    no_word = preview_then_run(client, world.incident, world.policy, confirmation="")
    assert (
        no_word.status_code == 400
    )  # the helper's word is overridden by the empty one
    assert StepExecution.objects.filter(command=world.policy).count() == 0


def test_a_preview_is_bound_to_its_parameters_and_person(world):
    gina, cole = signed_in(world.people["granted"]), signed_in(world.people["admin"])
    pid = live_pid()
    shown = gina.post(
        f"/incidents/{world.pool.pk}/commands/{world.terminate.pk}/preview",
        {"param-pid": pid},
        HTTP_HX_REQUEST="true",
    )
    token = re.search(r'name="preview" value="([^"]+)"', shown.content.decode()).group(
        1
    )
    other_pid = post_run(
        gina,
        world.pool,
        world.terminate,
        preview=token,
        confirmation="terminate",
        **{"param-pid": "222"},
    )
    assert "changed since the preview" in other_pid.content.decode()
    someone_else = post_run(
        cole,
        world.pool,
        world.terminate,
        preview=token,
        confirmation="terminate",
        **{"param-pid": pid},
    )
    assert "another command or person" in someone_else.content.decode()
    assert StepExecution.objects.filter(command=world.terminate).count() == 0


def test_a_command_from_a_playbook_without_rights_is_refused(world):
    # eli may run §9's actions, not §4's: using §4's incident and command is refused...
    eli = signed_in(world.people["elsewhere"])
    assert preview_then_run(eli, world.incident, world.policy).status_code == 403
    # ...and a command id from another playbook through this incident is not found.
    drop = Command.objects.get(
        playbook__number=9,
        playbook__runbook__is_current=True,
        text__startswith="DROP TABLE",
    )
    assert post_run(eli, world.incident, drop).status_code == 404


@pytest.fixture
def waiting(world, targets_and_no_broker):
    gina = signed_in(world.people["granted"])
    response = preview_then_run(gina, world.pool, world.terminate, {"pid": live_pid()})
    assert response.status_code == 200
    execution = StepExecution.objects.get(command=world.terminate)
    assert execution.state == "awaiting_approval" and targets_and_no_broker == []
    return execution


def decide(world, who, execution, decision="approve", reason=""):  # noqa: ANN001, ANN201
    client = signed_in(world.people[who])
    return client.post(
        f"/incidents/{execution.incident_id}/executions/{execution.pk}/decide",
        {"decision": decision, "reason": reason},
        HTTP_HX_REQUEST="true",
    )


def test_four_eyes_a_second_person_approves_and_the_run_is_sent(
    world, waiting, targets_and_no_broker, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        assert decide(world, "approver", waiting).status_code == 200
    waiting.refresh_from_db()
    assert (waiting.state, waiting.approved_by, targets_and_no_broker) == (
        "queued",
        world.people["approver"],
        [waiting.pk],
    )
    verbs = list(
        AuditEvent.objects.filter(
            object_type="stepexecution", object_id=str(waiting.pk)
        ).values_list("verb", "actor_name")
    )
    assert verbs == [
        ("execution.approval_requested", "gina"),
        ("execution.approved", "abe"),
    ]


def test_nobody_approves_their_own_request(world, waiting):
    grant(world.people["granted"], "approve_actions", playbooks=[world.pool.playbook])
    assert decide(world, "granted", waiting).status_code == 403
    waiting.refresh_from_db()
    assert waiting.state == "awaiting_approval"
    denial = AuditEvent.objects.filter(verb="permission.denied").last()
    assert denial.data["why"] == "the requester cannot approve"


@pytest.mark.parametrize("who", ["commander", "responder", "viewer", "elsewhere"])
def test_only_holders_of_approve_actions_approve(world, waiting, who):
    assert decide(world, who, waiting).status_code == 403
    waiting.refresh_from_db()
    assert waiting.state == "awaiting_approval"


def test_a_rejection_needs_a_reason_and_stops_the_run(
    world, waiting, targets_and_no_broker
):
    assert decide(world, "approver", waiting, "reject").status_code == 409
    assert decide(world, "approver", waiting, "reject", "wrong pid").status_code == 200
    waiting.refresh_from_db()
    assert (
        waiting.state == "rejected" and waiting.summary == "Rejected by abe: wrong pid"
    )
    assert targets_and_no_broker == []


def test_an_expired_request_cannot_be_approved(world, waiting):
    StepExecution.objects.filter(pk=waiting.pk).update(
        approval_expires_at=timezone.now() - timedelta(seconds=1)
    )
    response = decide(world, "approver", waiting)
    assert response.status_code == 409 and "expired" in response.content.decode()
    waiting.refresh_from_db()
    assert waiting.state == "cancelled"
    assert AuditEvent.objects.filter(verb="execution.expired").count() == 1


def test_parameters_changed_after_the_request_void_the_approval(world, waiting):
    StepExecution.objects.filter(pk=waiting.pk).update(parameters={"pid": "1"})
    response = decide(world, "approver", waiting)
    assert (
        response.status_code == 409
        and "changed since it was requested" in response.content.decode()
    )


def test_a_command_rebound_after_the_request_voids_the_approval(world, waiting):
    Command.objects.filter(pk=world.terminate.pk).update(
        spec={**world.terminate.spec, "x": 1}
    )
    assert decide(world, "approver", waiting).status_code == 409


def test_a_permission_revoked_between_approval_and_run_stops_the_run(world, waiting):
    decide_approval(
        execution=waiting, approve=True, actor=Actor.person(world.people["approver"])
    )
    from guardian.shortcuts import remove_perm

    remove_perm(
        "incidents.approve_actions", world.people["approver"], world.pool.playbook
    )
    assert runner.execute(waiting.pk) == "failed"
    waiting.refresh_from_db()
    assert (
        waiting.summary
        == "Not run: the approver may no longer approve this playbook's actions."
    )
    assert AuditEvent.objects.filter(
        verb="permission.denied", object_id=str(waiting.pk)
    ).exists()


def test_a_requester_whose_grant_is_revoked_before_the_run_is_stopped(world, waiting):
    decide_approval(
        execution=waiting, approve=True, actor=Actor.person(world.people["approver"])
    )
    from guardian.shortcuts import remove_perm

    remove_perm("incidents.run_actions", world.people["granted"], world.pool.playbook)
    assert runner.execute(waiting.pk) == "failed"
    waiting.refresh_from_db()
    assert waiting.summary == "Not run: the requester may no longer run this command."


def test_break_glass_runs_alone_with_a_loud_reason(
    world, targets_and_no_broker, django_capture_on_commit_callbacks
):
    gina = signed_in(world.people["granted"])
    with django_capture_on_commit_callbacks(execute=True):
        response = preview_then_run(
            gina,
            world.pool,
            world.terminate,
            {"pid": live_pid()},
            break_glass_reason="DB is down, nobody else awake",
        )
    assert response.status_code == 200
    execution = StepExecution.objects.get(command=world.terminate)
    assert (
        execution.state == "queued" and execution.break_glass and targets_and_no_broker
    )
    event = AuditEvent.objects.get(verb="execution.break_glass")
    assert event.data["reason"] == "DB is down, nobody else awake"
    page = gina.get(f"/incidents/{world.pool.pk}/").content.decode()
    assert "BROKE GLASS" in page and "BREAK-GLASS" in page
    text = b"".join(
        gina.get(f"/incidents/{world.pool.pk}/postmortem.md").streaming_content
    ).decode()
    assert "## Break-glass actions" in text and "DB is down, nobody else awake" in text


def test_only_commanders_break_glass(world, make_user):
    rebel = make_user("rex", "Responder")
    grant(rebel, "run_actions", playbooks=[world.pool.playbook])
    with pytest.raises(RunRefused, match="Only a commander"):
        request_run(
            incident=world.pool,
            command=world.terminate,
            params={"pid": "1"},
            actor=Actor.person(rebel),
            confirmation="terminate",
            break_glass_reason="because",
        )


def test_grants_follow_a_playbook_into_a_new_revision_and_are_audited(
    world, yomira_source
):
    from guardian.shortcuts import get_perms

    from incidents.services import import_runbook

    assert (
        AuditEvent.objects.filter(
            verb="grant.changed", data__what="object permission"
        ).count()
        >= 4
    )
    import_runbook(
        source=yomira_source.replace(b"1. **Verify:**", b"1. **Verify it:**"),
        actor=IMPORTER,
    )
    new_pool = Playbook.objects.current().get(number=5)
    assert new_pool.pk != world.pool.playbook_id
    assert set(get_perms(world.people["granted"], new_pool)) == {"run_actions"}
    assert set(get_perms(world.people["approver"], new_pool)) == {"approve_actions"}


def test_the_access_page_lists_every_person_and_what_they_may_do(world):
    page = signed_in(world.people["viewer"]).get(
        "/playbooks/db-connection-pool-exhausted/access/"
    )
    html = page.content.decode()
    row = html[html.index("<td>gina</td>") :][:400]
    assert row.count("✓") >= 3 and "granted here: run_actions" in row
    row = html[html.index("<td>abe</td>") :][:400]
    assert "granted here: approve_actions" in row


def test_the_approval_queue_shows_what_waits_for_me(world, waiting):
    page = signed_in(world.people["approver"]).get("/approvals/").content.decode()
    assert "SELECT pg_terminate_backend" in page and "gina" in page
    assert (
        "Nothing is waiting for you"
        in signed_in(world.people["granted"]).get("/approvals/").content.decode()
    )
    assert Group.objects.filter(name="Commander").exists()


# --- the approval services and preview tokens, line by line (pinned by mutants) ----


def test_a_decision_is_audited_with_who_asked_what_and_from_where(
    world, waiting, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        assert decide(world, "approver", waiting).status_code == 200
    event = AuditEvent.objects.get(verb="execution.approved")
    assert (event.actor_name, event.incident_id, event.ip) == (
        "abe",
        world.pool.pk,
        "127.0.0.1",
    )
    assert event.data == {
        "step": waiting.step.number,
        "command": waiting.command_text,
        "reason": "",
        "requested_by": "gina",
    }


def test_an_expired_request_says_when_it_expired(world, waiting):
    expired_at = timezone.now() - timedelta(seconds=1)
    StepExecution.objects.filter(pk=waiting.pk).update(approval_expires_at=expired_at)
    waiting.refresh_from_db()
    with pytest.raises(RunRefused) as refused:
        decide_approval(
            execution=waiting,
            approve=True,
            actor=Actor.person(world.people["approver"]),
        )
    assert str(refused.value) == (
        f"The request expired at {expired_at:%H:%M:%S} UTC; ask for it again."
    )
    waiting.refresh_from_db()
    assert waiting.state == "cancelled"


def test_a_decided_request_past_its_expiry_says_who_decided_it(world, waiting):
    decide_approval(
        execution=waiting, approve=True, actor=Actor.person(world.people["approver"])
    )
    StepExecution.objects.filter(pk=waiting.pk).update(
        approval_expires_at=timezone.now() - timedelta(seconds=1)
    )
    waiting.refresh_from_db()
    with pytest.raises(RunRefused) as refused:
        decide_approval(
            execution=waiting, approve=True, actor=Actor.person(world.people["admin"])
        )
    assert str(refused.value) == (
        f"abe already approved this request at {waiting.approved_at:%H:%M:%S} UTC; "
        "the run is queued."
    )
    assert not AuditEvent.objects.filter(verb="execution.expired").exists()


def test_a_rejection_called_without_a_reason_is_refused(world, waiting):
    approver = world.people["approver"]
    with pytest.raises(RunRefused) as refused:
        decide_approval(execution=waiting, approve=False, actor=Actor.person(approver))
    assert str(refused.value) == "Say why you reject it."
    decide_approval(execution=waiting, approve=True, actor=Actor.person(approver))
    assert AuditEvent.objects.get(verb="execution.approved").data["reason"] == ""


def test_why_a_request_can_no_longer_be_decided_in_words(world):
    from incidents.services.approvals import _not_waiting

    abe, at = world.people["approver"], timezone.now()
    state = StepExecution.State
    said = [
        _not_waiting(
            StepExecution(state=state.REJECTED, approved_by=abe, approved_at=at)
        ),
        _not_waiting(StepExecution(state=state.REJECTED)),
        _not_waiting(
            StepExecution(state=state.RUNNING, approved_by=abe, approved_at=at)
        ),
        _not_waiting(StepExecution(state=state.QUEUED, approved_by=abe)),
        _not_waiting(StepExecution(state=state.CANCELLED, summary="Expired.")),
        _not_waiting(StepExecution(state=state.CANCELLED)),
        _not_waiting(StepExecution(state=state.SUCCEEDED)),
    ]
    assert said == [
        f"abe already rejected this request at {at:%H:%M:%S} UTC.",
        "Someone already rejected this request.",
        f"abe already approved this request at {at:%H:%M:%S} UTC; the run is running.",
        "abe already approved this request; the run is queued.",
        "This request was cancelled (Expired.).",
        "This request was cancelled (no reason given).",
        "This request is no longer waiting for approval: the run is succeeded.",
    ]


def test_expire_cancels_only_that_waiting_request_once_and_audits_it(world, waiting):
    from incidents.services import expire

    console = Actor.system("console")

    other = StepExecution.objects.create(
        incident=world.pool,
        command=world.terminate,
        step=waiting.step,
        state=StepExecution.State.AWAITING_APPROVAL,
        requested_by=world.people["granted"],
    )
    long_text = "SELECT pg_terminate_backend(4242) -- " + "x" * 400
    StepExecution.objects.filter(pk=waiting.pk).update(command_text=long_text)
    waiting.refresh_from_db()
    assert expire(execution=waiting, actor=console) is True
    assert (
        expire(execution=waiting, actor=console) is False
    )  # already cancelled: nothing to do, no 2nd event
    waiting.refresh_from_db()
    other.refresh_from_db()
    assert (waiting.state, waiting.summary) == (
        "cancelled",
        "The approval request expired.",
    )
    assert waiting.finished_at is not None
    assert (other.state, other.finished_at) == ("awaiting_approval", None)
    event = AuditEvent.objects.get(verb="execution.expired")
    assert (event.actor_id, event.actor_name, event.incident_id) == (
        None,
        "console",
        world.pool.pk,
    )
    assert (event.object_type, event.object_id) == ("stepexecution", str(waiting.pk))
    assert event.data == {"step": waiting.step.number, "command": long_text[:300]}
    StepExecution.objects.filter(pk=other.pk).update(step=None)
    other.refresh_from_db()
    assert expire(execution=other, actor=console) is True
    assert AuditEvent.objects.filter(verb="execution.expired").last().data == {
        "step": None,
        "command": "",
    }


def test_a_preview_token_carries_exactly_what_was_previewed(world):
    from django.core import signing

    from incidents.services import (
        PREVIEW_SALT,
        check_preview_token,
        preview_token,
    )

    gina, params = world.people["granted"], {"pid": "4242"}
    bound = {
        "incident": world.pool,
        "command": world.terminate,
        "actor": Actor.person(gina),
    }
    token = preview_token(params=params, **bound)
    nonce = check_preview_token(token, params=params, **bound)
    assert signing.loads(token, salt=PREVIEW_SALT) == {
        "i": world.pool.pk,
        "c": world.terminate.pk,
        "u": gina.pk,
        "f": world.terminate.fingerprint(params),
        "n": nonce,
    }
    assert len(nonce) == 16  # 12 random bytes
    assert (
        check_preview_token(
            preview_token(params=params, **bound), params=params, **bound
        )
        != nonce
    )


def refusal(token, world, **bound):  # noqa: ANN001, ANN003, ANN201
    from incidents.services import check_preview_token

    bound = {
        "incident": world.pool,
        "command": world.terminate,
        "actor": Actor.person(world.people["granted"]),
        "params": {"pid": "4242"},
        **bound,
    }
    with pytest.raises(RunRefused) as refused:
        check_preview_token(token, **bound)
    return str(refused.value)


def test_a_preview_token_is_refused_in_words_people_can_act_on(world):
    from django.core import signing

    from incidents.services import PREVIEW_SALT, preview_token

    gina = world.people["granted"]
    token = preview_token(
        incident=world.pool,
        command=world.terminate,
        params={"pid": "4242"},
        actor=Actor.person(gina),
    )
    first = "Preview the action first, then confirm it."
    assert refusal("x:y:z", world) == first
    assert refusal(signing.dumps(["n"], salt=PREVIEW_SALT), world) == first
    assert (
        refusal(signing.dumps({"i": world.pool.pk}, salt=PREVIEW_SALT), world) == first
    )
    other = "That preview was for another command or person: preview again."
    assert refusal(token, world, incident=world.incident) == other
    assert refusal(token, world, command=world.policy) == other
    assert refusal(token, world, actor=Actor.person(world.people["admin"])) == other
    assert refusal(token, world, params={"pid": "1"}) == (
        "The parameters changed since the preview: preview it again."
    )


def test_a_preview_token_lasts_exactly_the_preview_ttl(world, settings, monkeypatch):
    """On a stopped clock (signing's own): valid a second before the TTL ends,
    refused a second after it."""
    from types import SimpleNamespace

    from django.core import signing

    from incidents.services import check_preview_token, preview_token

    ttl = settings.PREVIEW_TTL_MINUTES * 60
    gina, params = world.people["granted"], {"pid": "4242"}
    bound = {
        "incident": world.pool,
        "command": world.terminate,
        "actor": Actor.person(gina),
    }
    clock = SimpleNamespace(now=1_700_000_000)
    monkeypatch.setattr(signing, "time", SimpleNamespace(time=lambda: clock.now))
    token = preview_token(params=params, **bound)
    clock.now += ttl - 1
    assert check_preview_token(token, params=params, **bound)
    clock.now += 2
    assert refusal(token, world) == "The preview is too old: preview the action again."


def test_a_preview_counts_as_used_only_by_a_run_on_that_incident(world):
    from incidents import audit
    from incidents.services.runs import _preview_used

    gina = world.people["granted"]
    audit.append(
        "note.added",
        actor=Actor.person(gina),
        incident=world.pool,
        data={"preview": "n1"},
    )
    run = audit.append(
        "execution.approval_requested",
        actor=Actor.person(gina),
        incident=world.pool,
        data={"preview": "n1"},
    )
    audit.append(
        "execution.requested",
        actor=Actor.person(gina),
        incident=world.pool,
        data={"preview": "n2"},
    )
    assert _preview_used(world.pool, "n1") == run
    assert _preview_used(world.incident, "n1") is None
    assert _preview_used(world.pool, "n3") is None
