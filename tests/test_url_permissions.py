"""Walk every URL the console serves, as an anonymous visitor and as a signed-in
user with no rights. A new view that forgets its permission check fails here."""

from __future__ import annotations

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from incidents.models import AuditEvent
from tests.conftest import signed_in

# Open to anyone (or to anyone signed in): the way in, the way out, health checks.
PUBLIC = {"login", "health_ready", "health_live"}
ANY_SIGNED_IN = {"logout", "password_change", "password_change_done", "home"}


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


def test_anonymous_visitors_are_sent_to_sign_in(client, urls):
    for name, url in urls:
        if name in PUBLIC or name == "logout":
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
        if name in PUBLIC | ANY_SIGNED_IN:
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
