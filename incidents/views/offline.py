"""The playbook pages as static HTML, for a console whose database is down
(issue 14): rendered while the database is up (at import, at web start-up), read
from disk by yomira_console.offline when it is not.

The pages hold no per-user parts, no forms, no CSRF token and no htmx: only the
runbook as imported, its commands with copy buttons, and a banner that says so."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Count
from django.template.loader import get_template, render_to_string
from django.utils import timezone

from ..models import Playbook, Runbook
from ..presenters import present_playbook

# Bump when the rendering code (not a template: their text is hashed) changes what
# a stored page holds, so every console renders its store again on start-up.
RENDER_VERSION = 1
TEMPLATES = (
    "offline/base.html",
    "offline/playbook.html",
    "offline/playbook_list.html",
    "incidents/partials/command_block.html",
    "incidents/partials/command.html",
    "incidents/partials/severity.html",
)


@dataclass
class RenderedStore:
    """What one render produced: `pages` maps a store path (`index.html`,
    `playbooks/<slug>.html`) to its HTML; `manifest` is stored beside them."""

    key: str
    pages: dict[str, str] = field(default_factory=dict)
    manifest: dict = field(default_factory=dict)


def _templates_digest() -> str:
    digest = hashlib.sha256()
    for name in TEMPLATES:
        digest.update(name.encode())
        digest.update(get_template(name).template.source.encode())
    return digest.hexdigest()


def store_key() -> str:
    """What the stored pages depend on, as one digest: each current runbook's
    revision and text, the bindings an admin changed since (binding_version), the
    templates' text and RENDER_VERSION. Two queries; a different key means stale."""
    digest = hashlib.sha256(f"render {RENDER_VERSION}\n".encode())
    digest.update(_templates_digest().encode())
    for row in (
        Runbook.objects.filter(is_current=True)
        .order_by("key")
        .values_list("pk", "key", "revision", "sha256", "parser_version")
    ):
        digest.update(repr(row).encode())
    for row in (
        Playbook.objects.current()
        .order_by("pk")
        .values_list("pk", "slug", "binding_version")
    ):
        digest.update(repr(row).encode())
    return digest.hexdigest()


def render_store(now: datetime | None = None) -> RenderedStore:
    """Every current playbook's page and the library list. Needs the database
    (it is up when this runs); what it returns does not."""
    key = store_key()
    now = now or timezone.now()
    runbooks = list(Runbook.objects.filter(is_current=True).order_by("key"))
    playbooks = list(
        Playbook.objects.current()
        .select_related("runbook")
        .annotate(step_count=Count("steps"))
        .order_by("runbook__key", "number")
    )
    # The banner's time: when the newest of the runbooks shown was imported.
    imported_at = max((r.imported_at for r in runbooks), default=None)
    common = {
        "rendered_at": now,
        "imported_at": imported_at,
        "runbooks": runbooks,
        "several_runbooks": len(runbooks) > 1,
    }
    store = RenderedStore(key=key)
    store.pages["index.html"] = render_to_string(
        "offline/playbook_list.html", {**common, "playbooks": playbooks}
    )
    for playbook in playbooks:
        store.pages[f"playbooks/{playbook.slug}.html"] = render_to_string(
            "offline/playbook.html",
            {
                **common,
                "imported_at": playbook.runbook.imported_at,
                "view": present_playbook(playbook),
            },
        )
    store.manifest = {
        "key": key,
        "rendered_at": now.isoformat(),
        "imported_at": imported_at.isoformat() if imported_at else None,
        "runbooks": [
            {"title": r.title, "revision": r.revision, "sha256": r.sha256}
            for r in runbooks
        ],
        # Titles for the "database down" page's list (shown to readers only).
        "playbooks": [
            {"slug": p.slug, "number": p.number, "title": p.title} for p in playbooks
        ],
    }
    return store
