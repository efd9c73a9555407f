"""What the console knows about its identity provider: the settings, and the rest
from the provider's discovery document (`<issuer>/.well-known/openid-configuration`),
which mozilla-django-oidc does not read: it wants every endpoint in settings.

The document and the provider's signing keys are kept in this process's memory for a
short while (OIDC_DISCOVERY_TTL): a sign-in is then one round trip to the provider
(the token), and a provider that moves an endpoint or rotates its keys is followed
within minutes. A failure is never kept: the next sign-in asks again."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import jwt
import requests
from django.conf import settings

# Settings mozilla-django-oidc reads that the discovery document answers. An
# explicit value in the environment (the setting not empty) wins over discovery:
# some providers publish an endpoint the console cannot reach (a split network).
DISCOVERED = {
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "authorization_endpoint",
    "OIDC_OP_TOKEN_ENDPOINT": "token_endpoint",
    "OIDC_OP_USER_ENDPOINT": "userinfo_endpoint",
    "OIDC_OP_JWKS_ENDPOINT": "jwks_uri",
    "OIDC_OP_LOGOUT_ENDPOINT": "end_session_endpoint",
}
# Members of a JSON Web Key that only a private key has. Some providers (and test
# servers) publish them by mistake; the console only ever verifies, so they are
# dropped before the key is built.
PRIVATE_KEY_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")


class DiscoveryError(Exception):
    """The provider could not be asked, or answered something unusable. The text
    is shown to the person signing in: it names the problem, never a secret."""


@dataclass(frozen=True)
class Provider:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    userinfo_endpoint: str  # empty: the claims come from the ID token alone
    jwks_uri: str
    end_session_endpoint: str  # empty: the provider has no RP-initiated logout


def enabled() -> bool:
    """Single sign-on is on when an issuer and a client id are configured."""
    return bool(
        getattr(settings, "OIDC_ISSUER", "")
        and getattr(settings, "OIDC_RP_CLIENT_ID", "")
    )


def issuer() -> str:
    return str(getattr(settings, "OIDC_ISSUER", "")).rstrip("/")


def provider_name() -> str:
    return str(getattr(settings, "OIDC_PROVIDER_NAME", "") or "single sign-on")


_lock = threading.Lock()
_documents: dict[str, tuple[float, Provider]] = {}
_key_sets: dict[str, tuple[float, dict[str, Any]]] = {}


def forget() -> None:
    """Drop what this process remembers of providers (tests; a changed issuer)."""
    with _lock:
        _documents.clear()
        _key_sets.clear()


def _ttl() -> float:
    return float(getattr(settings, "OIDC_DISCOVERY_TTL", 300))


def _timeout() -> float:
    return float(getattr(settings, "OIDC_TIMEOUT", 5.0) or 5.0)


def _get_json(url: str, what: str) -> dict[str, Any]:
    try:
        response = requests.get(
            url,
            timeout=_timeout(),
            verify=getattr(settings, "OIDC_VERIFY_SSL", True),
            headers={"Accept": "application/json"},
        )
    except requests.RequestException as exc:
        raise DiscoveryError(
            f"the identity provider did not answer ({what}: {type(exc).__name__})"
        ) from exc
    if response.status_code != 200:
        raise DiscoveryError(
            f"the identity provider answered {response.status_code} to {what}"
        )
    try:
        body = response.json()
    except ValueError as exc:
        raise DiscoveryError(f"the identity provider's {what} is not JSON") from exc
    if not isinstance(body, dict):
        raise DiscoveryError(f"the identity provider's {what} is not a JSON object")
    return body


def provider() -> Provider:
    """The configured provider's endpoints: the discovery document, fetched at most
    once per OIDC_DISCOVERY_TTL in this process, with the explicit settings on top.
    Raises DiscoveryError, with a reason a person can act on."""
    if not enabled():
        raise DiscoveryError("single sign-on is not configured")
    name = issuer()
    now = time.monotonic()
    with _lock:
        known = _documents.get(name)
    if known is not None and known[0] > now:
        return known[1]
    document = _get_json(f"{name}/.well-known/openid-configuration", "discovery")
    # OpenID Connect Discovery 1.0, section 4.3: the issuer in the document must be
    # exactly the one configured, or tokens would be checked against another's.
    if str(document.get("issuer", "")).rstrip("/") != name:
        raise DiscoveryError(
            "the identity provider's discovery document names another issuer "
            f"({str(document.get('issuer', ''))[:200]!r}); check OIDC_ISSUER"
        )
    endpoints: dict[str, str] = {}
    for setting, key in DISCOVERED.items():
        explicit = str(getattr(settings, setting, "") or "")
        found = document.get(key)
        endpoints[key] = explicit or (found if isinstance(found, str) else "")
    for needed in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not endpoints[needed]:
            raise DiscoveryError(f"the identity provider publishes no {needed}")
    found = Provider(issuer=name, **endpoints)
    with _lock:
        _documents[name] = (now + _ttl(), found)
    return found


def get_setting(attr: str, *default: Any) -> Any:
    """mozilla-django-oidc's `get_settings`, answering the endpoint settings from
    discovery (an explicit setting still wins)."""
    if attr in DISCOVERED:
        explicit = getattr(settings, attr, "")
        if explicit:
            return explicit
        return getattr(provider(), DISCOVERED[attr])
    if default:
        return getattr(settings, attr, default[0])
    return getattr(settings, attr)


def signing_key(token: str) -> jwt.PyJWK:
    """The provider's public key that signed `token` (by its `kid`; the only key
    when the token names none). A `kid` not in the remembered set fetches the set
    again once: the provider has rotated its keys."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise jwt.InvalidTokenError("the ID token is malformed") from exc
    kid = header.get("kid")
    for fresh in (False, True):
        keys = _key_set(fresh)
        candidates = [
            k
            for k in keys.get("keys", [])
            if isinstance(k, dict)
            and k.get("use", "sig") == "sig"
            and (kid is None or k.get("kid") == kid)
        ]
        if kid is None and len(candidates) > 1:
            raise jwt.InvalidTokenError(
                "the ID token names no key and the provider has several"
            )
        if candidates:
            public = {
                k: v for k, v in candidates[0].items() if k not in PRIVATE_KEY_MEMBERS
            }
            try:
                return jwt.PyJWK(public)
            except jwt.PyJWTError as exc:
                raise jwt.InvalidTokenError(
                    "the provider's signing key is unusable"
                ) from exc
    raise jwt.InvalidTokenError(
        "the ID token was signed by a key the provider does not publish"
    )


def _key_set(fresh: bool) -> dict[str, Any]:
    uri = provider().jwks_uri
    now = time.monotonic()
    with _lock:
        known = _key_sets.get(uri)
    if known is not None and known[0] > now and not fresh:
        return known[1]
    keys = _get_json(uri, "signing keys")
    with _lock:
        _key_sets[uri] = (now + _ttl(), keys)
    return keys
