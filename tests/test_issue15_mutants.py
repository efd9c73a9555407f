"""Tests written for the mutants that survived issue 15's mutation run
(docs/mutation/issue15.md): personal API tokens (api/auth.py, api/tokens.py) and
single sign-on (sso/backend.py). Each states the behaviour a surviving mutant
changed: the refusal's words, the audit record in full, which tokens stay live,
which roles a person keeps; none replaces the code under test with a mock (the
identity provider is the real oidc-provider-mock of tests/sso)."""

# tests/sso's fixtures are imported by name, so tests name them as arguments: that
# is how pytest uses them, not a redefinition.
# ruff: noqa: F811

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.auth.models import Group
from django.test import Client
from jwt.algorithms import RSAAlgorithm

from api import tokens
from api.models import ApiToken, RateWindow
from incidents import access
from incidents.actors import Actor
from incidents.models import AuditEvent
from sso import backend, config
from sso.models import Identity
from tests.conftest import PASSWORD
from tests.sso.conftest import (  # noqa: F401 (fixtures by name)
    CLIENT_ID,
    Provider,
    TokenRelay,
    idp,
    roles,
    sign_in_through,
    sso,
    sso_settings,
)

pytestmark = pytest.mark.django_db
User = get_user_model()

GATE = "sso.backend.LocalAccountsGate"
MODEL_BACKEND = "incidents.backends.ConsoleModelBackend"
NO_TOKEN = "a missing, wrong or revoked token"
NOT_VERIFIED = "The identity provider's answer could not be verified."


def denials() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(verb="permission.denied").order_by("seq"))


def refusal(reason: str) -> AuditEvent:
    return AuditEvent.objects.filter(verb="login.refused", data__reason=reason).latest(
        "seq"
    )


def said(client: Client, response: Any) -> list[str]:  # noqa: ANN401
    """What the sign-in page a refusal sent the browser to says, word for word."""
    assert response.status_code == 302, response.status_code
    assert response["Location"] == "/accounts/login/"
    page = client.get(response["Location"]).content.decode()
    return [
        html.unescape(m) for m in re.findall(r'<li class="msg-error">(.*?)</li>', page)
    ]


def read_token(user: Any, name: str = "script") -> str:  # noqa: ANN401
    _, secret = tokens.create(
        user=user, name=name, scope="read", actor=Actor.person(user)
    )
    return secret


# --- api.auth: the 401's audit record ------------------------------------------------


def test_a_request_without_a_token_is_audited_by_its_address_in_full() -> None:
    response = Client(REMOTE_ADDR="10.15.0.1").get("/api/v1/incidents")
    assert response.status_code == 401
    (event,) = denials()
    assert (event.actor_name, event.actor_id, event.ip) == ("", None, "10.15.0.1")
    assert event.data == {
        "permission": "api",
        "method": "GET",
        "path": "/api/v1/incidents",
        "why": NO_TOKEN,
    }


def test_the_401_record_keeps_a_bounded_start_of_a_long_path() -> None:
    path = "/api/v1/playbooks/" + "x" * 400
    response = Client().get(path, headers={"Authorization": "Bearer yom_nope"})
    assert response.status_code == 401
    (event,) = denials()
    kept = event.data["path"]
    assert path.startswith(kept) and 200 <= len(kept) <= 300


def skipped_count(data: dict[str, Any]) -> int | None:
    """The number of denials not audited before this one, when the record has it.
    (The key is `unaudited_before` at the mutated commit; the working tree moves
    the API's denials onto the webhooks' `not_audited_before`.)"""
    extra = set(data) - {"permission", "method", "path", "why"}
    if not extra:
        return None
    assert extra in ({"unaudited_before"}, {"not_audited_before"}), data
    return data[extra.pop()]


