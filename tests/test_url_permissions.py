"""Walk every URL the console serves, as an anonymous visitor and as a signed-in
user with no rights. A new view that forgets its permission check fails here."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.contrib.auth.models import AnonymousUser, Group, Permission
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.test import Client, RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver

from incidents import access
from incidents.actors import Actor
from incidents.models import AuditEvent, Command, Playbook, StepExecution
from incidents.services import open_incident
from tests.conftest import grant, signed_in

# Open to anyone (or to anyone signed in): the way in, the way out, health checks.
PUBLIC = {"login", "health_ready", "health_live"}
# Single sign-on's way in (sso/): to the provider, and back (tests/sso/).
PUBLIC |= {"sso_sign_in", "sso_callback"}
ANY_SIGNED_IN = {
    "logout",
    "password_change",
    "password_change_done",
    "home",
    # One's own API tokens (another person's is not found: tests/api/).
    "api_tokens",
    "api_token_revoke",
}
# Webhooks: no session, a source's token (tests/alerts/test_hooks.py covers them);
# here, without one they must refuse (401, audited), whoever is signed in.
WEBHOOKS = {"alertmanager", "grafana"}
# Prometheus's scrape: METRICS_TOKEN as a Bearer token (tests/test_metrics.py); a
# session never opens it, so without the token it refuses (401) whoever is signed in.
TOKEN_PROTECTED = {"metrics"}


def walk(patterns, prefix=""):  # noqa: ANN001, ANN201
    for p in patterns:
        if isinstance(p, URLResolver):
            if p.namespace == "admin":
                continue  # Django's admin checks staff status itself (tested below)
            yield from walk(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield p.name, prefix + str(p.pattern)


def concrete(route: str, incident, slug: str) -> str:  # noqa: ANN001
    url = "/" + route
    replacements = {
        "<int:pk>": str(incident.pk),
        "<int:number>": "1",
        "<slug:slug>": slug,
        "<int:command_id>": "1",
        "<int:execution_id>": "1",
        "<slug:source>": "no-such-source",
        # The JSON API's path parameters (django-ninja writes them plain).
        "<slug>": slug,
    }
    for placeholder, value in replacements.items():
        url = url.replace(placeholder, value)
    assert "<" not in url, f"teach this test the converter in {route}"
    return url


@pytest.fixture
def urls(incident):
    routes = sorted(set(walk(get_resolver().url_patterns)))
    assert len(routes) >= 15
    return [
        (name, concrete(route, incident, incident.playbook.slug))
        for name, route in routes
    ]


def test_webhooks_refuse_without_a_token_signed_in_or_not(client, nobody_client, urls):
    hooks = [(name, url) for name, url in urls if name in WEBHOOKS]
    assert {name for name, _ in hooks} == WEBHOOKS
    for who in (client, nobody_client):
        for name, url in hooks:
            before = AuditEvent.objects.filter(verb="permission.denied").count()
            response = who.post(url, data=b"{}", content_type="application/json")
            assert response.status_code == 401, (name, response.status_code)
            denial = AuditEvent.objects.filter(verb="permission.denied").latest("seq")
            assert AuditEvent.objects.filter(verb="permission.denied").count() == (
                before + 1
            )
            assert denial.data["path"] == url
            assert who.get(url).status_code == 405


# The JSON API answers a personal token, never a session (tests/api/ covers the
# tokens): without one it refuses (401, audited) whoever is signed in. Its docs
# page and schema are for anyone signed in.
API_DOCS = {"openapi-json", "openapi-view"}
# django-ninja's root, kept only to reverse URLs from: a 404 for everyone.
API_ROOT = "api-root"


def is_api(name: str, url: str) -> bool:
    return url.startswith("/api/v1/") and name not in API_DOCS | {API_ROOT}


def test_the_api_root_shows_nothing(client, nobody_client):
    for who in (client, nobody_client):
        assert who.get("/api/v1/").status_code == 404


def test_the_api_refuses_without_a_token_signed_in_or_not(client, nobody_client, urls):
    api = [(name, url) for name, url in urls if is_api(name, url)]
    assert len(api) >= 10
    for who in (client, nobody_client):
        for name, url in api:
            for method in ("get", "post"):
                cache.clear()  # each denial audited (past 30 a minute, only counted)
                before = AuditEvent.objects.filter(verb="permission.denied").count()
                response = getattr(who, method)(url)
                if response.status_code == 405:
                    continue  # the route takes the other method
                assert response.status_code == 401, (name, method, response.status_code)
                assert response.json()["error"]["code"] == "unauthenticated"
                assert (
                    AuditEvent.objects.filter(verb="permission.denied").count()
                    == before + 1
                )


def test_a_token_of_someone_without_rights_is_refused_everywhere(nobody, urls):
    from api.tokens import create

    secret = create(user=nobody, name="t", scope="write", actor=Actor.person(nobody))[1]
    checked = 0
    for name, url in urls:
        if not is_api(name, url):
            continue
        for method in ("get", "post"):
            before = AuditEvent.objects.filter(verb="permission.denied").count()
            response = getattr(Client(), method)(
                url,
                **(
                    {"data": "{}", "content_type": "application/json"}
                    if method == "post"
                    else {}
                ),
                headers={"Authorization": f"Bearer {secret}"},
            )
            if response.status_code == 405:
                continue
            assert response.status_code == 403, (name, method, response.status_code)
            assert response.json()["error"]["code"] == "forbidden"
            denial = AuditEvent.objects.filter(verb="permission.denied").latest("seq")
            assert (
                AuditEvent.objects.filter(verb="permission.denied").count()
                == before + 1
            )
            assert (denial.actor_id, denial.data["path"]) == (nobody.pk, url)
            checked += 1
    assert checked >= 12


def test_metrics_refuse_without_the_token_signed_in_or_not(
    client, nobody_client, urls, settings
):
    settings.METRICS_TOKEN = "the-scrapers-token"
    scrapes = [(name, url) for name, url in urls if name in TOKEN_PROTECTED]
    assert {name for name, _ in scrapes} == TOKEN_PROTECTED
    for who in (client, nobody_client):
        for name, url in scrapes:
            assert who.get(url).status_code == 401, name
            assert who.post(url).status_code == 405, name


def test_anonymous_visitors_are_sent_to_sign_in(client, urls):
    for name, url in urls:
        if (
            name in PUBLIC | WEBHOOKS | TOKEN_PROTECTED | {API_ROOT}
            or name == "logout"
            or is_api(name, url)
        ):
            continue
        for method in ("get", "post"):
            response = getattr(client, method)(url)
            assert response.status_code == 302, (name, method, response.status_code)
            assert response["Location"].startswith("/accounts/login/?next="), (
                name,
                method,
            )


def test_a_user_without_rights_is_refused_everywhere_and_each_refusal_is_audited(
    nobody_client, nobody, urls
):
    checked = 0
    for name, url in urls:
        if name in PUBLIC | ANY_SIGNED_IN | WEBHOOKS | TOKEN_PROTECTED | API_DOCS:
            continue
        if name == API_ROOT:
            continue
        if is_api(name, url):
            continue
        for method in ("get", "post"):
            before = AuditEvent.objects.filter(verb="permission.denied").count()
            response = getattr(nobody_client, method)(url)
            assert response.status_code == 403, (name, method, response.status_code)
            denial = (
                AuditEvent.objects.filter(verb="permission.denied")
                .order_by("-seq")
                .first()
            )
            assert (
                AuditEvent.objects.filter(verb="permission.denied").count()
                == before + 1
            )
            assert (denial.actor_id, denial.data["path"]) == (nobody.pk, url)
            checked += 1
    assert checked >= 24


def test_the_admin_is_for_staff_only(nobody_client, client):
    assert client.get("/admin/").status_code == 302
    response = nobody_client.get("/admin/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


READABLE = {"incident_list", "incident_detail", "playbook_list", "export_csv"}


@pytest.mark.parametrize(
    ("persona", "allowed"),
    [
        ("viewer", READABLE),
        ("responder", READABLE | {"incident_new"}),
        ("nobody", set()),
    ],
)
def test_roles_read_what_their_role_allows(request, persona, allowed, incident):
    client = request.getfixturevalue(f"{persona}_client")
    pages = {
        "incident_list": "/incidents/",
        "incident_detail": f"/incidents/{incident.pk}/",
        "playbook_list": "/playbooks/",
        "export_csv": f"/incidents/{incident.pk}/timeline.csv",
        "incident_new": "/incidents/new/",
        # Importing runbooks is the Admin role's (incidents.add_runbook).
        "runbook_import": "/runbooks/import/",
    }
    refused = 0
    for name, url in pages.items():
        status = client.get(url).status_code
        assert status == (200 if name in allowed else 403), (name, status)
        refused += status == 403
    # The viewer and nobody are refused pages here: the 403 branch runs.
    assert refused == len(pages) - len(allowed)


def test_exports_need_the_export_permission_not_just_view(make_user, incident):
    """Seeing an incident is not exporting it (and each refusal is audited)."""
    from django.contrib.auth.models import Permission

    reader = make_user("rhea")
    reader.user_permissions.add(
        Permission.objects.get(codename="view_incident"),
        Permission.objects.get(codename="view_playbook"),
    )
    client = signed_in(reader)
    assert client.get(f"/incidents/{incident.pk}/").status_code == 200
    for name in ("postmortem.md", "timeline.json", "timeline.csv"):
        assert client.get(f"/incidents/{incident.pk}/{name}").status_code == 403
    denials = AuditEvent.objects.filter(verb="permission.denied", actor_id=reader.pk)
    assert [d.data["permission"] for d in denials] == ["incidents.export_incident"] * 3
    assert not incident.events.filter(verb="incident.exported").exists()


def test_only_commanders_hand_over_command(
    responder_client, commander_client, incident, responder, commander, make_user
):
    url = f"/incidents/{incident.pk}/commander"
    other = make_user("otto", "Commander")
    assert responder_client.post(url, {"commander": responder.pk}).status_code == 403
    assert responder_client.post(url, {"commander": other.pk}).status_code == 403
    incident.refresh_from_db()
    assert incident.commander == commander
    assert not incident.events.filter(verb="incident.commander_changed").exists()
    assert commander_client.post(url, {"commander": other.pk}).status_code == 302
    incident.refresh_from_db()
    assert incident.commander == other


def test_only_commanders_change_status_and_only_responders_tick(
    viewer_client, responder_client, commander_client, incident
):
    status = f"/incidents/{incident.pk}/status"
    tick = f"/incidents/{incident.pk}/steps/1/tick"
    note = f"/incidents/{incident.pk}/notes"
    assert viewer_client.post(tick, {"state": "done", "expected": 0}).status_code == 403
    assert viewer_client.post(note, {"text": "hi"}).status_code == 403
    assert (
        viewer_client.post(
            "/incidents/new/", {"playbook": "x", "title": "y"}
        ).status_code
        == 403
    )
    assert responder_client.post(status, {"status": "acknowledged"}).status_code == 403
    assert (
        responder_client.post(tick, {"state": "done", "expected": 0}).status_code == 302
    )
    assert commander_client.post(status, {"status": "acknowledged"}).status_code == 302


# --- incidents.access itself, function by function (each line pinned by a mutant) --


@pytest.fixture
def cast(yomira, make_user):
    """People with each kind of right on §5 (DB pool): a role, a grant on the
    playbook, both, superuser; and the ones who must get nothing."""
    pool, other = (Playbook.objects.current().get(number=n) for n in (5, 4))
    people = {
        "admin_role": make_user("adm", "Admin"),  # every permission, as a role
        "granted": make_user("gina", "Commander"),  # run_actions on §5 only
        "approver": make_user("abe", "Commander"),  # approve_actions on §5 only
        "responder": make_user("rita", "Responder"),
        "nobody": make_user("nora"),
        "superuser": make_user("sue", is_superuser=True),
        "gone": make_user("gil", "Admin", is_active=False),
    }
    grant(people["granted"], "run_actions", playbooks=[pool])
    grant(people["approver"], "approve_actions", playbooks=[pool])
    grant(people["gone"], "run_actions", "approve_actions", playbooks=[pool])
    return type("Cast", (), {"people": people, "pool": pool, "other": other})


def fresh(user):  # noqa: ANN001, ANN201
    """The user as a new request sees them: no permission caches yet."""
    return type(user).objects.get(pk=user.pk)


def stub(**fields):  # noqa: ANN003, ANN201
    return SimpleNamespace(has_perm=lambda perm: True, **fields)


def test_can_needs_a_signed_in_active_holder_of_the_permission(cast):
    p = cast.people
    assert access.can(p["responder"], access.RUN_PROBES) is True
    assert access.can(p["responder"], access.RUN_ACTIONS) is False
    assert access.can(None, access.RUN_PROBES) is False
    assert access.can(AnonymousUser(), access.VIEW_INCIDENTS) is False
    assert access.can(p["gone"], access.RUN_PROBES) is False
    # A backend that answers yes is not enough: the person must be signed in and active.
    assert access.can(stub(is_authenticated=True, is_active=False), "x.y") is False
    assert access.can(stub(is_authenticated=False, is_active=True), "x.y") is False


def test_playbook_perms_are_the_grants_on_that_playbook_read_once(
    cast, django_assert_num_queries
):
    p = cast.people
    gina = fresh(p["granted"])
    with django_assert_num_queries(2):  # the grants counter, then all the grants
        assert access.playbook_perms(gina, cast.pool) == {"run_actions"}
    with django_assert_num_queries(0):  # cached on the person for the request
        assert access.playbook_perms(gina, cast.pool) == {"run_actions"}
        assert access.playbook_perms(gina, cast.other) == set()
    again = fresh(gina)
    with django_assert_num_queries(1):  # the next request: the counter only
        assert access.playbook_perms(again, cast.pool) == {"run_actions"}
    assert access.playbook_perms(fresh(p["responder"]), cast.pool) == set()
    assert access.playbook_perms(fresh(p["superuser"]), cast.other) == {
        "run_probes",
        "run_actions",
        "approve_actions",
    }
    assert access.playbook_perms(fresh(p["gone"]), cast.pool) == set()
    assert access.playbook_perms(AnonymousUser(), cast.pool) == set()
    assert access.playbook_perms(None, cast.pool) == set()


def test_can_on_playbook_takes_a_role_or_a_grant_on_this_playbook(cast):
    p = cast.people
    on = access.can_on_playbook
    assert on(fresh(p["granted"]), access.RUN_ACTIONS, cast.pool) is True
    assert on(fresh(p["granted"]), access.RUN_ACTIONS, cast.other) is False
    assert on(fresh(p["granted"]), access.APPROVE_ACTIONS, cast.pool) is False
    assert on(fresh(p["admin_role"]), access.RUN_ACTIONS, cast.other) is True
    assert on(fresh(p["responder"]), access.RUN_ACTIONS, cast.pool) is False
    assert on(fresh(p["gone"]), access.RUN_ACTIONS, cast.pool) is False


def test_who_may_run_approve_and_break_glass(cast):
    p = cast.people
    action = cast.pool.commands.get(text__startswith="SELECT pg_terminate")
    probe = cast.pool.commands.filter(kind=Command.Kind.PROBE).first()
    manual = Command(playbook=cast.pool, kind=Command.Kind.ACTION, executor="")
    assert access.run_permission(action) == access.RUN_ACTIONS
    assert access.run_permission(probe) == access.RUN_PROBES
    assert access.can_run(fresh(p["granted"]), action) is True
    assert access.can_run(fresh(p["responder"]), action) is False
    assert access.can_run(fresh(p["responder"]), probe) is True
    assert access.can_run(fresh(p["admin_role"]), manual) is False  # nothing to run
    assert access.can_run(fresh(p["granted"]), manual) is False

    assert access.can_break_glass(fresh(p["granted"]), action) is True
    rebel = fresh(p["responder"])
    grant(rebel, "run_actions", playbooks=[cast.pool])
    assert access.can_break_glass(fresh(rebel), action) is False  # not a commander
    assert access.can_break_glass(fresh(p["approver"]), action) is False

    asked = StepExecution(command=action, requested_by=p["granted"])
    assert access.can_approve(fresh(p["approver"]), asked) is True
    assert access.can_approve(fresh(p["admin_role"]), asked) is True
    assert access.can_approve(fresh(p["responder"]), asked) is False
    assert access.can_approve(None, asked) is False
    grant(p["granted"], "approve_actions", playbooks=[cast.pool])
    assert access.can_approve(fresh(p["granted"]), asked) is False  # four eyes
    assert (
        access.can_approve(
            fresh(p["admin_role"]),
            StepExecution(command=action, requested_by=p["admin_role"]),
        )
        is False
    )


def request_as(user, path="/somewhere/"):  # noqa: ANN001, ANN201
    request = RequestFactory().post(path, REMOTE_ADDR="10.1.2.3")
    request.user = user
    return request


def test_require_allows_or_denies_and_audits_the_denial_word_for_word(cast, incident):
    p = cast.people
    pool_incident = open_incident(
        playbook=cast.pool, title="pool", actor=Actor.person(p["admin_role"])
    )
    access.require(request_as(fresh(p["responder"])), access.RUN_PROBES)
    access.require(request_as(fresh(p["granted"])), access.RUN_ACTIONS, pool_incident)
    access.require(request_as(fresh(p["admin_role"])), access.RUN_ACTIONS, incident)
    assert not AuditEvent.objects.filter(verb="permission.denied").exists()

    with pytest.raises(PermissionDenied) as refused:
        access.require(request_as(fresh(p["granted"])), access.RUN_ACTIONS)
    assert str(refused.value) == "You need the 'run_actions' permission for this."
    with pytest.raises(PermissionDenied) as refused:
        access.require(
            request_as(fresh(p["granted"]), "/incidents/7/"),
            access.RUN_ACTIONS,
            incident,
        )
    assert str(refused.value) == "You need the 'run_actions' permission for this."
    denial = AuditEvent.objects.filter(verb="permission.denied").last()
    assert (denial.actor_id, denial.actor_name, denial.incident_id) == (
        p["granted"].pk,
        "gina",
        incident.pk,
    )
    assert denial.data == {
        "permission": "incidents.run_actions",
        "method": "POST",
        "path": "/incidents/7/",
        "why": "",
    }
    assert denial.ip == "10.1.2.3"
    with pytest.raises(PermissionDenied):
        access.require(request_as(fresh(p["nobody"])), access.VIEW_INCIDENTS, incident)
    assert AuditEvent.objects.filter(verb="permission.denied").count() == 3


def test_grant_sources_say_where_rights_come_from(cast):
    p = cast.people
    assert access.grant_sources(p["granted"], cast.pool) == [
        "role Commander",
        "granted here: run_actions",
    ]
    grant(p["granted"], "approve_actions", playbooks=[cast.pool])
    assert access.grant_sources(p["granted"], cast.pool) == [
        "role Commander",
        "granted here: approve_actions, run_actions",
    ]
    assert access.grant_sources(p["granted"], cast.other) == ["role Commander"]
    p["superuser"].groups.add(Group.objects.get(name="Viewer"))
    sources = access.grant_sources(p["superuser"], cast.other)
    assert sources[:2] == ["superuser", "role Viewer"]
    assert sources[2].startswith("granted here: add_playbook, approve_actions, ")
    assert access.grant_sources(p["nobody"], cast.pool) == []


def test_permissions_for_is_what_the_templates_offer(cast):
    p = cast.people
    commander = {
        "approve": False,
        "break_glass": True,
        "tick": True,
        "note": True,
        "command": True,
        "export": True,
        "open": True,
        "probes": True,
        "actions": False,
    }
    assert access.permissions_for(fresh(p["granted"])) == commander
    assert access.permissions_for(fresh(p["granted"]), cast.pool) == {
        **commander,
        "actions": True,
    }
    assert access.permissions_for(fresh(p["approver"]), cast.pool) == {
        **commander,
        "approve": True,
    }
    assert access.permissions_for(fresh(p["admin_role"])) == dict.fromkeys(
        commander, True
    )
    assert access.permissions_for(fresh(p["nobody"]), cast.pool) == dict.fromkeys(
        commander, False
    )


def test_people_who_can_holds_role_direct_and_superusers_once_each(cast, make_user):
    direct = make_user("dora")
    direct.user_permissions.add(Permission.objects.get(codename="command_incident"))
    twice = make_user("tom", "Commander")
    twice.groups.add(Group.objects.get(name="Admin"))
    twice.user_permissions.add(Permission.objects.get(codename="command_incident"))
    names = list(
        access.people_who_can(access.COMMAND_INCIDENTS).values_list(
            "username", flat=True
        )
    )
    assert sorted(names) == ["abe", "adm", "dora", "gina", "sue", "tom"]
    assert list(
        access.people_who_can(access.RUN_PROBES)
        .order_by("username")
        .values_list("username", flat=True)
    ) == ["abe", "adm", "gina", "rita", "sue", "tom"]
