"""Single sign-on against a real OpenID Connect provider (oidc-provider-mock): the
code flow end to end through the console's own views, each refusal on the sign-in
page and in the audit log, roles following the provider's groups at every sign-in."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.auth.models import Group
from django.test import Client

from incidents import access
from incidents.models import AuditEvent
from sso import config
from sso.models import Identity, RoleMapping
from tests.conftest import PASSWORD

from .conftest import OTHER_CLIENT_ID, sign_in_through, sso_settings

pytestmark = pytest.mark.django_db
User = get_user_model()


def roles_of(user) -> set[str]:  # noqa: ANN001
    return set(user.groups.values_list("name", flat=True))


def refusal(reason: str) -> AuditEvent:
    return AuditEvent.objects.filter(verb="login.refused", data__reason=reason).latest(
        "seq"
    )


def shown(client: Client, response) -> str:  # noqa: ANN001
    """The sign-in page the refusal sent the browser to, as text."""
    assert response.status_code == 302, response.status_code
    assert response["Location"] == "/accounts/login/"
    return client.get(response["Location"]).content.decode()


def signed_in_as(client: Client) -> str | None:
    pk = client.session.get(SESSION_KEY)
    return User.objects.get(pk=pk).username if pk else None


def test_the_first_sign_in_makes_the_account_with_the_mapped_role(sso, client):
    sso.set_user(
        "u-1001",
        preferred_username="rita",
        email="rita@example.com",
        given_name="Rita",
        groups=["oncall", "unrelated"],
    )
    response = sign_in_through(client, "u-1001")
    assert response.status_code == 302 and response["Location"] == "/"
    rita = User.objects.get(username="rita")
    assert signed_in_as(client) == "rita"
    assert roles_of(rita) == {"Responder"}
    assert access.can(rita, access.OPEN_INCIDENTS)
    assert not access.can(rita, access.COMMAND_INCIDENTS)
    assert (rita.email, rita.first_name, rita.is_staff) == (
        "rita@example.com",
        "Rita",
        False,
    )
    assert not rita.has_usable_password()  # the provider is her only way in
    identity = Identity.objects.get(user=rita)
    assert (identity.issuer, identity.subject) == (sso.url, "u-1001")
    # Audited: the account and its role by the system identity "sso", then the
    # sign-in as the password's is, saying how.
    created = AuditEvent.objects.filter(verb="user.created").latest("seq")
    assert (created.actor_name, created.data["username"]) == ("sso", "rita")
    granted = AuditEvent.objects.filter(verb="grant.changed").latest("seq")
    assert granted.actor_name == "sso" and granted.actor_id is None
    assert granted.data == {
        "of": "rita",
        "what": "group",
        "action": "add",
        "items": ["Responder"],
    }
    login = AuditEvent.objects.filter(verb="login.succeeded").latest("seq")
    assert login.actor_id == rita.pk
    assert login.data == {
        "method": "sso",
        "issuer": sso.url,
        "subject": "u-1001",
        "mapped": ["oncall"],
        "roles": ["Responder"],
    }
    assert login.seq > granted.seq > created.seq


def test_a_group_removed_at_the_provider_takes_the_role_at_the_next_sign_in(
    sso, client
):
    sso.set_user("u-1002", preferred_username="cole", groups=["oncall", "readers"])
    sign_in_through(client, "u-1002")
    cole = User.objects.get(username="cole")
    assert roles_of(cole) == {"Responder", "Viewer"}
    other = Group.objects.create(name="night-shift")  # not a role: left alone
    cole.groups.add(other)

    sso.set_user("u-1002", preferred_username="cole", groups=["readers"])
    client.post("/accounts/logout/")
    response = sign_in_through(client, "u-1002")
    assert response.status_code == 302 and response["Location"] == "/"
    assert signed_in_as(client) == "cole"
    assert roles_of(cole) == {"Viewer", "night-shift"}
    assert not access.can(User.objects.get(pk=cole.pk), access.OPEN_INCIDENTS)
    assert User.objects.filter(username__startswith="cole").count() == 1
    taken = AuditEvent.objects.filter(verb="grant.changed").latest("seq")
    assert taken.actor_name == "sso"
    assert taken.data == {
        "of": "cole",
        "what": "group",
        "action": "remove",
        "items": ["Responder"],
    }
    # Role changes are two events at most per sign-in, and none when nothing changed.
    before = AuditEvent.objects.filter(verb="grant.changed").count()
    client.post("/accounts/logout/")
    sign_in_through(client, "u-1002")
    assert AuditEvent.objects.filter(verb="grant.changed").count() == before


def test_someone_with_no_mapped_group_is_refused_and_loses_their_roles(sso, client):
    sso.set_user("u-1003", preferred_username="vera", groups=["readers"])
    sign_in_through(client, "u-1003")
    vera = User.objects.get(username="vera")
    client.post("/accounts/logout/")

    sso.set_user("u-1003", preferred_username="vera", groups=["marketing"])
    response = sign_in_through(client, "u-1003")
    assert (
        "your account has no role in the console: ask an admin to map one of your groups"
        in (shown(client, response).lower())
    )
    assert signed_in_as(client) is None
    assert roles_of(vera) == set()
    event = refusal("no_role")
    assert event.data == {
        "method": "sso",
        "reason": "no_role",
        "subject": "u-1003",
        "claim": "groups",
        "values": ["marketing"],
    }
    removed = AuditEvent.objects.filter(verb="grant.changed").latest("seq")
    assert (removed.actor_name, removed.data["action"], removed.data["items"]) == (
        "sso",
        "remove",
        ["Viewer"],
    )


def test_a_first_comer_with_no_mapped_group_gets_no_account(sso, client):
    sso.set_user("u-1004", preferred_username="nobody-here")  # no groups claim at all
    response = sign_in_through(client, "u-1004")
    assert "has no role in the console" in shown(client, response)
    assert not User.objects.filter(username="nobody-here").exists()
    assert refusal("no_role").data["values"] == []


def test_an_id_token_for_another_application_is_refused(sso, client, relay):
    """A real token from the real provider, signed with its key, for the right
    person and this very sign-in (its nonce), but issued to another client."""
    sso.set_user("u-1005", preferred_username="mallory", groups=["console-admins"])
    relay.as_client = OTHER_CLIENT_ID
    response = sign_in_through(client, "u-1005", client_id=OTHER_CLIENT_ID)
    assert "meant for another application" in shown(client, response)
    assert signed_in_as(client) is None
    assert not Identity.objects.exists()
    assert not User.objects.filter(username="mallory").exists()
    event = refusal("wrong_audience")
    assert event.data["audience"] == [OTHER_CLIENT_ID]
    assert "eyJ" not in str(event.data)  # never the token


def test_a_token_with_a_spoiled_signature_is_refused(sso, client, relay):
    sso.set_user("u-1006", preferred_username="eve", groups=["oncall"])
    relay.corrupt = True
    response = sign_in_through(client, "u-1006")
    assert "could not be verified" in shown(client, response)
    assert signed_in_as(client) is None
    assert "InvalidSignatureError" in refusal("invalid_token").data["error"]


def test_an_expired_token_is_refused(settings, stale_idp, roles, client):
    sso_settings(settings, stale_idp)
    stale_idp.set_user("u-1007", preferred_username="late", groups=["oncall"])
    response = sign_in_through(client, "u-1007")
    assert "had expired" in shown(client, response)
    assert signed_in_as(client) is None
    assert refusal("expired").data == {"method": "sso", "reason": "expired"}
    assert not User.objects.filter(username="late").exists()


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("?code=abc&state=never-issued", "bad_state"),
        ("?code=abc", "bad_state"),
        ("", "bad_state"),
        ("?state=x&code=y&state=z", "bad_state"),
        ("?error=access_denied&state=x", "provider_error"),
        ("?error=" + "x" * 5000, "provider_error"),
    ],
)
def test_a_callback_this_browser_did_not_start_is_refused(sso, client, query, reason):
    response = client.get(f"/sso/callback/{query}")
    assert shown(client, response)
    assert signed_in_as(client) is None
    assert refusal(reason)


def test_a_callback_is_good_once(sso, client):
    sso.set_user("u-1008", preferred_username="once", groups=["oncall"])
    start = client.get("/sso/authenticate/")
    answer = requests.post(
        start["Location"], data={"sub": "u-1008"}, allow_redirects=False, timeout=10
    )
    back = urlsplit(answer.headers["Location"])
    assert client.get(f"{back.path}?{back.query}")["Location"] == "/"
    client.post("/accounts/logout/")
    again = client.get(f"{back.path}?{back.query}")
    assert "started in another browser" in shown(client, again)
    assert signed_in_as(client) is None


def test_the_next_page_asked_for_is_where_the_sign_in_lands(sso, client):
    sso.set_user("u-1009", preferred_username="nina", groups=["readers"])
    response = sign_in_through(client, "u-1009", next_url="/playbooks/")
    assert response["Location"] == "/playbooks/"
    client.post("/accounts/logout/")
    elsewhere = sign_in_through(client, "u-1009", next_url="https://evil.example/")
    assert elsewhere["Location"] == "/"


def test_an_unreachable_provider_is_a_clear_refusal_not_a_500(settings, roles, client):
    from tests.sso.conftest import Provider

    sso_settings(settings, Provider("http://localhost:9"))  # nothing listens there
    response = client.get("/sso/authenticate/")
    assert "Single sign-on is unavailable" in shown(client, response)
    assert refusal("provider_unavailable")


def test_a_discovery_document_naming_another_issuer_is_refused(
    settings, roles, client, httpserver
):
    """OpenID Connect Discovery 4.3: the document must name the issuer asked."""
    from tests.sso.conftest import Provider

    issuer = httpserver.url_for("/realms/ops")
    httpserver.expect_request(
        "/realms/ops/.well-known/openid-configuration"
    ).respond_with_json(
        {
            "issuer": "https://someone-else.example",
            "authorization_endpoint": f"{issuer}/auth",
            "token_endpoint": f"{issuer}/token",
            "jwks_uri": f"{issuer}/jwks",
        }
    )
    sso_settings(settings, Provider(issuer))
    response = client.get("/sso/authenticate/")
    assert "names another issuer" in shown(client, response)
    assert signed_in_as(client) is None


def test_discovery_is_asked_once_then_remembered(sso, client, monkeypatch):
    calls = []
    real = config._get_json

    def counting(url: str, what: str) -> dict:
        calls.append(what)
        return real(url, what)

    monkeypatch.setattr(config, "_get_json", counting)
    sso.set_user("u-1010", preferred_username="dora", groups=["readers"])
    sign_in_through(client, "u-1010")
    client.post("/accounts/logout/")
    sign_in_through(client, "u-1010")
    assert calls == ["discovery", "signing keys"]


def test_a_taken_username_is_never_linked_and_break_glass_names_are_reserved(
    sso, client, make_user
):
    local = make_user("alice", "Viewer")
    sso.set_user("u-1011", preferred_username="alice", groups=["oncall"])
    sign_in_through(client, "u-1011")
    assert signed_in_as(client) == "alice-2"
    assert roles_of(local) == {"Viewer"}  # the local account is untouched
    client.post("/accounts/logout/")
    sso.set_user("u-1012", preferred_username="admin", groups=["console-admins"])
    sign_in_through(client, "u-1012")
    assert signed_in_as(client) == "admin-2"


def test_an_admin_mapping_gives_staff_status_and_never_superuser(sso, client):
    sso.set_user("u-1013", preferred_username="ada", groups=["console-admins"])
    sign_in_through(client, "u-1013")
    ada = User.objects.get(username="ada")
    assert (ada.is_staff, ada.is_superuser) == (True, False)
    assert client.get("/admin/").status_code == 200
    client.post("/accounts/logout/")
    sso.set_user("u-1013", preferred_username="ada", groups=["readers"])
    sign_in_through(client, "u-1013")
    ada.refresh_from_db()
    assert (ada.is_staff, roles_of(ada)) == (False, {"Viewer"})
    changed = AuditEvent.objects.filter(verb="user.changed").latest("seq")
    assert changed.actor_name == "sso"
    assert changed.data["changes"] == {"is_staff": [True, False]}


def test_a_deactivated_account_stays_out(sso, client):
    sso.set_user("u-1014", preferred_username="gone", groups=["oncall"])
    sign_in_through(client, "u-1014")
    User.objects.filter(username="gone").update(is_active=False)
    # Its open session ends at once, as a password sign-in's does.
    assert client.get("/incidents/")["Location"].startswith("/accounts/login/")
    client.post("/accounts/logout/")
    response = sign_in_through(client, "u-1014")
    assert "deactivated" in shown(client, response)
    assert signed_in_as(client) is None


def test_logout_ends_the_providers_session_with_the_id_token(sso, client):
    sso.set_user("u-1015", preferred_username="lou", groups=["readers"])
    sign_in_through(client, "u-1015")
    id_token = client.session["oidc_id_token"]
    response = client.post("/accounts/logout/")
    assert response.status_code == 200
    target = response["Refresh"].removeprefix("0;url=")
    assert target.startswith(f"{sso.url}/oauth2/end_session?")
    query = parse_qs(urlsplit(target).query)
    assert query["id_token_hint"] == [id_token]
    assert query["post_logout_redirect_uri"] == ["http://testserver/accounts/login/"]
    assert f'href="{target.replace("&", "&amp;")}"' in response.content.decode()
    assert signed_in_as(client) is None
    assert AuditEvent.objects.filter(verb="logout").latest("seq").actor_name == "lou"
    # The provider's own page takes the hint.
    page = requests.get(target, timeout=10)
    assert page.status_code == 200 and "id_token_hint" in page.text


def test_a_password_sign_out_stays_local(sso, client, make_user):
    make_user("paula", "Viewer")
    client.post("/accounts/login/", {"username": "paula", "password": PASSWORD})
    response = client.post("/accounts/logout/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"


def test_sso_views_refuse_when_it_is_not_configured(client, db):
    for url in ("/sso/authenticate/", "/sso/callback/?code=a&state=b"):
        response = client.get(url)
        assert "not configured" in shown(client, response)


def test_the_sign_in_page_offers_the_provider(sso, client):
    page = client.get("/accounts/login/").content.decode()
    assert "Sign in with Mock IdP" in page and 'href="/sso/authenticate/"' in page
    assert "Break-glass sign-in" not in page
    assert 'id="id_password"' in page


def test_role_mapping_changes_are_audited(admin_client, roles):
    mapping = RoleMapping.objects.get(claim_value="oncall")
    admin_client.post(
        f"/admin/sso/rolemapping/{mapping.pk}/change/",
        {"claim_value": "oncall", "group": roles["Commander"].pk, "staff": ""},
    )
    event = AuditEvent.objects.filter(verb="sso.mapping_changed").latest("seq")
    assert event.actor_name == "admin"
    assert event.data == {"claim_value": "oncall", "role": "Commander", "staff": False}


def test_a_mapping_only_takes_a_role(admin_client, roles):
    other = Group.objects.create(name="night-shift")
    response = admin_client.post(
        "/admin/sso/rolemapping/add/", {"claim_value": "x", "group": other.pk}
    )
    assert response.status_code == 200  # the form again, with its error
    assert not RoleMapping.objects.filter(claim_value="x").exists()


@pytest.mark.parametrize("field", ["code", "state", "error", "next"])
def test_hostile_values_are_refused_without_a_500(sso, field):
    from tests.test_hostile_input import HOSTILE

    for value in HOSTILE:
        client = Client(raise_request_exception=False)
        start = client.get(
            "/sso/authenticate/", {"next": value} if field == "next" else {}
        )
        assert start.status_code == 302, (field, value[:20])
        # With the state this browser was given: a hostile code reaches the
        # provider's token endpoint, which refuses it.
        state = parse_qs(urlsplit(start["Location"]).query).get("state", ["s"])[0]
        query = {"code": "c", "state": state, field: value}
        if field != "next":
            response = client.get("/sso/callback/", query)
            assert response.status_code == 302, (
                field,
                value[:20],
                response.status_code,
            )
            assert response["Location"] == "/accounts/login/"
            assert signed_in_as(client) is None
    if field == "code":
        assert refusal("token_refused").data["error"] == "invalid_grant"
