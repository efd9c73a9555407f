"""Issue 11's safety code, pinned line by line (docs/mutation/issue11.md): who may
grant and revoke a playbook's actions and what the record says, how the access page
reads each person's standing, who may approve a request and which requests wait for
them, the preview an approver is shown, and a preview that found nothing to act on
confirming no run."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission
from django.core import signing
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.test.utils import CaptureQueriesContext
from guardian.shortcuts import assign_perm, get_perms

from incidents import access, audit
from incidents.actors import Actor
from incidents.models import AuditEvent, Playbook, Runbook, StepExecution
from incidents.services import (
    PREVIEW_SALT,
    RunRefused,
    UnknownGrant,
    approvals,
    check_preview_token,
    grant_on_playbook,
    open_incident,
    preview_action,
    preview_token,
    request_run,
    revoke_on_playbook,
)
from probes.commands import confirm_word
from probes.family import Preview
from tests.conftest import grant
from tests.stack import database_url

State = StepExecution.State


@pytest.fixture
def pool(yomira, make_user):  # noqa: ANN001, ANN201
    """§5 (DB pool), an incident on it, and who may do what there."""
    playbook = Playbook.objects.current().get(number=5)
    people = {
        "ada": make_user("ada", "Admin"),
        "gina": make_user("gina", "Commander"),  # run_actions on §5
        "abe": make_user("abe", "Commander"),  # approve_actions on §5
        "cole": make_user("cole", "Commander"),  # nothing on §5
    }
    grant(people["gina"], "run_actions", playbooks=[playbook])
    grant(people["abe"], "approve_actions", playbooks=[playbook])
    incident = open_incident(
        playbook=playbook, title="pool", actor=Actor.person(people["ada"])
    )
    commands = playbook.commands.exclude(kind="manual")
    return type(
        "Pool",
        (),
        {
            "playbook": playbook,
            "people": people,
            "incident": incident,
            "terminate": commands.get(text__startswith="SELECT pg_terminate_backend"),
        },
    )


# --- grants -------------------------------------------------------------------------


def test_grant_and_revoke_say_whether_they_changed_anything(pool):
    admin = Actor.person(pool.people["ada"])
    cole = pool.people["cole"]
    bound = {"actor": admin, "playbook": pool.playbook, "person": cole}
    assert grant_on_playbook(permission="approve_actions", **bound) is True
    assert grant_on_playbook(permission="approve_actions", **bound) is False
    assert revoke_on_playbook(permission="approve_actions", **bound) is True
    assert revoke_on_playbook(permission="approve_actions", **bound) is False
    removed = AuditEvent.objects.filter(verb="grant.changed").last()
    assert (removed.actor_name, removed.object_type) == ("ada", "playbook")
    assert removed.object_id == str(pool.playbook.pk)
    assert removed.data == {
        "of": "cole",
        "what": "object permission",
        "action": "remove",
        "items": ["incidents.approve_actions"],
        "on": "§5 DB Connection Pool Exhausted",
        "revisions": [1],
    }
    assert not access.can_on_playbook(
        type(cole).objects.get(pk=cole.pk), access.APPROVE_ACTIONS, pool.playbook
    )


def test_a_change_stays_on_its_playbook_and_its_runbook(pool):
    """Another runbook may have a playbook of the same slug, and the person may
    hold the right on other playbooks: neither is touched."""
    other_runbook = Runbook.objects.create(
        key="other", revision=1, title="Other", sha256="0" * 64, source=""
    )
    namesake = Playbook.objects.create(
        runbook=other_runbook, number=5, slug=pool.playbook.slug, title="Namesake"
    )
    elsewhere = Playbook.objects.current().exclude(pk=pool.playbook.pk).first()
    gina, cole = pool.people["gina"], pool.people["cole"]
    grant(gina, "run_actions", playbooks=[elsewhere, namesake])
    admin = Actor.person(pool.people["ada"])

    assert grant_on_playbook(
        actor=admin, playbook=pool.playbook, person=cole, permission="run_actions"
    )
    assert AuditEvent.objects.filter(verb="grant.changed").last().data["revisions"] == [
        1
    ]
    assert get_perms(cole, namesake) == []
    assert revoke_on_playbook(
        actor=admin, playbook=pool.playbook, person=gina, permission="run_actions"
    )
    assert get_perms(gina, pool.playbook) == []
    assert get_perms(gina, elsewhere) == ["run_actions"]
    assert get_perms(gina, namesake) == ["run_actions"]


def test_a_grant_the_page_does_not_give_is_refused_in_words(pool):
    admin = Actor.person(pool.people["ada"])
    bound = {"actor": admin, "playbook": pool.playbook, "person": pool.people["cole"]}
    with pytest.raises(UnknownGrant) as refused:
        grant_on_playbook(permission="add_playbook", **bound)
    assert str(refused.value) == (
        "'add_playbook' is not granted here; choose one of: "
        "run_actions, approve_actions."
    )
    with pytest.raises(UnknownGrant) as long:
        revoke_on_playbook(permission="p" * 60, **bound)
    assert str(long.value).startswith("'" + "p" * 40 + "' is not granted here")


def test_only_holders_of_change_playbook_change_grants_and_the_refusal_says_so(pool):
    cole = pool.people["cole"]
    with pytest.raises(PermissionDenied):
        grant_on_playbook(
            actor=Actor.person(pool.people["gina"]),
            playbook=pool.playbook,
            person=cole,
            permission="run_actions",
        )
    denial = AuditEvent.objects.filter(verb="permission.denied").last()
    assert (denial.actor_name, denial.data["permission"]) == (
        "gina",
        "incidents.change_playbook",
    )
    assert not AuditEvent.objects.filter(verb="grant.changed", actor_name="gina")


# --- standings ----------------------------------------------------------------------


def test_standings_name_every_source_in_order_and_skip_inactive_people(pool, make_user):
    run = Permission.objects.get(codename="run_actions", content_type__model="playbook")
    zulu = Group.objects.create(name="Zulu")  # made first: ordered by name, not pk
    alpha = Group.objects.create(name="Alpha")
    for group in (zulu, alpha):
        group.permissions.add(run)
        assign_perm("incidents.run_actions", group, pool.playbook)
    mixed = make_user("mia")
    mixed.groups.add(zulu, alpha)
    mixed.user_permissions.add(run)
    own_only = make_user("otto")
    own_only.user_permissions.add(run)
    sue = make_user("sue", is_superuser=True)
    gone = make_user("gil", "Admin", is_active=False)
    gina = pool.people["gina"]

    found = access.standings(
        [mixed, own_only, sue, gone, gina], pool.playbook, ["run_actions"]
    )

    assert set(found) == {mixed.pk, own_only.pk, sue.pk, gina.pk}
    assert found[mixed.pk]["run_actions"] == access.Standing(
        own=False,
        because=(
            "role Alpha",
            "role Zulu",
            "own permission for every playbook",
            "group Alpha's grant here",
            "group Zulu's grant here",
        ),
    )
    assert found[own_only.pk]["run_actions"] == access.Standing(
        own=False, because=("own permission for every playbook",)
    )
    assert found[sue.pk]["run_actions"] == access.Standing(
        own=False, because=("superuser",)
    )
    assert found[gina.pk]["run_actions"] == access.Standing(own=True, because=())


def test_standings_read_each_right_on_its_own_on_this_playbook(pool, make_user):
    gina, abe = pool.people["gina"], pool.people["abe"]
    eli = make_user("eli", "Commander")  # granted on another playbook only
    other = Playbook.objects.current().exclude(pk=pool.playbook.pk).first()
    grant(eli, "run_actions", "approve_actions", playbooks=[other])
    found = access.standings(
        [gina, abe, eli], pool.playbook, ["run_actions", "approve_actions"]
    )
    assert found == {
        eli.pk: {
            "run_actions": access.Standing(own=False),
            "approve_actions": access.Standing(own=False),
        },
        gina.pk: {
            "run_actions": access.Standing(own=True),
            "approve_actions": access.Standing(own=False),
        },
        abe.pk: {
            "run_actions": access.Standing(own=False),
            "approve_actions": access.Standing(own=True),
        },
    }


# --- who may approve, and what waits for them ---------------------------------------


def test_approvers_come_from_roles_grants_and_groups_never_the_requester(
    pool, make_user
):
    oncall = Group.objects.create(name="Oncall")
    assign_perm("incidents.approve_actions", oncall, pool.playbook)
    gus = make_user("gus", "Commander")
    gus.groups.add(oncall)
    make_user("gil", "Admin", is_active=False)
    other = Playbook.objects.current().exclude(pk=pool.playbook.pk).first()
    elsewhere = make_user("eli", "Commander")
    grant(elsewhere, "approve_actions", playbooks=[other])

    names = list(approvals.approvers(pool.playbook).values_list("username", flat=True))
    assert names == ["abe", "ada", "gus"]
    without_abe = approvals.approvers(pool.playbook, requester_id=pool.people["abe"].pk)
    assert list(without_abe.values_list("username", flat=True)) == ["ada", "gus"]


@pytest.mark.parametrize(
    ("count", "said"),
    [
        (0, ""),
        (1, "n0"),
        (2, "n0 or n1"),
        (3, "n0, n1 or n2"),
        (6, "n0, n1, n2, n3, n4 or n5"),
        (7, "n0, n1, n2, n3, n4, n5 and 1 more"),
        (9, "n0, n1, n2, n3, n4, n5 and 3 more"),
    ],
)
def test_approvers_in_words(count, said):
    assert approvals.in_words([f"n{i}" for i in range(count)]) == said


def test_approver_names_leave_out_the_requester_and_read_once_per_playbook(pool):
    waiting = StepExecution.objects.create(
        incident=pool.incident,
        command=pool.terminate,
        step=pool.terminate.step,
        command_text=pool.terminate.text,
        state=State.AWAITING_APPROVAL,
        requested_by=pool.people["abe"],
    )
    playbook = Playbook.objects.get(pk=pool.playbook.pk)
    assert approvals.approver_names(waiting, playbook) == "ada"
    with CaptureQueriesContext(connection) as captured:
        assert approvals.approver_names(waiting, playbook) == "ada"
    assert len(captured) == 0
    assert approvals.approver_names(waiting) == "ada"  # its own playbook, read


def test_a_request_without_an_expiry_still_waits(pool):
    waiting = StepExecution.objects.create(
        incident=pool.incident,
        command=pool.terminate,
        command_text=pool.terminate.text,
        state=State.AWAITING_APPROVAL,
        requested_by=pool.people["gina"],
        approval_expires_at=None,
    )
    assert list(approvals.waiting()) == [waiting]
    assert list(approvals.decidable_by(pool.people["abe"])) == [waiting]
    assert approvals.decidable_by(pool.people["cole"]) is None
    assert approvals.approvable_playbooks(pool.people["abe"]) == [pool.playbook.pk]
    assert approvals.approvable_playbooks(pool.people["ada"]) is None


def test_only_playbooks_approved_on_count_not_those_run_on(pool):
    """approvable_playbooks 29: a grant to run a playbook's actions is no right to
    approve them; a person holding both kinds on different playbooks may decide
    requests of the approved one only (the badge and the queue read this)."""
    redis_down = Playbook.objects.current().get(number=4)
    abe = pool.people["abe"]
    grant(abe, "run_actions", playbooks=[redis_down])
    fresh = type(abe).objects.get(pk=abe.pk)
    assert approvals.approvable_playbooks(fresh) == [pool.playbook.pk]
    gina = type(abe).objects.get(pk=pool.people["gina"].pk)  # run_actions only
    assert approvals.approvable_playbooks(gina) == []
    assert approvals.decidable_by(gina) is None


# --- the preview an approver is shown ----------------------------------------------


@pytest.fixture
def target(monkeypatch):  # noqa: ANN001, ANN201
    """The console's own server as the target, and this test's backend a live pid."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    monkeypatch.setenv(
        "TARGET_DATABASE_URL",
        database_url(db),
    )
    monkeypatch.setattr("incidents.services.runs.dispatch", lambda *a, **k: None)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return str(cursor.fetchone()[0])


