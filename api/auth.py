"""Who is calling: a personal token in `Authorization: Bearer`, its owner's
rights, its scope, and its rate limit. The request then carries the owner as
`request.user`, so the pages' own checks (incidents.access) decide."""

from __future__ import annotations

import logging

from django.db import DatabaseError
from django.http import HttpRequest
from ninja.security.base import AuthBase

from alerts import sources  # the per-address denial budget the webhooks keep
from incidents import audit
from incidents.actors import Actor, client_ip

from . import tokens
from .errors import Refused
from .models import ApiToken

log = logging.getLogger(__name__)


class PersonalToken(AuthBase):
    """django-ninja's hook: the token (truthy) or None (a 401, audited)."""

    openapi_type = "http"
    openapi_scheme = "bearer"

    def __call__(self, request: HttpRequest) -> ApiToken | None:
        scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
        token = tokens.find(secret.strip()) if scheme.lower() == "bearer" else None
        if token is None:
            _audit_denial(request, "a missing, wrong or revoked token")
            return None
        use = tokens.count_use(token)
        if use.over:
            raise Refused(
                429,
                "rate_limited",
                f"This token made more than {use.limit} requests this minute: "
                f"wait {use.retry_after} s.",
                headers={"Retry-After": str(use.retry_after)},
            )
        request.user = token.user
        request.api_token = token
        request.api_actor = tokens.actor_for(token, client_ip(request))
        return token


def _audit_denial(request: HttpRequest, why: str) -> None:
    try:
        sources.audit_denial(request, "api", why)
    except DatabaseError:
        # Refusing needs no database; the outage is the offline pages' to answer.
        log.warning(
            "API denial from %s not audited (database error)", client_ip(request)
        )


def actor(request: HttpRequest) -> Actor:
    return request.api_actor


def writing(request: HttpRequest) -> None:
    """A write needs a read-and-write token; a refusal is audited."""
    token: ApiToken = request.api_token
    if not token.may_write:
        audit.append(
            "permission.denied",
            actor=actor(request),
            data={
                "permission": "api.write",
                "method": request.method,
                "path": request.path[:300],
                "why": "a read-only token",
            },
        )
        raise Refused(
            403,
            "read_only_token",
            f"The token “{token.name}” may only read: make a read-and-write token "
            "to change things.",
        )
