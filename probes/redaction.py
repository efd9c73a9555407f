"""Remove secrets from anything the console stores or shows: every configured
target value, passwords in URLs, bearer tokens, AWS keys."""

from __future__ import annotations

import re

from . import targets

MASK = "••••"
URL_PASSWORD = re.compile(
    r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@\s/]+)@", re.I
)
BEARER = re.compile(r"(?P<lead>\bBearer\s+)[A-Za-z0-9._~+/=-]{6,}", re.I)
AWS_ACCESS_KEY = re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b")
AWS_SECRET = re.compile(
    r"(?P<lead>aws_secret_access_key\s*[=:]\s*[\"']?)[A-Za-z0-9/+=]{30,}", re.I
)
GENERIC_SECRET = re.compile(
    r"(?P<lead>\b(?:password|passwd|secret|token|api[_-]?key)\s*[=:]\s*[\"']?)[^\s\"',;]{4,}",
    re.I,
)


def redact(text: str) -> str:
    if not text:
        return text
    for secret in targets.secret_values():
        text = text.replace(secret, MASK)
    text = URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
    text = BEARER.sub(lambda m: m["lead"] + MASK, text)
    text = AWS_ACCESS_KEY.sub(MASK, text)
    text = AWS_SECRET.sub(lambda m: m["lead"] + MASK, text)
    return GENERIC_SECRET.sub(lambda m: m["lead"] + MASK, text)


def redact_data(value: object) -> object:
    """Redact every string inside a JSON-shaped value."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [redact_data(v) for v in value]
    if isinstance(value, dict):
        return {k: redact_data(v) for k, v in value.items()}
    return value
