"""Issue 11 point 10: an Admin grants or revokes one person's right to run a
playbook's actions (or approve them) from the playbook's access page, audited;
nobody else can; grants survive a re-import; a playbook that incidents follow
cannot be deleted."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, connection, transaction
from django.db.models import ProtectedError
from guardian.shortcuts import assign_perm, get_perms

from incidents import access
from incidents.actors import Actor
from incidents.models import AuditEvent, Incident, Playbook, Runbook
from incidents.services import (
    UnknownGrant,
    grant_on_playbook,
    import_runbook,
    open_incident,
    revoke_on_playbook,
)
from tests.conftest import IMPORTER, grant, signed_in

URL = "/playbooks/db-connection-pool-exhausted/access/"
GRANTS = URL + "grants"
HTMX = {"HX-Request": "true"}


@pytest.fixture
def cast(yomira, make_user):
    """§5 (DB pool) and who holds what on it."""
    pool = Playbook.objects.current().get(number=5)
    oncall = Group.objects.create(name="Oncall")
    assign_perm("incidents.run_actions", oncall, pool)
    people = {
        "admin": make_user("ada", "Admin"),  # the Admin role: every permission
        "superuser": make_user("sue", is_superuser=True),
        "granted": make_user("gina", "Commander"),  # her own run_actions on §5
        "commander": make_user("cole", "Commander"),  # nothing on §5
        "grouped": make_user("gus", "Commander"),  # run_actions through Oncall
        "viewer": make_user("vera", "Viewer"),
        "gone": make_user("gil", "Commander", is_active=False),
    }
    people["grouped"].groups.add(oncall)
    grant(people["granted"], "run_actions", playbooks=[pool])
    return type("Cast", (), {"people": people, "pool": pool})


def post(client, person, permission="run_actions", change="grant", **kw):  # noqa: ANN001, ANN003, ANN201
    data = {"person": str(person.pk), "permission": permission, "change": change}
    return client.post(GRANTS, data, **kw)


def fresh(user):  # noqa: ANN001, ANN201
    return type(user).objects.get(pk=user.pk)


def grants_changed():  # noqa: ANN201
    return AuditEvent.objects.filter(verb="grant.changed").order_by("seq")


def test_an_admin_grants_run_actions_and_the_row_comes_back_with_revoke(cast):
    admin, cole = cast.people["admin"], cast.people["commander"]
    assert not access.can_on_playbook(fresh(cole), access.RUN_ACTIONS, cast.pool)
    before = grants_changed().count()

    response = post(signed_in(admin), cole, headers=HTMX)

    assert response.status_code == 200
    row = response.content.decode()
    assert f'<tr id="person-{cole.pk}">' in row
    assert "Revoke cole's grant to run actions" in row
    assert "cole may now run actions on §5 DB Connection Pool Exhausted." in row
    assert 'hx-swap-oob="true"' in row  # the notice, into the page's #flash
    assert access.can_on_playbook(fresh(cole), access.RUN_ACTIONS, cast.pool)
    [event] = grants_changed()[before:]
    assert (event.actor_id, event.actor_name) == (admin.pk, "ada")
    assert (event.object_type, event.object_id) == ("playbook", str(cast.pool.pk))
    assert event.data == {
        "of": "cole",
        "what": "object permission",
        "action": "add",
        "items": ["incidents.run_actions"],
        "on": "§5 DB Connection Pool Exhausted",
        "revisions": [1],
    }


def test_the_audit_record_reads_like_the_admins_object_permission_record(cast):
    """The admin's Object permissions screen is audited by incidents.signals; the
    page's record has the same verb and the same keys (plus the revisions)."""
    assign_perm("incidents.approve_actions", cast.people["commander"], cast.pool)
    by_admin = grants_changed().last()
    post(signed_in(cast.people["admin"]), cast.people["granted"], "approve_actions")
    by_page = grants_changed().last()
    assert by_page.pk != by_admin.pk
    assert (by_page.verb, by_page.object_type) == (by_admin.verb, by_admin.object_type)
    assert set(by_page.data) == set(by_admin.data) | {"revisions"}
    assert {k: by_page.data[k] for k in ("what", "action", "on")} == {
        k: by_admin.data[k] for k in ("what", "action", "on")
    }


