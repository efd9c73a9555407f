"""A real OpenID Connect provider for the single sign-on tests: oidc-provider-mock
(authlib behind Flask) on a free localhost port, in a thread of the test process.
People and their claims are set with its `PUT /users/<sub>`; its authorization page
is a form where the person's subject is typed (a browser) or posted (requests)."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
import requests
import werkzeug.serving
from django.contrib.auth.models import Group, Permission
from django.http import HttpResponse
from django.test import Client

from incidents.roles import ensure_roles
from sso import config
from sso.models import RoleMapping

# The provider is plain http on localhost: authlib refuses that unless told.
os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"

CLIENT_ID = "yomira-console"
OTHER_CLIENT_ID = "another-app"


@dataclass
class Provider:
    url: str  # also its issuer

    def set_user(self, sub: str, **claims: object) -> None:
        answer = requests.put(f"{self.url}/users/{sub}", json=claims, timeout=10)
        assert answer.status_code == 204, answer.text


def serve(**options: object) -> Iterator[Provider]:
    from oidc_provider_mock import run_server_in_thread

    with run_server_in_thread(**options) as server:
        yield Provider(f"http://localhost:{server.server_port}")


@pytest.fixture(scope="session")
def idp() -> Iterator[Provider]:
    yield from serve()


@pytest.fixture(scope="session")
def stale_idp() -> Iterator[Provider]:
    """A provider whose tokens are ten minutes past their expiry when issued
    (far beyond the console's leeway)."""
    yield from serve(access_token_max_age=timedelta(minutes=-10))


def sso_settings(settings, provider: Provider, *, local: bool = True) -> None:  # noqa: ANN001
    """Single sign-on on, against `provider`, as the settings block makes it from
    the environment."""
    settings.OIDC_ISSUER = provider.url
    settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    settings.OIDC_RP_CLIENT_SECRET = "console-secret"
    settings.OIDC_PROVIDER_NAME = "Mock IdP"
    settings.SSO_ENABLED = True
    backends = [b for b in settings.AUTHENTICATION_BACKENDS if not b.startswith("sso.")]
    if not local:
        backends.insert(
            backends.index("incidents.backends.ConsoleModelBackend"),
            "sso.backend.LocalAccountsGate",
        )
    settings.AUTHENTICATION_BACKENDS = [*backends, "sso.backend.SSOBackend"]
    settings.LOCAL_ACCOUNTS = local
    config.forget()


@pytest.fixture
def roles(db) -> dict[str, Group]:
    """The four role groups, and the mappings the tests use: `oncall` gives
    Responder, `readers` Viewer, `console-admins` Admin with staff status."""
    ensure_roles(Group, Permission)
    groups = {g.name: g for g in Group.objects.all()}
    RoleMapping.objects.create(claim_value="oncall", group=groups["Responder"])
    RoleMapping.objects.create(claim_value="readers", group=groups["Viewer"])
    RoleMapping.objects.create(
        claim_value="console-admins", group=groups["Admin"], staff=True
    )
    return groups


@pytest.fixture
def sso(settings, idp, roles) -> Iterator[Provider]:
    sso_settings(settings, idp)
    yield idp
    config.forget()


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


def sign_in_through(
    client: Client, sub: str, *, client_id: str | None = None, next_url: str = ""
) -> HttpResponse:
    """The code flow as a browser walks it: the console's sign-in link, the
    provider's form posted with `sub`, back to the console's callback with the
    code. `client_id` replaces the console's in the authorization request (a code
    issued to another application)."""
    start = client.get("/sso/authenticate/" + (f"?next={next_url}" if next_url else ""))
    assert start.status_code == 302, start.status_code
    authorize = start["Location"]
    if client_id is not None:
        authorize = with_query(authorize, client_id=client_id)
    answer = requests.post(
        authorize, data={"sub": sub}, allow_redirects=False, timeout=10
    )
    assert answer.status_code == 302, answer.text
    back = urlsplit(answer.headers["Location"])
    return client.get(f"{back.path}?{back.query}")


class TokenRelay:
    """A token endpoint in front of the provider's (OIDC_OP_TOKEN_ENDPOINT points
    here). `as_client` exchanges the code as another application, so the provider
    issues a real ID token for that audience; `corrupt` spoils the ID token's
    signature on the way back."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.as_client: str | None = None
        self.corrupt = False
        self.server = werkzeug.serving.make_server(
            "localhost", 0, self.app, threaded=True
        )
        self.url = f"http://localhost:{self.server.server_port}/token"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,))

    def app(self, environ, start_response):  # noqa: ANN001, ANN201
        length = int(environ.get("CONTENT_LENGTH") or 0)
        form = dict(parse_qsl(environ["wsgi.input"].read(length).decode()))
        headers = {}
        if environ.get("HTTP_AUTHORIZATION") and self.as_client is None:
            headers["Authorization"] = environ["HTTP_AUTHORIZATION"]
        if self.as_client is not None:
            form.update(client_id=self.as_client, client_secret="anything")
        answer = requests.post(self.upstream, data=form, headers=headers, timeout=10)
        body = answer.content
        if self.corrupt and answer.status_code == 200:
            tokens = answer.json()
            head, payload, signature = tokens["id_token"].split(".")
            flipped = "A" if signature[10] != "A" else "B"
            tokens["id_token"] = ".".join(
                [head, payload, signature[:10] + flipped + signature[11:]]
            )
            body = json.dumps(tokens).encode()
        start_response(
            f"{answer.status_code} X",
            [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
        )
        return [body]

    def __enter__(self) -> TokenRelay:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.thread.join(5)
        self.server.server_close()


@pytest.fixture
def relay(sso, settings) -> Iterator[TokenRelay]:
    with TokenRelay(f"{sso.url}/oauth2/token") as relay:
        settings.OIDC_OP_TOKEN_ENDPOINT = relay.url
        config.forget()
        yield relay
    config.forget()
