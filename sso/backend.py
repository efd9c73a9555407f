"""Signing in through the identity provider (OpenID Connect's code flow), on top of
mozilla-django-oidc's backend, with what it leaves out:

- every endpoint from the provider's discovery document (sso/config.py);
- the ID token checked in full with PyJWT: signature (the provider's published key),
  audience (this console's client id), issuer, expiry and issue time, nonce;
- people matched on (issuer, subject), never on their email address;
- their roles set at every sign-in from the roles claim and Admin → Role mappings,
  audited as the system identity "sso";
- each refusal audited (`login.refused`, with the reason, never a token) and
  explained to the person on the sign-in page.

The backend grants nothing: permissions come from the role groups, through the
model backend (incidents.access reads them from its cache; see PERM_CACHE_BACKENDS).
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

import jwt
import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import BaseBackend, ModelBackend
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.utils import absolutify

from incidents import audit
from incidents.actors import Actor, client_ip
from incidents.roles import ROLES
from incidents.signals import acting

from . import config
from .models import Identity, RoleMapping

BACKEND = "sso.backend.SSOBackend"
# The system identity that changes a person's roles and account at sign-in.
SSO_ACTOR = "sso"
NO_ROLE = (
    "Your account has no role in the console: ask an admin to map one of your groups."
)
# What a claim value, and how many of them, the audit log keeps of a refusal.
VALUES_KEPT = 20
VALUE_MAX = 255
NOT_IN_USERNAME = re.compile(r"[^\w.@+-]+")


class SignInRefused(Exception):
    """A sign-in the console refuses: `reason` is the audit log's code, `message`
    what the person is told, `details` what the audit log keeps beside them."""

    def __init__(self, reason: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.details = details


def local_sign_in_allowed(username: str | None) -> bool:
    """A password sign-in is allowed while local accounts are on, and for the
    break-glass usernames when they are off."""
    if getattr(settings, "LOCAL_ACCOUNTS", True):
        return True
    return bool(username) and username in getattr(settings, "BREAK_GLASS_USERS", [])


class LocalAccountsGate(BaseBackend):
    """With LOCAL_ACCOUNTS=false, placed before the model backend: refuses every
    password sign-in but the break-glass accounts' (the sign-in form, the admin's,
    anything that calls authenticate() with a password). Raising PermissionDenied
    stops Django from asking the backends after it; the failure is audited
    (`login.failed`) and counted by django-axes like a wrong password.
    It grants nothing (BaseBackend's permission methods all say no)."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> None:
        if password is None:
            return None  # not a password sign-in
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if local_sign_in_allowed(username):
            return None  # the model backend decides
        raise PermissionDenied("local accounts are off")


def record_refusal(request: HttpRequest | None, refusal: SignInRefused) -> None:
    """The audit log's record of a refused sign-in: the reason and what was known
    of the person, never a code or a token."""
    subject = str(refusal.details.get("subject", ""))[:150]
    audit.append(
        "login.refused",
        actor=Actor.anonymous(subject, client_ip(request)),
        data={"method": "sso", "reason": refusal.reason, **refusal.details},
    )


def claim_values(claims: dict[str, Any]) -> list[str]:
    """The roles claim's values: a list of strings, or one string (providers
    differ); anything else in it is ignored."""
    raw = claims.get(getattr(settings, "OIDC_ROLES_CLAIM", "groups"))
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list):
        return []
    return sorted({v for v in raw if isinstance(v, str) and 0 < len(v) <= VALUE_MAX})