def test_an_admin_revokes_a_persons_own_grant(cast):
    gina = cast.people["granted"]
    response = post(
        signed_in(cast.people["admin"]), gina, change="revoke", headers=HTMX
    )
    assert response.status_code == 200
    row = response.content.decode()
    assert "Grant gina the right to run actions" in row
    assert "taken back" in row
    assert not access.can_on_playbook(fresh(gina), access.RUN_ACTIONS, cast.pool)
    assert get_perms(gina, cast.pool) == []
    assert grants_changed().last().data["action"] == "remove"
    assert grants_changed().last().data["of"] == "gina"


def test_without_javascript_the_change_comes_back_to_the_page_with_a_message(cast):
    client = signed_in(cast.people["superuser"])
    cole = cast.people["commander"]
    response = post(client, cole, "approve_actions")
    assert response.status_code == 302
    assert response["Location"] == f"{URL}#person-{cole.pk}"
    page = client.get(URL).content.decode()
    assert "cole may now approve actions on §5" in page
    assert access.can_on_playbook(fresh(cole), access.APPROVE_ACTIONS, cast.pool)


def test_granting_twice_writes_and_audits_once(cast):
    client = signed_in(cast.people["admin"])
    cole = cast.people["commander"]
    post(client, cole)
    before = grants_changed().count()
    again = post(client, cole, headers=HTMX).content.decode()
    assert "cole already had their own grant to run actions" in again
    assert grants_changed().count() == before
    revoked = post(client, cole, change="revoke", headers=HTMX)
    assert revoked.status_code == 200
    twice = post(client, cole, change="revoke", headers=HTMX).content.decode()
    assert "cole had no grant of their own to run actions" in twice
    assert grants_changed().count() == before + 1


@pytest.mark.parametrize("persona", ["commander", "viewer", "granted"])
def test_anyone_but_an_admin_is_refused_and_the_refusal_is_audited(cast, persona):
    who = cast.people[persona]
    cole = cast.people["commander"]
    client = signed_in(who)
    for headers in ({}, HTMX):
        before = AuditEvent.objects.filter(verb="permission.denied").count()
        response = post(client, cole, headers=headers)
        assert response.status_code == 403
        denial = AuditEvent.objects.filter(verb="permission.denied").last()
        assert AuditEvent.objects.filter(verb="permission.denied").count() == (
            before + 1
        )
        assert (denial.actor_id, denial.data["permission"], denial.data["path"]) == (
            who.pk,
            "incidents.change_playbook",
            GRANTS,
        )
    assert not access.can_on_playbook(fresh(cole), access.RUN_ACTIONS, cast.pool)
    assert not grants_changed().filter(actor_id=who.pk).exists()


def test_a_refusal_under_htmx_is_said_in_the_message_area_not_the_row(cast):
    response = post(
        signed_in(cast.people["commander"]), cast.people["viewer"], headers=HTMX
    )
    assert response.status_code == 403
    assert response["HX-Retarget"] == "#flash"
    assert response["HX-Reswap"] == "innerHTML"
    assert (
        "You need the &#x27;change_playbook&#x27; permission"
        in response.content.decode()
    )


def test_the_change_grants_permission_alone_is_enough(cast, make_user):
    """Who may: whoever holds change_playbook (the Admin role, superusers, or a
    person given it), as for the admin's Object permissions screen."""
    keeper = make_user("kim", "Viewer")
    keeper.user_permissions.add(Permission.objects.get(codename="change_playbook"))
    assert post(signed_in(keeper), cast.people["commander"]).status_code == 302