def ask(pool, pid: str) -> StepExecution:  # noqa: ANN001
    actor = Actor.person(pool.people["gina"])
    bound = {"incident": pool.incident, "command": pool.terminate, "actor": actor}
    shown = preview_action(params={"pid": pid}, **bound)
    request_run(
        params={"pid": pid},
        confirmation=confirm_word(pool.terminate),
        preview=shown.token,
        **bound,
    )
    return StepExecution.objects.filter(command=pool.terminate).latest("pk")


def test_previews_of_hands_each_request_its_own_preview(pool, target, monkeypatch):
    facts = [f"fact {i}: " + "x" * 400 for i in range(12)]
    monkeypatch.setattr(
        "incidents.services.runs.preview_of",
        lambda command, values, ctx: Preview(True, "1 backend", rows=1, facts=facts),
    )
    # A preview recorded before previews had a nonce, on the same incident.
    audit.append(
        "execution.previewed",
        actor=Actor.person(pool.people["gina"]),
        incident=pool.incident,
        data={"headline": "old"},
    )
    first = ask(pool, target)
    monkeypatch.setattr(
        "incidents.services.runs.preview_of",
        lambda command, values, ctx: Preview(True, "another", rows=None),
    )
    second = ask(pool, "4242")

    assert approvals.previews_of([]) == {}
    assert list(approvals.previews_of([second])) == [second.pk]  # only those asked
    found = approvals.previews_of([first, second])
    assert found == {
        first.pk: approvals.ShownPreview(
            headline="1 backend", facts=[f[:300] for f in facts[:10]], rows=1
        ),
        second.pk: approvals.ShownPreview(headline="another", facts=[], rows=None),
    }


