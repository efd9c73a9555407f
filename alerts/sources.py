"""Alert sources' credentials: a bearer token (stored as its SHA-256, compared in
constant time) and, for Grafana, an optional HMAC signature over the body."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import time
from time import monotonic

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.http import HttpRequest
from django.utils import timezone

from incidents import audit
from incidents.actors import Actor, client_ip

from .models import AlertSource, digest

TOKEN_BYTES = 32


class Unauthorized(Exception):
    """The request is not from the source it names (401), or the source is off."""


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def create(
    *, name: str, kind: str, actor: Actor, **fields: object
) -> tuple[AlertSource, str]:
    """A new source and its token (returned once, never stored)."""
    token = new_token()
    with transaction.atomic():
        source = AlertSource.objects.create(
            name=name, kind=kind, token_sha256=digest(token), **fields
        )
        audit.append(
            "alert_source.created",
            actor=actor,
            obj=source,
            data={"name": source.name, "kind": source.kind, "drill": source.drill},
        )
    return source, token


def rotate(*, source: AlertSource, actor: Actor) -> str:
    """A new token for the source; the old one stops working at once."""
    token = new_token()
    with transaction.atomic():
        AlertSource.objects.filter(pk=source.pk).update(
            token_sha256=digest(token), token_rotated_at=timezone.now()
        )
        audit.append(
            "alert_source.token_rotated",
            actor=actor,
            obj=source,
            data={"name": source.name},
        )
    source.refresh_from_db()
    forget_cached()
    return token


# Sources as last read, per process: {(name, kind): (read at, source)}. A webhook
# then costs one database round trip (the receipt's insert), not two; a token
# rotated or a source disabled stops working within this many seconds.
SOURCE_CACHE_SECONDS = 1.0
_sources: dict[tuple[str, str], tuple[float, AlertSource]] = {}


def lookup(name: str, kind: str) -> AlertSource | None:
    """The source a webhook names, or None. Only found sources are kept: a new
    one works at once, and unknown names always ask the database."""
    key = (name, kind)
    now = monotonic()
    cached = _sources.get(key)
    if cached is not None and now - cached[0] < SOURCE_CACHE_SECONDS:
        return cached[1]
    source = AlertSource.objects.filter(name=name, kind=kind).order_by().first()
    if source is None:
        _sources.pop(key, None)
    else:
        if len(_sources) > 1000:
            _sources.clear()
        _sources[key] = (now, source)
    return source


@receiver(post_save, sender=AlertSource)
def forget_cached(**kwargs: object) -> None:
    """A source saved in this process (the admin, the command) is read afresh."""
    _sources.clear()


def presented_token(request: HttpRequest) -> str:
    """`Authorization: Bearer TOKEN`, or Basic with the token as the password
    (Alertmanager's http_config offers both)."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return ""
        return decoded.partition(":")[2]
    return ""


def authenticate(
    source: AlertSource | None,
    request: HttpRequest,
    body: bytes,
    *,
    signature: bool = True,
) -> None:
    """Raise Unauthorized unless the request carries the source's token (and, for
    a Grafana source with a secret, a valid fresh signature over `body`; with
    `signature=False` only the token is checked, before the body is read)."""
    token = presented_token(request)
    # Compare even when the source does not exist, so the answer's timing does
    # not tell which source names exist.
    expected = source.token_sha256 if source is not None else "0" * 64
    matches = hmac.compare_digest(digest(token), expected)
    if source is None or not token or not matches:
        raise Unauthorized("a missing or wrong token")
    if not source.enabled:
        raise Unauthorized("the source is disabled")
    if signature and source.kind == AlertSource.Kind.GRAFANA and source.hmac_secret_env:
        check_signature(source, request, body)


def check_signature(source: AlertSource, request: HttpRequest, body: bytes) -> None:
    secret = os.environ.get(source.hmac_secret_env, "")
    if not secret:
        raise Unauthorized(
            f"the source's HMAC secret is not set ({source.hmac_secret_env})"
        )
    signature = request.headers.get(source.signature_header, "").strip()
    if not signature:
        raise Unauthorized(f"no {source.signature_header} header")
    signed = body
    if source.timestamp_header:
        stamp = request.headers.get(source.timestamp_header, "").strip()
        try:
            when = int(stamp)
        except ValueError:
            raise Unauthorized(f"no valid {source.timestamp_header} header") from None
        if abs(time.time() - when) > settings.ALERT_SIGNATURE_WINDOW_SECONDS:
            raise Unauthorized("the signature's timestamp is outside ±5 minutes")
        signed = stamp.encode() + b":" + body
    wanted = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    # Bytes: compare_digest refuses a str with non-ASCII characters (a 500).
    if not hmac.compare_digest(wanted.encode(), signature.lower().encode()):
        raise Unauthorized("a wrong signature")


def count(key: str, timeout: int) -> int:
    """One more on a counter kept in the cache for `timeout` seconds (shared
    between processes when the cache is)."""
    cache.add(key, 0, timeout=timeout)
    try:
        return cache.incr(key)
    except ValueError:  # expired between the two calls: a new window
        cache.set(key, 1, timeout=timeout)
        return 1


def this_minute() -> int:
    return int(time.time() // 60)


def over_rate_limit(source: AlertSource) -> bool:
    """Counted per source per minute."""
    key = f"alert-rate:{source.pk}:{this_minute()}"
    return count(key, timeout=120) > source.rate_limit_per_minute


# Unauthenticated webhook requests audited per address per minute; beyond, they
# are refused all the same but only logged (a flood must not grow the audit log
# without bound) and counted.
DENIALS_AUDITED = 30


def denial_budget(ip: str) -> int | None:
    """None past this minute's budget for `ip`; otherwise how many denials from it
    went unaudited before (reported once, in the next audited one)."""
    skipped_key = f"alert-denied-skipped:{ip}"
    if count(f"alert-denied:{ip}:{this_minute()}", timeout=120) > DENIALS_AUDITED:
        count(skipped_key, timeout=3600)
        return None
    skipped = cache.get(skipped_key) or 0
    if skipped:
        cache.delete(skipped_key)
    return skipped


def audit_denial(
    request: HttpRequest, permission: str, why: str, **data: object
) -> bool:
    """An unauthenticated request's refusal (a webhook, the API, /metrics),
    audited as `permission.denied` by the address it came from, within that
    address's budget (DENIALS_AUDITED a minute; past it the refusal is only
    counted, and the next audited one says how many were not). False when over
    the budget. A database error while writing is the caller's to handle."""
    ip = client_ip(request)
    unaudited = denial_budget(ip)
    if unaudited is None:
        return False
    audit.append(
        "permission.denied",
        actor=Actor.anonymous(ip=ip),
        data={
            "permission": permission,
            **data,
            "why": why,
            "method": request.method,
            "path": request.path[:200],
            **({"not_audited_before": unaudited} if unaudited else {}),
        },
    )
    return True