def test_the_services_check_for_themselves(cast):
    cole = cast.people["commander"]
    for actor in (Actor.person(cast.people["commander"]), Actor.system("manage.py")):
        with pytest.raises(PermissionDenied):
            grant_on_playbook(
                actor=actor, playbook=cast.pool, person=cole, permission="run_actions"
            )
    assert AuditEvent.objects.filter(verb="permission.denied").count() == 2
    with pytest.raises(UnknownGrant):
        revoke_on_playbook(
            actor=Actor.person(cast.people["admin"]),
            playbook=cast.pool,
            person=cole,
            permission="add_playbook",
        )


@pytest.mark.parametrize(
    ("field", "value", "status", "says"),
    [
        ("person", "0", 404, "no such person"),
        ("person", "abc", 404, "no such person"),
        ("person", "gone", 404, "no such person"),  # inactive
        ("permission", "run_probes", 400, "not a right granted here"),
        ("permission", "change_playbook", 400, "not a right granted here"),
        ("permission", "", 400, "not a right granted here"),
        ("change", "delete", 400, "whether to grant or revoke"),
    ],
)
@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
def test_bad_input_is_a_4xx_in_words_and_changes_nothing(
    cast, field, value, status, says, htmx
):
    client = signed_in(cast.people["admin"])
    data = {
        "person": str(cast.people["commander"].pk),
        "permission": "run_actions",
        "change": "grant",
    }
    data[field] = str(cast.people["gone"].pk) if value == "gone" else value
    before = AuditEvent.objects.count()
    response = client.post(GRANTS, data, headers=HTMX if htmx else {})
    assert response.status_code == status
    text = response.content.decode().lower()
    assert says in text if htmx or status == 400 else "not found" in text
    assert AuditEvent.objects.count() == before
    assert get_perms(cast.people["commander"], cast.pool) == []


def test_an_unknown_playbook_is_a_404_and_a_get_a_405(cast):
    client = signed_in(cast.people["admin"])
    data = {"person": cast.people["commander"].pk, "permission": "run_actions"}
    missing = "/playbooks/no-such-playbook/access/grants"
    assert client.post(missing, {**data, "change": "grant"}).status_code == 404
    htmx = client.post(missing, {**data, "change": "grant"}, headers=HTMX)
    assert htmx.status_code == 404 and "no such playbook" in htmx.content.decode()
    assert client.get(GRANTS).status_code == 405


def test_the_page_offers_revoke_only_for_a_persons_own_grant(cast):
    page = signed_in(cast.people["admin"]).get(URL).content.decode()

    def row(name: str) -> str:
        person = cast.people[name]
        start = page.index(f'<tr id="person-{person.pk}">')
        return page[start : page.index("</tr>", start)]

    assert "Revoke gina's grant to run actions" in row("granted")
    assert "Grant gina the right to approve actions" in row("granted")
    # Through a group's grant or a role: said, and no Revoke.
    grouped = row("grouped")
    assert "group Oncall&#x27;s grant here" in grouped
    assert (
        "Revoke" not in grouped and "Grant gus the right to run actions" not in grouped
    )
    assert "Grant gus the right to approve actions" in grouped
    for name, why in (("admin", "role Admin"), ("superuser", "superuser")):
        assert why in row(name) and "<form" not in row(name)
    assert "Grant cole the right to run actions" in row("commander")
    assert f'id="person-{cast.people["gone"].pk}"' not in page


def test_revoking_someone_who_holds_it_through_a_group_takes_nothing(cast):
    gus = cast.people["grouped"]
    response = post(signed_in(cast.people["admin"]), gus, change="revoke", headers=HTMX)
    assert "gus had no grant of their own" in response.content.decode()
    assert access.can_on_playbook(fresh(gus), access.RUN_ACTIONS, cast.pool)


def test_people_without_the_right_see_the_page_but_no_forms(cast):
    page = signed_in(cast.people["viewer"]).get(URL).content.decode()
    assert "gina" in page and "<form" not in page.split("<table", 1)[1]
    assert "playbooks/db-connection-pool-exhausted/access/grants" not in page


