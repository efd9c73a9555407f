"""Slugs and anchors, written without Django so the parser stays standalone."""

import re
import unicodedata


def slugify(value: str) -> str:
    """The same result as django.utils.text.slugify (a test holds them equal)."""
    value = unicodedata.normalize("NFKD", str(value)).encode("ascii", "ignore")
    text = re.sub(r"[^\w\s-]", "", value.decode("ascii").lower())
    return re.sub(r"[-\s]+", "-", text).strip("-_")


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: `3. PostgreSQL Down / Unreachable` ->
    `3-postgresql-down--unreachable` (runbooks link to each other this way)."""
    text = re.sub(r"[`*~]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")