def test_preview_action_records_what_was_shown_and_the_tokens_nonce(
    pool, target, monkeypatch
):
    monkeypatch.setattr(
        "incidents.services.runs.preview_of",
        lambda command, values, ctx: Preview(True, "1 backend", rows=1, facts=["f"]),
    )
    gina = pool.people["gina"]
    shown = preview_action(
        incident=pool.incident,
        command=pool.terminate,
        params={"pid": target},
        actor=Actor.person(gina),
    )
    event = AuditEvent.objects.filter(verb="execution.previewed").last()
    token = signing.loads(shown.token, salt=PREVIEW_SALT)
    assert (event.actor_name, event.incident_id) == ("gina", pool.incident.pk)
    assert (event.object_type, event.object_id) == ("command", str(pool.terminate.pk))
    assert event.data == {
        "step": pool.terminate.step.number,
        "command": pool.terminate.text,
        "rows": 1,
        "headline": "1 backend",
        "facts": ["f"],
        "preview": token["n"],
    }
    assert len(token["n"]) == 16 and "z" not in token
    assert shown.params == {"pid": target}


def test_a_preview_gets_the_consoles_limits(pool, target, monkeypatch, settings):
    """preview_action 18: a preview reaches the target like a run does, so it is
    held to the same limits (a hung target costs EXECUTION_TIMEOUT, not the
    engine's defaults)."""
    settings.EXECUTION_CONNECT_TIMEOUT = 0.7
    settings.EXECUTION_TIMEOUT = 2.5
    settings.EXECUTION_OUTPUT_CAP = 1234
    seen = []
    monkeypatch.setattr(
        "incidents.services.runs.preview_of",
        lambda command, values, ctx: seen.append(ctx) or Preview(True, "ok"),
    )
    preview_action(
        incident=pool.incident,
        command=pool.terminate,
        params={"pid": target},
        actor=Actor.person(pool.people["gina"]),
    )
    [ctx] = seen
    assert (ctx.connect_timeout, ctx.timeout, ctx.output_cap) == (0.7, 2.5, 1234)