def test_standings_agree_with_the_check_every_run_asks(cast):
    people = [fresh(p) for p in cast.people.values() if p.is_active]
    standings = access.standings(people, cast.pool, ["run_actions", "approve_actions"])
    for person in people:
        for codename in ("run_actions", "approve_actions"):
            held = access.can_on_playbook(
                fresh(person), f"incidents.{codename}", cast.pool
            )
            assert standings[person.pk][codename].held == held, (person, codename)
    assert standings[cast.people["granted"].pk]["run_actions"] == access.Standing(
        own=True, because=()
    )
    assert standings[cast.people["admin"].pk]["run_actions"].because == ("role Admin",)


def changed(source: bytes) -> bytes:
    return source.replace(b"1. **Verify:**", b"1. **Verify it:**")


def test_a_grant_given_here_survives_a_reimport(cast, yomira_source):
    client = signed_in(cast.people["admin"])
    cole = cast.people["commander"]
    post(client, cole)
    import_runbook(source=changed(yomira_source), actor=IMPORTER)
    new_pool = Playbook.objects.current().get(number=5)
    assert new_pool.pk != cast.pool.pk
    assert access.can_on_playbook(fresh(cole), access.RUN_ACTIONS, new_pool)
    page = client.get(URL).content.decode()
    assert "Revoke cole's grant to run actions" in page


def test_a_change_covers_the_revision_an_open_incident_still_follows(
    cast, yomira_source
):
    """An incident keeps the revision it started with: revoking on today's
    playbook must stop actions there too, and a grant must reach it."""
    gina, cole = cast.people["granted"], cast.people["commander"]
    old = open_incident(
        playbook=cast.pool, title="pool", actor=Actor.person(cast.people["admin"])
    )
    import_runbook(source=changed(yomira_source), actor=IMPORTER)
    client = signed_in(cast.people["admin"])
    post(client, gina, change="revoke")
    post(client, cole)
    for playbook in (old.playbook, Playbook.objects.current().get(number=5)):
        assert not access.can_on_playbook(fresh(gina), access.RUN_ACTIONS, playbook)
        assert access.can_on_playbook(fresh(cole), access.RUN_ACTIONS, playbook)
    assert grants_changed().last().data["revisions"] == [1, 2]


def test_a_playbook_incidents_follow_cannot_be_deleted(cast):
    incident = open_incident(
        playbook=cast.pool, title="pool", actor=Actor.person(cast.people["admin"])
    )
    with pytest.raises(ProtectedError):
        cast.pool.delete()
    with pytest.raises(ProtectedError):
        cast.pool.runbook.delete()
    assert Incident.objects.get(pk=incident.pk).playbook_id == cast.pool.pk


def test_the_admin_cannot_delete_a_followed_playbook_with_its_runbook(cast, admin_user):
    open_incident(
        playbook=cast.pool, title="pool", actor=Actor.person(cast.people["admin"])
    )
    url = f"/admin/incidents/runbook/{cast.pool.runbook_id}/delete/"
    client = signed_in(admin_user)
    assert client.get(url).status_code == 403
    assert client.post(url, {"post": "yes"}).status_code == 403
    assert Playbook.objects.filter(pk=cast.pool.pk).exists()


def test_the_database_itself_refuses_to_delete_a_followed_playbook(db):
    """Not only the ORM's PROTECT: the foreign key refuses a raw DELETE."""
    runbook = Runbook.objects.create(
        key="bare", revision=1, title="Bare", sha256="0" * 64, source=""
    )
    bare = Playbook.objects.create(runbook=runbook, number=1, slug="bare", title="B")
    Incident.objects.create(playbook=bare, title="follows it")
    with (
        pytest.raises(IntegrityError),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("DELETE FROM incidents_playbook WHERE id = %s", [bare.pk])
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    assert Playbook.objects.filter(pk=bare.pk).exists()
