"""Making, revoking and checking personal API tokens, and counting their use.

Every change is audited (`api_token.created`, `api_token.revoked`); a request with
a missing, wrong or revoked token is a denial, audited like a webhook's (within
the same per-address budget, so a flood cannot grow the log without bound)."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from incidents import audit
from incidents.actors import Actor

from .models import ApiToken

# What a token looks like: the prefix tells a leaked one apart in a secret scanner
# (and in a log line the redaction filter may meet) from other random strings.
PREFIX = "yom_"
TOKEN_BYTES = 32
TOKENS_PER_PERSON = 20


class TokenRefused(ValueError):
    """A token cannot be made or revoked as asked; the message says why."""


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def create(*, user, name: str, scope: str, actor: Actor) -> tuple[ApiToken, str]:  # noqa: ANN001
    """A new token for `user` and its secret (returned once, never stored)."""
    name = " ".join(name.split())
    # Printable only: a NUL cannot be stored, and a control character in a name
    # shown on pages and in the audit log helps nobody.
    if not name or len(name) > 60 or not name.isprintable():
        raise TokenRefused(
            "Name the token (1 to 60 printable characters): what will use it?"
        )
    if scope not in ApiToken.Scope.values:
        raise TokenRefused("Choose a scope: read, or read and write.")
    secret = PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
    with transaction.atomic():
        live = ApiToken.objects.select_for_update().filter(
            user=user, revoked_at__isnull=True
        )
        names = set(live.values_list("name", flat=True))
        if name in names:
            raise TokenRefused(f"You already have a token named “{name}”.")
        if len(names) >= TOKENS_PER_PERSON:
            raise TokenRefused(
                f"You have {TOKENS_PER_PERSON} tokens already: revoke one first."
            )
        token = ApiToken.objects.create(
            user=user, name=name, scope=scope, sha256=digest(secret)
        )
        audit.append(
            "api_token.created",
            actor=actor,
            obj=token,
            data={"name": name, "scope": scope, "owner": user.get_username()},
        )
    return token, secret


def revoke(*, token: ApiToken, actor: Actor) -> bool:
    """Stop the token at once (its next request is refused). False if it was
    already revoked."""
    with transaction.atomic():
        updated = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now(), revoked_by=actor.name[:150]
        )
        if updated:
            audit.append(
                "api_token.revoked",
                actor=actor,
                obj=token,
                data={
                    "name": token.name,
                    "scope": token.scope,
                    "owner": token.user.get_username(),
                },
            )
    return bool(updated)


def find(secret: str) -> ApiToken | None:
    """The live token whose secret this is, with its active owner; None otherwise.
    Looked up by digest: the secret's own bytes never reach a comparison."""
    if not secret.startswith(PREFIX) or len(secret) > 200:
        return None
    return (
        ApiToken.objects.select_related("user")
        .filter(sha256=digest(secret), revoked_at__isnull=True, user__is_active=True)
        .first()
    )


@dataclass(frozen=True)
class Use:
    count: int
    limit: int
    retry_after: int

    @property
    def over(self) -> bool:
        return self.count > self.limit


def count_use(token: ApiToken) -> Use:
    """One more request in this minute for the token: one statement, shared by
    every process. The minute's first request also notes the token as used and
    forgets its older windows."""
    now = time.time()
    minute = int(now // 60)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO api_ratewindow (token_id, minute, count) VALUES (%s, %s, 1) "
            "ON CONFLICT (token_id, minute) "
            "DO UPDATE SET count = api_ratewindow.count + 1 RETURNING count",
            [token.pk, minute],
        )
        (count,) = cursor.fetchone()
        if count == 1:
            cursor.execute(
                "DELETE FROM api_ratewindow WHERE token_id = %s AND minute < %s",
                [token.pk, minute],
            )
            cursor.execute(
                "UPDATE api_apitoken SET last_used_at = now() WHERE id = %s",
                [token.pk],
            )
    return Use(count, settings.API_RATE_LIMIT_PER_MINUTE, 60 - int(now % 60))


def actor_for(token: ApiToken, ip: str) -> Actor:
    """The person, as the audit log names them when acting through a token: their
    account (so their rights and one-time keys are theirs) and the token's name."""
    user = token.user
    return Actor(
        name=f"{user.get_username()} via API token “{token.name}”"[:150],
        user=user,
        ip=ip,
    )