def gina_previews(pool, target, monkeypatch, shown: Preview) -> AuditEvent:  # noqa: ANN001
    """gina previews §5's terminate, the target answering `shown`: the record."""
    monkeypatch.setattr(
        "incidents.services.runs.preview_of", lambda command, values, ctx: shown
    )
    preview_action(
        incident=pool.incident,
        command=pool.terminate,
        params={"pid": target},
        actor=Actor.person(pool.people["gina"]),
    )
    return AuditEvent.objects.filter(verb="execution.previewed").last()


def test_an_action_outside_the_steps_is_previewed_too(pool, target, monkeypatch):
    """preview_action 40: a runbook may put an action under Diagnosis (no step);
    its preview is recorded with no step, not a crash."""
    type(pool.terminate).objects.filter(pk=pool.terminate.pk).update(step=None)
    pool.terminate.refresh_from_db()
    event = gina_previews(pool, target, monkeypatch, Preview(True, "1 backend", rows=1))
    assert event.data["step"] is None and event.data["headline"] == "1 backend"


def test_a_long_commands_preview_record_keeps_its_first_300_characters(
    pool, target, monkeypatch
):
    """preview_action 43: the record keeps the command's first 300 characters,
    as every run's record does."""
    long_text = "SELECT pg_terminate_backend($1) -- " + "x" * 400
    type(pool.terminate).objects.filter(pk=pool.terminate.pk).update(text=long_text)
    pool.terminate.refresh_from_db()
    event = gina_previews(pool, target, monkeypatch, Preview(True, "1 backend"))
    assert event.data["command"] == long_text[:300]


def test_a_preview_is_refused_to_people_without_the_playbooks_grant(pool, target):
    with pytest.raises(PermissionDenied):
        preview_action(
            incident=pool.incident,
            command=pool.terminate,
            params={"pid": target},
            actor=Actor.person(pool.people["cole"]),
        )
    denial = AuditEvent.objects.filter(verb="permission.denied").last()
    assert (denial.actor_name, denial.incident_id) == ("cole", pool.incident.pk)
    assert denial.data["permission"] == "incidents.run_actions"
    assert not AuditEvent.objects.filter(verb="execution.previewed").exists()


def test_a_preview_that_found_nothing_confirms_no_run_in_words(pool, target):
    bound = {
        "incident": pool.incident,
        "command": pool.terminate,
        "actor": Actor.person(pool.people["gina"]),
    }
    params = {"pid": "99999999"}
    shown = preview_action(params=params, **bound)
    event = AuditEvent.objects.filter(verb="execution.previewed").last()
    assert event.data["nothing"] == shown.result.nothing
    token = signing.loads(shown.token, salt=PREVIEW_SALT)
    assert token["z"] == 1 and token["n"] == event.data["preview"]
    with pytest.raises(RunRefused) as refused:
        check_preview_token(shown.token, params=params, **bound)
    assert str(refused.value) == (
        "That preview found nothing to act on, so it confirms no run. "
        "Nothing was run; preview again if things have changed."
    )
    plain = preview_token(params=params, nonce="abc", **bound)
    assert check_preview_token(plain, params=params, **bound) == "abc"
    assert "z" not in signing.loads(plain, salt=PREVIEW_SALT)
