"""Slugs and anchors, written without Django so the parser stays standalone."""

import re
import unicodedata

# Django's own patterns (django.utils.text.slugify), compiled once.
NOT_SLUG = re.compile(r"[^\w\s-]")
SLUG_SEPARATORS = re.compile(r"[-\s]+")
ANCHOR_MARKUP = re.compile(r"[`*~]")
NOT_ANCHOR = re.compile(r"[^\w\- ]")


def slugify(value: str) -> str:
    """The same result as django.utils.text.slugify (a test holds them equal)."""
    value = unicodedata.normalize("NFKD", str(value)).encode("ascii", "ignore")
    text = NOT_SLUG.sub("", value.decode("ascii").lower())
    return SLUG_SEPARATORS.sub("-", text).strip("-_")


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: `3. PostgreSQL Down / Unreachable` ->
    `3-postgresql-down--unreachable` (runbooks link to each other this way)."""
    text = ANCHOR_MARKUP.sub("", heading.strip().lower())
    text = NOT_ANCHOR.sub("", text)
    return text.replace(" ", "-")