def test_the_denial_budget_is_per_address_and_the_next_record_counts_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from alerts import sources

    minute = [28_000_000]
    monkeypatch.setattr(sources, "this_minute", lambda: minute[0])
    flood = Client(REMOTE_ADDR="10.15.0.2")
    for _ in range(sources.DENIALS_AUDITED + 2):
        assert flood.get("/api/v1/incidents").status_code == 401
    assert [e.ip for e in denials()] == ["10.15.0.2"] * sources.DENIALS_AUDITED
    assert all(skipped_count(e.data) is None for e in denials())
    # Another address in the same minute has a budget of its own.
    assert Client(REMOTE_ADDR="10.15.0.3").get("/api/v1/alerts").status_code == 401
    other = denials()[-1]
    assert other.ip == "10.15.0.3" and skipped_count(other.data) is None
    assert other.data["path"] == "/api/v1/alerts"
    # The flooding address's next minute: audited again, saying how many were not.
    minute[0] += 1
    assert flood.get("/api/v1/incidents").status_code == 401
    again = denials()[-1]
    assert again.ip == "10.15.0.2" and skipped_count(again.data) == 2
    assert (again.data["permission"], again.data["why"]) == ("api", NO_TOKEN)
    # Reported once.
    assert flood.get("/api/v1/incidents").status_code == 401
    assert skipped_count(denials()[-1].data) is None


def test_the_scheme_is_read_case_blind_and_spaces_around_the_secret_are_dropped(
    make_user,
) -> None:
    vera = make_user("vera", "Viewer")
    secret = read_token(vera)
    for header in (f"bearer {secret}", f"BEARER  {secret} "):
        response = Client().get("/api/v1/playbooks", headers={"Authorization": header})
        assert response.status_code == 200, header
    assert denials() == []
    # A lone surrogate (the test client passes text as it is) is refused too.
    for header in (f"Token {secret}", secret, f"Bearer{secret}", "Bearer yom_\ud800"):
        response = Client().get("/api/v1/playbooks", headers={"Authorization": header})
        assert response.status_code == 401, header
    assert [e.data["why"] for e in denials()] == [NO_TOKEN] * 4


# --- api.auth.writing: a read-only token's refusal -----------------------------------


