"""The severity aliases in force: the built-in ones plus those an Admin added."""

from __future__ import annotations

from django.db import DatabaseError

from ..models import SeverityAlias
from ..runbook import severity


def aliases() -> dict[str, str]:
    """Admin-added aliases (they win over the built-in ones of the same word). With
    the database unreachable, the built-in ones alone (the caller still works)."""
    try:
        return dict(SeverityAlias.objects.values_list("alias", "level"))
    except DatabaseError:
        return {}


def severity_level(text: str) -> str:
    """The console's level for a severity as written, or "" if no alias knows it."""
    return severity.level_of(text, aliases())
