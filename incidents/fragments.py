"""The checklist page's heavy parts, rendered once per change of the incident.

Everything on the page changes only together with an audit event of the incident
(ticks, notes, status, commander) or with an admin rebinding a command (the
playbook's binding_version). So the rendered checklist and timeline are cached
under (incident, last event, binding version, what this person may do) and are
never stale. What is per person is never cached: the HTML holds sentinels that
are replaced on the way out (see personalise), and people who may approve get
their own copy (an approval form is offered on everyone's requests but their own)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.core.cache import caches
from django.http import HttpRequest
from django.middleware.csrf import get_token
from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe

from .models import Incident
from .presenters import Checklist, present_checklist
from .services import sites

CSRF_SENTINEL = "yomira-csrf-sentinel-7f3c"
# Each Run form's one-time key. Cached HTML is shared by everyone with the same
# rights, so a key baked into it would be one key for every person and page
# load, and a second person's click would be answered with the first one's run.
REQUEST_KEY_SENTINEL = "yomira-request-key-sentinel-2b9e"
TIMEOUT = 3600
# The header's elapsed time, in a page kept for as long as nothing happens.
ELAPSED_SENTINEL = "yomira-elapsed-sentinel-5d1a"


@dataclass
class Head:
    """What the live header and the poller need besides the incident row."""

    progress: tuple[int, int]
    alert_condition: SafeString
    last_seq: int

    @classmethod
    def of(cls, checklist: Checklist) -> Head:
        return cls(
            checklist.progress, checklist.playbook.alert_condition, checklist.last_seq
        )


@dataclass
class ChecklistFragments:
    main: str
    side: str
    head: Head


def last_seq(incident: Incident) -> int:
    """The incident's latest event (annotated by the view's query when it can be)."""
    if hasattr(incident, "last_seq"):
        return incident.last_seq or 0
    return incident.events.order_by("-seq").values_list("seq", flat=True).first() or 0


def fragments_key(
    incident_id: int,
    seq: int,
    binding_version: int,
    can: dict[str, bool],
    viewer_id: int | None,
) -> str:
    """What the checklist's HTML depends on (see the module's docstring); the
    page's own cache (views.incidents.incident_detail) builds on it."""
    key = (
        f"checklist:{incident_id}:{seq}:{binding_version}:"
        f"{''.join(str(int(can[k])) for k in sorted(can))}"
    )
    if can.get("approve"):
        key += f":{viewer_id}"  # no Approve button on one's own requests
    if sites_now := sites.signature():  # "" with no site configured
        key += f":sites:{sites_now}"  # a site's worker gone or back: its warning
    return key


def checklist_fragments(
    incident: Incident, can: dict[str, bool], viewer_id: int | None = None
) -> ChecklistFragments:
    key = fragments_key(
        incident.pk,
        last_seq(incident),
        incident.playbook.binding_version,
        can,
        viewer_id,
    )
    cache = caches["fragments"]
    found = cache.get(key)
    if found is not None:
        return found
    checklist = present_checklist(
        incident, can, viewer_id=viewer_id, csrf_token=CSRF_SENTINEL
    )
    context = {
        "incident": incident,
        "checklist": checklist,
        "can": can,
        "viewer_id": viewer_id,
        "csrf_token": CSRF_SENTINEL,
    }
    fragments = ChecklistFragments(
        main=render_to_string("incidents/partials/checklist_main.html", context),
        side=render_to_string("incidents/partials/checklist_side.html", context),
        head=Head.of(checklist),
    )
    cache.set(key, fragments, TIMEOUT)
    return fragments


def personalise(html: str, request: HttpRequest) -> str:
    """The requester's CSRF token for every form (so they work without
    JavaScript), and a new one-time key for every Run form on every answer."""
    # One masked token per answer (masking is per response, against BREACH; each
    # get_token draws a new one, and a page has several fragments).
    token = getattr(request, "_console_csrf_token", None)
    if token is None:
        token = request._console_csrf_token = get_token(request)
    html = html.replace(CSRF_SENTINEL, token)
    if REQUEST_KEY_SENTINEL not in html:
        return html
    parts = html.split(REQUEST_KEY_SENTINEL)
    return "".join(part + uuid.uuid4().hex for part in parts[:-1]) + parts[-1]


def with_token(html: str, request: HttpRequest) -> SafeString:
    return mark_safe(personalise(html, request))