def test_a_read_only_token_is_refused_in_words_and_audited_in_full(make_user) -> None:
    cole = make_user("cole", "Commander")
    secret = read_token(cole)
    response = Client(REMOTE_ADDR="10.15.0.4").post(
        "/api/v1/incidents",
        {"playbook": "redis-down-unreachable", "title": "x"},
        content_type="application/json",
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert response.status_code == 403
    assert response.json() == {
        "error": {
            "status": 403,
            "code": "read_only_token",
            "message": "The token “script” may only read: make a read-and-write "
            "token to change things.",
            "fields": {},
        }
    }
    (event,) = denials()
    assert (event.actor_name, event.actor_id, event.ip) == (
        "cole via API token “script”",
        cole.pk,
        "10.15.0.4",
    )
    assert event.data == {
        "permission": "api.write",
        "method": "POST",
        "path": "/api/v1/incidents",
        "why": "a read-only token",
    }


def test_a_read_only_refusal_keeps_the_first_300_characters_of_the_path(
    make_user,
) -> None:
    cole = make_user("cole", "Commander")
    secret = read_token(cole)
    path = "/api/v1/incidents/" + "9" * 300 + "/status"
    response = Client().post(
        path,
        {"status": "acknowledged"},
        content_type="application/json",
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "read_only_token"
    (event,) = denials()
    assert event.data["path"] == path[:300]


# --- api.tokens.create ----------------------------------------------------------------


def refused(**asked: Any) -> str:  # noqa: ANN401
    with pytest.raises(tokens.TokenRefused) as caught:
        tokens.create(**asked)
    return str(caught.value)


def test_a_token_is_made_with_a_name_of_up_to_60_and_refused_in_words(
    make_user,
) -> None:
    vera = make_user("vera", "Viewer")
    me = Actor.person(vera, "10.15.0.7")
    token, secret = tokens.create(user=vera, name="n" * 60, scope="write", actor=me)
    assert ApiToken.objects.get(pk=token.pk).name == "n" * 60
    assert tokens.find(secret) == token
    made = AuditEvent.objects.get(verb="api_token.created")
    assert (made.actor_name, made.actor_id, made.ip) == ("vera", vera.pk, "10.15.0.7")
    assert (made.object_type, made.object_id) == ("apitoken", str(token.pk))
    assert made.data == {"name": "n" * 60, "scope": "write", "owner": "vera"}
    naming = "Name the token (1 to 60 printable characters): what will use it?"
    for name in ("", "  ", "n" * 61, "bell\x07", "a\x00b"):
        assert refused(user=vera, name=name, scope="read", actor=me) == naming
    assert (
        refused(user=vera, name="bot", scope="admin", actor=me)
        == "Choose a scope: read, or read and write."
    )
    assert (
        refused(user=vera, name="n" * 60, scope="read", actor=me)
        == f"You already have a token named “{'n' * 60}”."
    )
    assert ApiToken.objects.count() == 1


def test_twenty_live_tokens_a_person_then_revoke_one_first(make_user) -> None:
    vera = make_user("vera", "Viewer")
    cole = make_user("cole", "Commander")
    me = Actor.person(vera)
    made = [
        tokens.create(user=vera, name=f"t{n}", scope="read", actor=me)[0]
        for n in range(1, tokens.TOKENS_PER_PERSON + 1)
    ]
    assert (
        refused(user=vera, name="t21", scope="read", actor=me)
        == "You have 20 tokens already: revoke one first."
    )
    # Per person: another person still makes one.
    tokens.create(user=cole, name="t21", scope="read", actor=Actor.person(cole))
    tokens.revoke(token=made[0], actor=me)
    tokens.create(user=vera, name="t21", scope="read", actor=me)
    assert ApiToken.objects.filter(user=vera, revoked_at__isnull=True).count() == 20


# --- api.tokens.revoke ----------------------------------------------------------------


def test_a_revocation_stops_that_token_only_once_and_is_audited_in_full(
    make_user,
) -> None:
    vera = make_user("vera", "Viewer")
    cole = make_user("cole", "Commander")
    bot, _ = tokens.create(
        user=vera, name="bot", scope="read", actor=Actor.person(vera)
    )
    laptop, _ = tokens.create(
        user=vera, name="laptop", scope="write", actor=Actor.person(vera)
    )
    coles, _ = tokens.create(
        user=cole, name="bot", scope="write", actor=Actor.person(cole)
    )
    assert tokens.revoke(token=bot, actor=Actor.person(vera, "10.15.0.5")) is True
    stopped = ApiToken.objects.get(pk=bot.pk)
    assert stopped.revoked_at is not None and stopped.revoked_by == "vera"
    # The person's other token and another person's token of the same name: live.
    assert set(
        ApiToken.objects.filter(revoked_at__isnull=True).values_list("pk", flat=True)
    ) == {laptop.pk, coles.pk}
    (event,) = AuditEvent.objects.filter(verb="api_token.revoked")
    assert (event.actor_name, event.actor_id, event.ip) == (
        "vera",
        vera.pk,
        "10.15.0.5",
    )
    assert (event.object_type, event.object_id) == ("apitoken", str(bot.pk))
    assert event.data == {"name": "bot", "scope": "read", "owner": "vera"}
    # Again, by someone else: nothing to stop, nothing recorded, nothing rewritten.
    assert tokens.revoke(token=bot, actor=Actor.system("sweeper")) is False
    again = ApiToken.objects.get(pk=bot.pk)
    assert (again.revoked_at, again.revoked_by) == (
        stopped.revoked_at,
        "vera",
    )
    assert AuditEvent.objects.filter(verb="api_token.revoked").count() == 1


def test_a_revoker_with_a_long_name_is_recorded_by_its_first_150_characters(
    make_user,
) -> None:
    vera = make_user("vera", "Viewer")
    token, _ = tokens.create(
        user=vera, name="bot", scope="read", actor=Actor.person(vera)
    )
    name = "cleanup-job-" + "x" * 200
    assert tokens.revoke(token=token, actor=Actor.system(name)) is True
    assert ApiToken.objects.get(pk=token.pk).revoked_by == name[:150]
    event = AuditEvent.objects.get(verb="api_token.revoked")
    assert event.actor_name == name[:150]


# --- api.tokens.count_use: the rate limit -------------------------------------------

# The last second of a minute, on a clock the test sets (api.tokens reads time.time).
MINUTE = 30_000_000


def test_the_rate_limit_counts_per_clock_minute_and_says_when_to_retry(
    make_user, settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.API_RATE_LIMIT_PER_MINUTE = 1
    clock = [MINUTE * 60 - 1.0]
    monkeypatch.setattr(tokens, "time", SimpleNamespace(time=lambda: clock[0]))
    vera = make_user("vera", "Viewer")
    api = Client(headers={"Authorization": f"Bearer {read_token(vera)}"})
    token = ApiToken.objects.get()
    assert token.last_used_at is None
    assert api.get("/api/v1/playbooks").status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None  # noted by the minute's first request
    limited = api.get("/api/v1/playbooks")
    assert limited.status_code == 429
    assert limited["Retry-After"] == "1"
    assert limited.json() == {
        "error": {
            "status": 429,
            "code": "rate_limited",
            "message": "This token made more than 1 requests this minute: wait 1 s.",
            "fields": {},
        }
    }
    # The next second is the next minute: a new count, and the old one forgotten.
    clock[0] += 1
    assert api.get("/api/v1/playbooks").status_code == 200
    assert list(
        RateWindow.objects.filter(token=token).values_list("minute", "count")
    ) == [(MINUTE, 1)]


# --- sso.backend.local_sign_in_allowed / LocalAccountsGate ----------------------------


@pytest.fixture
def gated(settings: Any) -> None:  # noqa: ANN401
    backends = [b for b in settings.AUTHENTICATION_BACKENDS if b != GATE]
    backends.insert(backends.index(MODEL_BACKEND), GATE)
    settings.AUTHENTICATION_BACKENDS = backends
    settings.BREAK_GLASS_USERS = ["admin"]


def signs_in(username: str, password: str = PASSWORD) -> bool:
    """The sign-in form, as a person uses it."""
    client = Client()
    client.post("/accounts/login/", {"username": username, "password": password})
    return SESSION_KEY in client.session


def test_with_local_accounts_on_the_gate_lets_every_password_through(
    gated, settings, make_user
) -> None:
    make_user("rita", "Responder")
    make_user("admin", "Admin")
    settings.LOCAL_ACCOUNTS = True
    assert signs_in("rita") and signs_in("admin")
    assert not signs_in("rita", "wrong")  # the model backend still decides
    settings.LOCAL_ACCOUNTS = False
    assert not signs_in("rita")
    assert signs_in("admin")


# --- sso.backend.claim_values ---------------------------------------------------------


def test_the_roles_claim_is_read_from_the_configured_claim(settings) -> None:
    settings.OIDC_ROLES_CLAIM = "roles"
    assert backend.claim_values({"roles": ["oncall"], "groups": ["readers"]}) == [
        "oncall"
    ]
    assert backend.claim_values({"groups": ["readers"]}) == []
    # One string is one value (some providers send a single group so).
    assert backend.claim_values({"roles": "oncall"}) == ["oncall"]


def test_the_roles_claim_keeps_strings_of_1_to_255_characters_once_sorted(
    settings,
) -> None:
    settings.OIDC_ROLES_CLAIM = "groups"
    values = ["b", "a", "b", "", "x" * 255, "y" * 256, 5, None, ["c"], {"d": 1}, "z"]
    assert backend.claim_values({"groups": values}) == ["a", "b", "x" * 255, "z"]
    assert backend.claim_values({"groups": {"oncall": True}}) == []
    assert backend.claim_values({"groups": 7}) == []


def test_a_single_string_in_a_renamed_roles_claim_gives_its_role(sso, settings) -> None:
    settings.OIDC_ROLES_CLAIM = "roles"
    sso.set_user(
        "u-1501", preferred_username="rosa", roles="oncall", groups=["readers"]
    )
    response = sign_in_through(Client(), "u-1501")
    assert response.status_code == 302 and response["Location"] == "/"
    rosa = User.objects.get(username="rosa")
    assert set(rosa.groups.values_list("name", flat=True)) == {"Responder"}


# --- sso.backend.SSOBackend.apply_roles ---------------------------------------------


def role(name: str) -> Group:
    return Group.objects.get(name=name)


def test_the_account_object_answers_with_its_new_roles_at_once(
    roles, make_user
) -> None:
    rita = make_user("rita")
    # Read once, so Django's caches on this very object are filled.
    assert not rita.has_perm(access.OPEN_INCIDENTS)
    assert rita.get_group_permissions() == set()
    backend.SSOBackend.apply_roles(rita, {role("Responder")}, staff=False)
    assert rita.has_perm(access.OPEN_INCIDENTS)
    assert access.OPEN_INCIDENTS in rita.get_group_permissions()
    backend.SSOBackend.apply_roles(rita, set(), staff=False)
    assert not rita.has_perm(access.OPEN_INCIDENTS)
    assert rita.get_group_permissions() == set()


def test_a_staff_change_writes_staff_status_only(roles, make_user) -> None:
    ada = make_user("ada", "Admin")
    # Deactivated by an admin after this copy of the account was read.
    User.objects.filter(pk=ada.pk).update(is_active=False, first_name="Ada")
    backend.SSOBackend.apply_roles(ada, {role("Admin")}, staff=True)
    stored = User.objects.get(pk=ada.pk)
    assert (stored.is_staff, stored.is_active, stored.first_name) == (
        True,
        False,
        "Ada",
    )


def test_a_staff_change_records_only_what_it_wrote(roles, make_user) -> None:
    """Found by this mutation work: a save of is_staff alone on a copy read before
    an admin deactivated and renamed the account recorded that single sign-on had
    re-activated and renamed it. The record now holds only the fields written."""
    ada = make_user("ada", "Admin")
    User.objects.filter(pk=ada.pk).update(is_active=False, first_name="Ada")
    backend.SSOBackend.apply_roles(ada, {role("Admin")}, staff=True)
    changed = AuditEvent.objects.filter(verb="user.changed").latest("seq")
    assert changed.data == {"username": "ada", "changes": {"is_staff": [False, True]}}


# --- sso.backend.SSOBackend.get_or_create_user --------------------------------------


class Relay(TokenRelay):
    """The provider's token endpoint, with what the console sent it kept
    (`authorizations`) and its answers (`answers`). `rewrite` changes an answer on
    its way back; `then` changes the person's claims at the provider once the
    tokens are issued, so the ID token has the claims of before and the userinfo
    endpoint (asked next) those of after."""

    def __init__(self, upstream: str, provider: Provider) -> None:
        super().__init__(upstream)
        self.provider = provider
        self.then: tuple[str, dict[str, Any]] | None = None
        self.rewrite: Callable[[dict[str, Any]], dict[str, Any]] | None = None
        self.authorizations: list[str] = []
        self.forms: list[dict[str, str]] = []
        self.answers: list[dict[str, Any]] = []

    def app(self, environ, start_response):  # noqa: ANN001, ANN201
        length = int(environ.get("CONTENT_LENGTH") or 0)
        form = dict(parse_qsl(environ["wsgi.input"].read(length).decode()))
        authorization = environ.get("HTTP_AUTHORIZATION", "")
        self.authorizations.append(authorization)
        self.forms.append(form)
        answer = requests.post(
            self.upstream,
            data=form,
            headers={"Authorization": authorization} if authorization else {},
            timeout=10,
        )
        body = answer.content
        if answer.status_code == 200:
            issued = answer.json()
            self.answers.append(dict(issued))
            if self.rewrite is not None:
                body = json.dumps(self.rewrite(issued)).encode()
        if self.then is not None:
            sub, claims = self.then
            self.provider.set_user(sub, **claims)
        start_response(
            f"{answer.status_code} X",
            [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
        )
        return [body]


@pytest.fixture
def relay(sso: Provider, settings: Any) -> Iterator[Relay]:  # noqa: ANN401
    with Relay(f"{sso.url}/oauth2/token", sso) as relay:
        settings.OIDC_OP_TOKEN_ENDPOINT = relay.url
        config.forget()
        yield relay
    config.forget()


def test_the_userinfo_claims_add_to_the_id_tokens(sso, relay) -> None:
    sso.set_user("u-1502", preferred_username="uma", groups=["readers"])
    relay.then = (
        "u-1502",
        {"preferred_username": "uma", "groups": ["oncall"], "given_name": "Uma"},
    )
    client = Client()
    response = sign_in_through(client, "u-1502")
    assert response.status_code == 302 and response["Location"] == "/"
    uma = User.objects.get(username="uma")
    assert set(uma.groups.values_list("name", flat=True)) == {"Responder"}
    assert uma.first_name == "Uma"
    login = AuditEvent.objects.filter(verb="login.succeeded").latest("seq")
    assert login.data == {
        "method": "sso",
        "issuer": sso.url,
        "subject": "u-1502",
        "mapped": ["oncall"],
        "roles": ["Responder"],
    }


def test_the_same_subject_at_another_issuer_is_another_person(sso, make_user) -> None:
    elsewhere = make_user("eliza", "Commander")
    Identity.objects.create(
        user=elsewhere, issuer="https://other-idp.example", subject="u-1503"
    )
    sso.set_user("u-1503", preferred_username="ellen", groups=["readers"])
    client = Client()
    response = sign_in_through(client, "u-1503")
    assert response.status_code == 302 and response["Location"] == "/"
    ellen = User.objects.get(username="ellen")
    assert client.session["_auth_user_id"] == str(ellen.pk)
    assert set(ellen.groups.values_list("name", flat=True)) == {"Viewer"}
    assert set(elsewhere.groups.values_list("name", flat=True)) == {"Commander"}
    assert Identity.objects.get(user=ellen).issuer == sso.url


def test_the_account_and_role_changes_at_sign_in_carry_the_persons_address(sso) -> None:
    sso.set_user("u-1504", preferred_username="ines", groups=["oncall"])
    sign_in_through(Client(REMOTE_ADDR="10.15.0.6"), "u-1504")
    created = AuditEvent.objects.get(verb="user.created", data__username="ines")
    granted = AuditEvent.objects.filter(verb="grant.changed").latest("seq")
    for event in (created, granted):
        assert (event.actor_name, event.actor_id, event.ip) == (
            "sso",
            None,
            "10.15.0.6",
        )
    assert granted.data == {
        "of": "ines",
        "what": "group",
        "action": "add",
        "items": ["Responder"],
    }


# --- sso.backend.SSOBackend.get_or_create_user: refusals ----------------------------


def test_a_staff_person_left_with_no_mapped_group_loses_staff_status_too(
    sso, settings
) -> None:
    settings.OIDC_ROLES_CLAIM = "roles"
    sso.set_user("u-1506", preferred_username="ada", roles=["console-admins"])
    client = Client()
    sign_in_through(client, "u-1506")
    ada = User.objects.get(username="ada")
    assert ada.is_staff and set(ada.groups.values_list("name", flat=True)) == {"Admin"}
    client.post("/accounts/logout/")
    sso.set_user("u-1506", preferred_username="ada", roles=["marketing"])
    response = sign_in_through(client, "u-1506")
    assert said(client, response) == [backend.NO_ROLE]
    ada.refresh_from_db()
    assert (ada.is_staff, list(ada.groups.all())) == (False, [])
    assert refusal("no_role").data == {
        "method": "sso",
        "reason": "no_role",
        "subject": "u-1506",
        "claim": "roles",
        "values": ["marketing"],
    }
    changed = AuditEvent.objects.filter(verb="user.changed").latest("seq")
    assert (changed.actor_name, changed.data["changes"]) == (
        "sso",
        {"is_staff": [True, False]},
    )


def test_a_deactivated_account_is_refused_in_words_and_recorded(sso) -> None:
    sso.set_user("u-1507", preferred_username="gone", groups=["oncall"])
    client = Client()
    sign_in_through(client, "u-1507")
    identity = Identity.objects.get(subject="u-1507")
    first = identity.last_sign_in_at
    assert first is not None
    client.post("/accounts/logout/")
    User.objects.filter(pk=identity.user_id).update(is_active=False)
    response = sign_in_through(client, "u-1507")
    assert said(client, response) == [
        "Your console account is deactivated: ask an admin."
    ]
    assert SESSION_KEY not in client.session
    assert refusal("inactive").data == {
        "method": "sso",
        "reason": "inactive",
        "subject": "u-1507",
    }
    identity.refresh_from_db()
    assert identity.last_sign_in_at == first  # a refused sign-in is no sign-in


# --- sso.backend.SSOBackend.verify_token: a provider of the test's own ---------------
# A discovery document and a signing key served by pytest-httpserver, so that the
# test signs ID tokens the real provider never issues (no expiry, another issuer).
# verify_token's refusal carries what sign_in audits (`reason`, `details`) and
# what the sign-in page says (`message`).


@dataclass
class HandMade:
    issuer: str
    key: rsa.RSAPrivateKey

    def id_token(self, *, leave_out: str = "", **changes: object) -> str:
        now = int(time.time())
        claims: dict[str, object] = {
            "iss": self.issuer,
            "aud": CLIENT_ID,
            "sub": "u-1510",
            "iat": now,
            "exp": now + 300,
            "nonce": "n-1510",
            **changes,
        }
        claims.pop(leave_out, None)
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": "k1"})


def hand_made(settings: Any, httpserver: Any, *, keys_answer: int = 200) -> HandMade:  # noqa: ANN401
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    public.update(kid="k1", use="sig", alg="RS256")
    issuer = httpserver.url_for("/idp")
    httpserver.expect_request(
        "/idp/.well-known/openid-configuration"
    ).respond_with_json(
        {
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/auth",
            "token_endpoint": f"{issuer}/token",
            "jwks_uri": f"{issuer}/jwks",
        }
    )
    if keys_answer == 200:
        httpserver.expect_request("/idp/jwks").respond_with_json({"keys": [public]})
    else:
        httpserver.expect_request("/idp/jwks").respond_with_data(
            "down", status=keys_answer
        )
    sso_settings(settings, Provider(issuer))
    return HandMade(issuer, key)


@pytest.fixture
def provider(settings: Any, httpserver: Any) -> Iterator[HandMade]:  # noqa: ANN401
    yield hand_made(settings, httpserver)
    config.forget()


def refused_by_verify(token: str) -> tuple[str, str, dict[str, Any]]:
    with pytest.raises(backend.SignInRefused) as caught:
        backend.SSOBackend().verify_token(token, nonce="n-1510")
    return caught.value.reason, caught.value.message, caught.value.details


def test_a_signature_algorithm_not_allowed_is_refused(sso, settings) -> None:
    settings.OIDC_SIGN_ALGOS = ["ES256"]  # the provider signs with RS256
    sso.set_user("u-1505", preferred_username="alg", groups=["oncall"])
    client = Client()
    response = sign_in_through(client, "u-1505")
    assert said(client, response) == [NOT_VERIFIED]
    assert SESSION_KEY not in client.session
    assert not User.objects.filter(username="alg").exists()
    assert refusal("invalid_token").data == {
        "method": "sso",
        "reason": "invalid_token",
        "error": "InvalidAlgorithmError: The specified alg value is not allowed",
    }


def test_a_hand_made_token_with_every_claim_is_accepted(provider) -> None:
    claims = backend.SSOBackend().verify_token(provider.id_token(), nonce="n-1510")
    assert (claims["sub"], claims["iss"], claims["aud"]) == (
        "u-1510",
        provider.issuer,
        CLIENT_ID,
    )


@pytest.mark.parametrize("claim", ["exp", "iat", "sub"])
def test_an_id_token_without_expiry_issue_time_or_subject_is_refused(
    provider, claim
) -> None:
    assert refused_by_verify(provider.id_token(leave_out=claim)) == (
        "invalid_token",
        NOT_VERIFIED,
        {"error": f'MissingRequiredClaimError: Token is missing the "{claim}" claim'},
    )


def test_an_id_token_from_another_issuer_is_refused(provider) -> None:
    token = provider.id_token(iss="https://idp.evil.example")
    assert refused_by_verify(token) == (
        "wrong_issuer",
        "The identity provider's answer came from another issuer.",
        {},
    )


ANOTHER_APPLICATION = (
    "The identity provider's answer was meant for another application, not this "
    "console."
)


def test_an_id_token_for_another_audience_is_refused(provider) -> None:
    token = provider.id_token(aud="another-app")
    assert refused_by_verify(token) == (
        "wrong_audience",
        ANOTHER_APPLICATION,
        {"audience": ["another-app"]},
    )


def test_with_several_audiences_the_authorised_party_must_be_this_console(
    provider,
) -> None:
    both = [CLIENT_ID, "another-app"]
    token = provider.id_token(aud=both, azp="another-app")
    assert refused_by_verify(token) == (
        "wrong_audience",
        ANOTHER_APPLICATION,
        {"audience": both},
    )
    ours = provider.id_token(aud=both, azp=CLIENT_ID)
    assert backend.SSOBackend().verify_token(ours, nonce="n-1510")["azp"] == CLIENT_ID


def test_an_id_token_with_another_sign_ins_nonce_is_refused(provider) -> None:
    assert refused_by_verify(provider.id_token(nonce="n-other")) == (
        "bad_nonce",
        "This sign-in answer does not belong to the sign-in you started: start again.",
        {},
    )


def test_the_clock_leeway_is_the_configured_one(provider, settings) -> None:
    settings.OIDC_LEEWAY_SECONDS = 120
    now = int(time.time())
    # A minute past its expiry: within the two minutes allowed.
    late = provider.id_token(exp=now - 60, iat=now - 360)
    assert backend.SSOBackend().verify_token(late, nonce="n-1510")["sub"] == "u-1510"
    # Ten minutes past: refused.
    stale = provider.id_token(exp=now - 600, iat=now - 900)
    assert refused_by_verify(stale) == (
        "expired",
        "The identity provider's answer had expired: check this machine's clock, "
        "then sign in again.",
        {},
    )


def test_signing_keys_that_cannot_be_read_make_sso_unavailable(
    settings, httpserver
) -> None:
    made = hand_made(settings, httpserver, keys_answer=500)
    try:
        assert refused_by_verify(made.id_token()) == (
            "provider_unavailable",
            "Single sign-on is unavailable: the identity provider answered 500 to "
            "signing keys.",
            {},
        )
    finally:
        config.forget()


# --- sso.backend.SSOBackend._sign_in -------------------------------------------------


def test_a_callback_with_this_browsers_state_but_no_code_is_refused_in_words(
    sso,
) -> None:
    client = Client()
    start = client.get("/sso/authenticate/")
    state = dict(parse_qsl(urlsplit(start["Location"]).query))["state"]
    response = client.get("/sso/callback/", {"state": state})
    assert said(client, response) == [
        "The identity provider sent no sign-in code: start again."
    ]
    assert refusal("incomplete").data == {"method": "sso", "reason": "incomplete"}
    assert SESSION_KEY not in client.session


def test_the_console_authenticates_to_the_token_endpoint_with_its_secret(
    sso, relay
) -> None:
    sso.set_user("u-1508", preferred_username="sid", groups=["readers"])
    assert sign_in_through(Client(), "u-1508")["Location"] == "/"
    basic = base64.b64encode(b"yomira-console:console-secret").decode()
    assert relay.authorizations == [f"Basic {basic}"]


@pytest.mark.parametrize("id_token", ["", None, 5])
def test_an_answer_without_an_id_token_is_refused_in_words(
    sso, relay, id_token
) -> None:
    sso.set_user("u-1509", preferred_username="noid", groups=["readers"])
    relay.rewrite = lambda issued: {**issued, "id_token": id_token}
    client = Client()
    response = sign_in_through(client, "u-1509")
    assert said(client, response) == [
        "The identity provider sent no ID token: is the `openid` scope in OIDC_SCOPES?"
    ]
    assert refusal("no_id_token").data == {"method": "sso", "reason": "no_id_token"}
    assert not User.objects.filter(username="noid").exists()


def test_an_id_token_of_an_earlier_sign_in_is_refused(sso, relay) -> None:
    """A genuine ID token, for this person and this console, replayed into a later
    sign-in: its nonce is the earlier sign-in's."""
    sso.set_user("u-1511", preferred_username="rex", groups=["readers"])
    client = Client()
    assert sign_in_through(client, "u-1511")["Location"] == "/"
    earlier = relay.answers[0]["id_token"]
    client.post("/accounts/logout/")
    relay.rewrite = lambda issued: {**issued, "id_token": earlier}
    response = sign_in_through(client, "u-1511")
    assert said(client, response) == [
        "This sign-in answer does not belong to the sign-in you started: start again."
    ]
    assert refusal("bad_nonce").data == {"method": "sso", "reason": "bad_nonce"}
    assert SESSION_KEY not in client.session


def test_the_code_is_exchanged_with_the_pkce_verifier_of_its_challenge(
    sso, relay
) -> None:
    """PKCE (RFC 7636): the mock provider does not insist, a real one does."""
    sso.set_user("u-1512", preferred_username="pia", groups=["readers"])
    client = Client()
    start = client.get("/sso/authenticate/")
    asked = dict(parse_qsl(urlsplit(start["Location"]).query))
    assert asked["code_challenge_method"] == "S256"
    answer = requests.post(
        start["Location"], data={"sub": "u-1512"}, allow_redirects=False, timeout=10
    )
    back = urlsplit(answer.headers["Location"])
    assert client.get(f"{back.path}?{back.query}")["Location"] == "/"
    verifier = relay.forms[-1]["code_verifier"]
    digest = hashlib.sha256(verifier.encode()).digest()
    assert (
        base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        == (asked["code_challenge"])
    )
