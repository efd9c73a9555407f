"""Remove secrets from anything the console stores or shows: every configured
target value (and its base64, percent- and hex-encoded forms), passwords in URLs,
bearer and basic credentials, AWS keys, `password=...`-shaped pairs.

Every pattern here runs in time linear in the text: output is up to 64 KB of
whatever a target sends, and redaction runs inside the worker's time limit."""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Mapping
from functools import lru_cache
from urllib.parse import quote, quote_plus, unquote, urlsplit

from . import targets

MASK = "••••"
# Encoded forms of shorter values would mask innocent text by chance.
MIN_ENCODED = 6

# The scheme may only start where a run of scheme characters starts (the
# lookbehind), and every quantifier is possessive: without that, each position of
# a long run of letters rescans the rest of the run (quadratic; 2 s on 16 KB).
URL_PASSWORD = re.compile(
    r"(?<![a-z0-9+.-])(?P<scheme>[a-z][a-z0-9+.-]*+://)"
    r"(?P<user>[^:/@\s]*+):(?P<pw>[^@\s/]++)@",
    re.I,
)
BEARER = re.compile(r"(?P<lead>\bBearer\s++)[A-Za-z0-9._~+/=-]{6,}+", re.I)
BASIC = re.compile(r"(?P<lead>\bBasic\s++)[A-Za-z0-9+/=]{8,}+", re.I)
AWS_ACCESS_KEY = re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b")
AWS_SECRET = re.compile(
    r"(?P<lead>aws_secret_access_key[\"']?\s*+[=:]\s*+[\"']?)[A-Za-z0-9/+=]{30,}+",
    re.I,
)
# `access_token=`, `DB_PASSWORD: "..."`, `"apiKey": "..."`: a key that names a
# secret, in any case, then its value. The lookbehind (not \b) lets `_` and `-`
# prefixes count, so `client_secret` is caught as well as `secret`.
SECRET_KEY = r"(?:password|passwd|secret|token|api[_-]?key|apikey)"
GENERIC_SECRET = re.compile(
    rf"(?P<lead>(?<![A-Za-z0-9]){SECRET_KEY}[\"']?\s*+[=:]\s*+[\"']?)"
    r"[^\s\"',;]{4,}+",
    re.I,
)
SECRET_WORDS = ("password", "passwd", "secret", "token", "key")
SECRET_NAME = re.compile(rf"(?<![A-Za-z0-9]){SECRET_KEY}", re.I)


def _base64_cores(raw: bytes) -> set[str]:
    """The base64 characters that depend only on `raw`, for each of the three byte
    alignments it can have inside a longer encoded text (a password inside an
    echoed `Authorization: Basic base64(user:password)` header is at any offset)."""
    cores = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw).decode()
        core = encoded[(8 * offset + 5) // 6 : (8 * (offset + len(raw))) // 6]
        cores.add(core)
        cores.add(core.translate(str.maketrans("+/", "-_")))  # urlsafe alphabet
    return cores


def encoded_forms(value: str) -> set[str]:
    """The value as a target might echo it: literally, percent-encoded (both hex
    cases, `+` or `%20` for spaces), hex (both cases) and base64 (standard and
    urlsafe, padded or not, at any alignment)."""
    forms = {value}
    raw = value.encode("utf-8")
    if len(raw) < MIN_ENCODED:
        return forms
    for escaped in {quote(value, safe=""), quote(value), quote_plus(value)}:
        forms.add(escaped)
        forms.add(re.sub(r"%[0-9A-F]{2}", lambda m: m[0].lower(), escaped))
    forms.add(raw.hex())
    forms.add(raw.hex().upper())
    forms |= _base64_cores(raw)
    return forms


@lru_cache(maxsize=8)
def _forms(environ: frozenset) -> tuple[str, ...]:
    """Every form of every secret the environment `environ` (a targets.environ_key)
    configures. Cached per environment, because reading the secrets out of the
    environment cost more than redacting a short result: a variable set at run
    time makes another key, so a new secret is masked from the next redaction."""
    variables = targets.environ_of(environ)
    found: set[str] = set()
    for value in targets.secret_values(variables) + list(_console_secrets(variables)):
        found |= encoded_forms(value)
    # Longest first: a value that contains another is masked whole.
    return tuple(sorted((f for f in found if len(f) >= 4), key=len, reverse=True))


# The console's own secrets, should a library put one in a message (a broker or
# database error quoting its URL): the keys whole, the URLs' passwords.
CONSOLE_KEYS = ("SECRET_KEY", "AUDIT_HMAC_KEY", "EMAIL_HOST_PASSWORD")
CONSOLE_URLS = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")
# The notification channels' and alert sources' secrets, named by convention (the
# admin forms refuse other names): Slack webhook URLs, PagerDuty routing keys,
# Grafana HMAC secrets.
SECRET_SUFFIXES = ("_WEBHOOK_URL", "_ROUTING_KEY", "_HMAC_SECRET")


def _console_secrets(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    environ = os.environ if environ is None else environ
    found = [environ.get(k, "") for k in CONSOLE_KEYS]
    found += [v for k, v in environ.items() if k.endswith(SECRET_SUFFIXES)]
    for key in CONSOLE_URLS:
        password = urlsplit(environ.get(key, "")).password
        found += [password or "", unquote(password or "")]
    return tuple(v for v in found if len(v) >= 4)


def redact(text: str) -> str:
    """`text` with every secret masked. Each step is one linear pass (str.replace
    or a pattern without nested or overlapping repetition)."""
    if not text:
        return text
    for form in _forms(targets.environ_key()):
        if form in text:
            text = text.replace(form, MASK)
    # A pattern runs only if its keyword is in the text: a substring test is
    # many times faster than a case-insensitive scan that finds nothing.
    lowered = text.lower()
    if "://" in text:
        text = URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
    if "bearer" in lowered:
        text = BEARER.sub(lambda m: m["lead"] + MASK, text)
    if "basic" in lowered:
        text = BASIC.sub(lambda m: m["lead"] + MASK, text)
    if "AKIA" in text or "ASIA" in text:
        text = AWS_ACCESS_KEY.sub(MASK, text)
    if "aws_secret_access_key" in lowered:
        text = AWS_SECRET.sub(lambda m: m["lead"] + MASK, text)
    if any(word in lowered for word in SECRET_WORDS):
        text = GENERIC_SECRET.sub(lambda m: m["lead"] + MASK, text)
    return text


def redact_data(value: object) -> object:
    """Redact every string inside a JSON-shaped value, keys included; a string
    under a key that names a secret (`password`, `API_KEY`...) is masked whole."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list | tuple):
        return [redact_data(v) for v in value]
    if isinstance(value, dict):
        return {
            redact(str(k)): (
                MASK
                if isinstance(v, str) and v and SECRET_NAME.search(str(k))
                else redact_data(v)
            )
            for k, v in value.items()
        }
    return value