class SSOBackend(OIDCAuthenticationBackend):
    """mozilla-django-oidc's backend with discovery, full token checks, matching on
    (issuer, sub) and roles from the provider's groups."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Not the library's __init__: it reads every endpoint setting at once, and
        # Django makes a backend for every request of a signed-in person
        # (get_user). The endpoints are read from discovery when signing in.
        self.UserModel = get_user_model()

    get_settings = staticmethod(config.get_setting)

    def get_user(self, user_id: Any) -> Any:
        # Django's (the library's drops the check): a deactivated account's open
        # sessions end on their next request, as with a password.
        return ModelBackend.get_user(self, user_id)

    # --- it grants nothing -----------------------------------------------------------
    def get_user_permissions(self, user_obj: Any, obj: Any = None) -> set[str]:
        return set()

    def get_group_permissions(self, user_obj: Any, obj: Any = None) -> set[str]:
        return set()

    def get_all_permissions(self, user_obj: Any, obj: Any = None) -> set[str]:
        return set()

    def has_perm(self, user_obj: Any, perm: str, obj: Any = None) -> bool:
        return False

    def has_module_perms(self, user_obj: Any, app_label: str) -> bool:
        return False

    def with_perm(self, *args: Any, **kwargs: Any) -> QuerySet:
        return self.UserModel._default_manager.none()

    # --- signing in ------------------------------------------------------------------
    def authenticate(self, request: HttpRequest | None, **kwargs: Any) -> Any:
        """Django's entry point: only the callback's call (a nonce, no password)
        is ours. A refusal is audited and answers None."""
        if (
            request is None
            or "nonce" not in kwargs
            or "password" in kwargs
            or not config.enabled()
        ):
            return None
        try:
            return self.sign_in(
                request,
                nonce=kwargs["nonce"],
                code_verifier=kwargs.get("code_verifier"),
            )
        except SignInRefused:
            return None

    def sign_in(
        self, request: HttpRequest, *, nonce: str | None, code_verifier: str | None
    ) -> Any:
        """The person the provider's answer on `request` (the callback) names, with
        their roles applied; raises SignInRefused (already audited)."""
        try:
            return self._sign_in(request, nonce, code_verifier)
        except SignInRefused as refusal:
            record_refusal(request, refusal)
            raise

    def _sign_in(
        self, request: HttpRequest, nonce: str | None, code_verifier: str | None
    ) -> Any:
        self.request = request
        code = request.GET.get("code", "")
        if not code:
            raise SignInRefused(
                "incomplete", "The identity provider sent no sign-in code: start again."
            )
        provider = self._provider()
        self.OIDC_OP_TOKEN_ENDPOINT = provider.token_endpoint
        self.OIDC_OP_USER_ENDPOINT = provider.userinfo_endpoint
        self.OIDC_OP_JWKS_ENDPOINT = provider.jwks_uri
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID
        self.OIDC_RP_CLIENT_SECRET = getattr(settings, "OIDC_RP_CLIENT_SECRET", "")
        self.OIDC_RP_SIGN_ALGO = getattr(settings, "OIDC_RP_SIGN_ALGO", "RS256")
        self.OIDC_RP_IDP_SIGN_KEY = None
        payload = {
            "client_id": self.OIDC_RP_CLIENT_ID,
            "client_secret": self.OIDC_RP_CLIENT_SECRET,
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": absolutify(
                request, reverse(settings.OIDC_AUTHENTICATION_CALLBACK_URL)
            ),
        }
        if code_verifier is not None:
            payload["code_verifier"] = code_verifier
        token_info = self._exchange(payload)
        id_token = token_info.get("id_token")
        if not isinstance(id_token, str) or not id_token:
            raise SignInRefused(
                "no_id_token",
                "The identity provider sent no ID token: is the `openid` scope "
                "in OIDC_SCOPES?",
            )
        access_token = token_info.get("access_token")
        claims = self.verify_token(id_token, nonce=nonce)
        user = self.get_or_create_user(access_token, id_token, claims)
        self.id_token = id_token
        return user

    def _provider(self) -> config.Provider:
        try:
            return config.provider()
        except config.DiscoveryError as exc:
            raise SignInRefused(
                "provider_unavailable", f"Single sign-on is unavailable: {exc}."
            ) from exc

    def _exchange(self, payload: dict[str, str]) -> dict[str, Any]:
        try:
            answer = self.get_token(payload)
        except requests.HTTPError as exc:
            error = ""
            with contextlib.suppress(AttributeError, ValueError):
                error = str(exc.response.json().get("error", ""))[:100]
            raise SignInRefused(
                "token_refused",
                "The identity provider refused this sign-in: start again.",
                status=getattr(exc.response, "status_code", None),
                error=error,
            ) from exc
        except (requests.RequestException, ValueError) as exc:
            raise SignInRefused(
                "provider_unavailable",
                "Single sign-on is unavailable: the identity provider did not answer.",
                error=type(exc).__name__,
            ) from exc
        if not isinstance(answer, dict):
            raise SignInRefused(
                "no_id_token", "The identity provider's answer is unusable."
            )
        return answer

    def verify_token(self, token: str, **kwargs: Any) -> dict[str, Any]:
        """The ID token's claims, once its signature, audience, issuer, expiry,
        issue time and nonce are right (the library checks the signature alone,
        and skips the audience on purpose)."""
        allowed = list(getattr(settings, "OIDC_SIGN_ALGOS", ["RS256"]))
        client_id = settings.OIDC_RP_CLIENT_ID
        try:
            key = config.signing_key(token)
            claims = jwt.decode(
                token,
                key,
                algorithms=allowed,
                audience=client_id,
                issuer=config.issuer(),
                leeway=getattr(settings, "OIDC_LEEWAY_SECONDS", 30),
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except config.DiscoveryError as exc:
            raise SignInRefused(
                "provider_unavailable", f"Single sign-on is unavailable: {exc}."
            ) from exc
        except jwt.ExpiredSignatureError as exc:
            raise SignInRefused(
                "expired",
                "The identity provider's answer had expired: check this machine's "
                "clock, then sign in again.",
            ) from exc
        except jwt.InvalidAudienceError as exc:
            raise SignInRefused(
                "wrong_audience",
                "The identity provider's answer was meant for another application, "
                "not this console.",
                audience=_audience(token),
            ) from exc
        except jwt.InvalidIssuerError as exc:
            raise SignInRefused(
                "wrong_issuer",
                "The identity provider's answer came from another issuer.",
            ) from exc
        except jwt.PyJWTError as exc:
            raise SignInRefused(
                "invalid_token",
                "The identity provider's answer could not be verified.",
                error=f"{type(exc).__name__}: {str(exc)[:200]}",
            ) from exc
        # OpenID Connect Core 3.1.3.7: with several audiences, the authorised party
        # must be this console.
        if "azp" in claims and claims["azp"] != client_id:
            raise SignInRefused(
                "wrong_audience",
                "The identity provider's answer was meant for another application, "
                "not this console.",
                audience=_audience(token),
            )
        nonce = kwargs.get("nonce")
        if nonce is not None and claims.get("nonce") != nonce:
            raise SignInRefused(
                "bad_nonce",
                "This sign-in answer does not belong to the sign-in you started: "
                "start again.",
            )
        return claims

    def get_userinfo(self, access_token: Any, id_token: str, payload: dict) -> dict:
        """The userinfo endpoint's claims ({} when the provider has none). Its
        subject must be the ID token's (OpenID Connect Core 5.3.2)."""
        if not self.OIDC_OP_USER_ENDPOINT or not access_token:
            return {}
        try:
            info = super().get_userinfo(access_token, id_token, payload)
        except (requests.RequestException, ValueError) as exc:
            raise SignInRefused(
                "userinfo_failed",
                "The identity provider did not say who you are: start again.",
                error=type(exc).__name__,
            ) from exc
        except SignInRefused:
            raise
        if not isinstance(info, dict) or info.get("sub") != payload.get("sub"):
            raise SignInRefused(
                "userinfo_mismatch",
                "The identity provider's answers disagree on who you are.",
                subject=str(payload.get("sub", "")),
            )
        return info

    def get_or_create_user(
        self, access_token: Any, id_token: str, payload: dict
    ) -> Any:
        info = self.get_userinfo(access_token, id_token, payload)
        # The ID token's own checked claims stay as they are; the userinfo adds the
        # rest (some providers put groups in one, some in the other).
        protected = {"iss", "sub", "aud", "exp", "iat", "nonce", "azp"}
        claims = {**payload, **{k: v for k, v in info.items() if k not in protected}}
        subject = str(claims["sub"])
        issuer = config.issuer()
        values = claim_values(claims)
        mappings = [
            m
            for m in RoleMapping.objects.filter(claim_value__in=values).select_related(
                "group"
            )
            if m.group.name in ROLES
        ]
        roles = {m.group for m in mappings}
        staff = any(m.staff for m in mappings)
        actor = Actor(
            name=SSO_ACTOR, ip=client_ip(getattr(self, "request", None)), is_system=True
        )
        identity = (
            Identity.objects.select_related("user")
            .filter(issuer=issuer, subject=subject)
            .first()
        )
        if not roles:
            # Refused, and whatever roles they had are gone: a person removed from
            # every mapped group loses the console at once, not at the next change.
            if identity is not None:
                with transaction.atomic(), acting(actor):
                    self.apply_roles(identity.user, set(), staff=False)
            raise SignInRefused(
                "no_role",
                NO_ROLE,
                subject=subject,
                claim=getattr(settings, "OIDC_ROLES_CLAIM", "groups"),
                values=values[:VALUES_KEPT],
            )
        with transaction.atomic(), acting(actor):
            if identity is None:
                identity = self._link(issuer, subject, claims)
            user = identity.user
            if not user.is_active:
                raise SignInRefused(
                    "inactive",
                    "Your console account is deactivated: ask an admin.",
                    subject=subject,
                )
            self.update_user(user, claims)
            self.apply_roles(user, roles, staff=staff)
            identity.last_sign_in_at = timezone.now()
            identity.save(update_fields=["last_sign_in_at"])
        # incidents.signals records it on login.succeeded: how, and which
        # mappings gave the roles.
        user.sign_in_audit = {
            "method": "sso",
            "issuer": issuer,
            "subject": subject,
            "mapped": sorted(m.claim_value for m in mappings),
            "roles": sorted(g.name for g in roles),
        }
        return user

    def _link(self, issuer: str, subject: str, claims: dict) -> Identity:
        """A new console account for this person, linked to (issuer, subject).
        Two first sign-ins at once: the second finds the first's link."""
        for _attempt in range(5):
            try:
                with transaction.atomic():
                    user = self.create_user(claims)
                    return Identity.objects.create(
                        user=user, issuer=issuer, subject=subject
                    )
            except IntegrityError:
                found = (
                    Identity.objects.select_related("user")
                    .filter(issuer=issuer, subject=subject)
                    .first()
                )
                if found is not None:
                    return found
        raise SignInRefused(
            "no_username",
            "The console could not make an account for you: ask an admin.",
            subject=subject,
        )

    def create_user(self, claims: dict) -> Any:
        """A console account with no password (it signs in through the provider
        only) and a username from the person's preferred username or email."""
        user = self.UserModel(username=self.get_username(claims))
        self._copy_profile(user, claims)
        user.set_unusable_password()
        user.save()
        return user

    def get_username(self, claims: dict) -> str:
        """Readable and unique: `preferred_username`, else the email address, else
        `sso-<sub>`, with `-2`, `-3`... when taken. Never a break-glass name, so
        no one at the provider can become the account kept for when it is down."""
        base = claims.get("preferred_username") or claims.get("email") or ""
        if not isinstance(base, str) or not base.strip():
            base = f"sso-{claims.get('sub', '')}"
        base = NOT_IN_USERNAME.sub("-", base.strip()).strip("-")[:140] or "sso-user"
        reserved = {name.lower() for name in getattr(settings, "BREAK_GLASS_USERS", [])}
        candidate, n = base, 1
        while (
            candidate.lower() in reserved
            or self.UserModel._default_manager.filter(
                username__iexact=candidate
            ).exists()
        ):
            n += 1
            candidate = f"{base}-{n}"
        return candidate

    def update_user(self, user: Any, claims: dict) -> Any:
        """Email and names follow the provider (saved, and audited, only when they
        changed)."""
        if self._copy_profile(user, claims):
            user.save(update_fields=["email", "first_name", "last_name"])
        return user

    @staticmethod
    def _copy_profile(user: Any, claims: dict) -> bool:
        changed = False
        for field, claim, limit in (
            ("email", "email", 254),
            ("first_name", "given_name", 150),
            ("last_name", "family_name", 150),
        ):
            value = claims.get(claim)
            if not isinstance(value, str):
                continue
            if field == "email" and claims.get("email_verified") is False:
                continue  # an address the provider has not checked: not for mail
            value = value[:limit]
            if getattr(user, field) != value:
                setattr(user, field, value)
                changed = True
        return changed

    @staticmethod
    def apply_roles(user: Any, wanted: set[Group], *, staff: bool) -> None:
        """The person's role groups become exactly `wanted` (other groups are left
        alone), and staff status `staff`. Each change is audited by
        incidents.signals (grant.changed, user.changed) as whoever `acting` names."""
        current = set(user.groups.filter(name__in=list(ROLES)))
        if current - wanted:
            user.groups.remove(*(current - wanted))
        if wanted - current:
            user.groups.add(*(wanted - current))
        if user.is_staff != staff:
            user.is_staff = staff
            user.save(update_fields=["is_staff"])
        # Django's cached permissions of this object predate the change.
        for cache in ("_perm_cache", "_user_perm_cache", "_group_perm_cache"):
            user.__dict__.pop(cache, None)


def _audience(token: str) -> list[str]:
    """The audience a refused token named (it is not a secret; the token is)."""
    try:
        aud = jwt.decode(token, options={"verify_signature": False}).get("aud")
    except jwt.PyJWTError:
        return []
    values = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    return [str(v)[:VALUE_MAX] for v in values[:5]]
