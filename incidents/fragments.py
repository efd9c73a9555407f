"""The checklist page's drawn parts, each kept under what it shows.

A step's HTML shows the step (its playbook's binding_version), the incident's
status and drill flag, what this person may do, the sites' state, and the step's
recent executions (its ticks and its commands' runs): it is cached under all of
these, the executions as their ids and states, so a change redraws only the step
it touched, and a run ending, a tick, an approval, a rebinding or other rights
each give a new key. The Diagnosis (before the steps) likewise, under its
commands' runs. A timeline entry is an append-only event: cached under its
number. So the first viewer after a change, and the answer to a click, draw only
what changed.

What is per person is never cached: the HTML holds sentinels that are replaced
on the way out (see personalise), and people who may approve get their own copy
(an approval form is offered on everyone's requests but their own)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from django.core.cache import caches
from django.http import HttpRequest
from django.middleware.csrf import get_token
from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe

from . import access
from .models import AuditEvent, Incident, StepExecution
from .presenters import Checklist, ChecklistStep, Row, present_checklist
from .services import sites

CHECKLIST_STEP = "incidents/partials/checklist_step.html"
TIMELINE_ITEMS = "incidents/partials/timeline_items.html"

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
        return cls(checklist.progress, checklist.alert_condition, checklist.last_seq)


@dataclass
class ChecklistFragments:
    main: str
    side: str
    head: Head


def rights_key(can: dict[str, bool], viewer_id: int | None) -> str:
    """What a person may do, as the cached HTML offers it: one bit per right,
    and for an approver who they are (no Approve button on their own requests)."""
    key = "".join(str(int(can[k])) for k in sorted(can))
    if can.get("approve"):
        key += f":{viewer_id}"
    return key


def fragments_key(
    incident_id: int,
    seq: int,
    binding_version: int,
    can: dict[str, bool],
    viewer_id: int | None,
) -> str:
    """What the whole checklist page depends on: the incident's last event (every
    change to it is one), its playbook's binding, the person's rights and the
    sites' state (the page's own cache, views.incidents.incident_detail)."""
    key = (
        f"checklist:{incident_id}:{seq}:{binding_version}:{rights_key(can, viewer_id)}"
    )
    if sites_now := sites.signature():  # "" with no site configured
        key += f":sites:{sites_now}"  # a site's worker gone or back: its warning
    return key


def parts_key(incident: Incident, can: dict[str, bool], viewer_id: int | None) -> str:
    """What every part of the checklist depends on besides its own executions:
    the incident (its status: a resolved one offers no Run; drill: simulated
    manual steps), the playbook's binding, the person's rights, the sites."""
    key = (
        f"{incident.pk}:{incident.status}:{int(incident.drill)}:"
        f"{incident.playbook.binding_version}:{rights_key(can, viewer_id)}"
    )
    if sites_now := sites.signature():
        key += f":sites:{sites_now}"
    return key


def rows_key(rows: list[Row]) -> str:
    """The executions a part shows, as what can change in them once written: the
    state (queued, running, the end, approved: every change of a run is one),
    who approved, when it started and ended. A new run or tick is a new id."""
    seen = repr(
        [(e.pk, e.state, e.approved_by_id, e.started_at, e.finished_at) for e in rows]
    )
    return hashlib.blake2b(seen.encode(), digest_size=12).hexdigest()


def awaiting(rows: list[Row]) -> bool:
    return any(e.state == StepExecution.State.AWAITING_APPROVAL for e in rows)


def grants_part(rows: list[Row], version: Callable[[], int]) -> str:
    """A request waiting for approval names who may approve it: with one shown,
    the key follows the grants counter too (a grant given or taken back)."""
    return f":grants:{version()}" if awaiting(rows) else ""


def grants_once() -> Callable[[], int]:
    """The grants counter, read at most once for all the parts of one answer."""
    read: list[int] = []

    def version() -> int:
        if not read:
            read.append(access.grants_version())
        return read[0]

    return version


def steps_html(
    checklist: Checklist,
    steps: list[ChecklistStep],
    can: dict[str, bool],
    viewer_id: int | None,
    *,
    oob: bool = False,
    said: tuple[int | None, dict] | None = None,
) -> list[SafeString]:
    """Each step's <li>, from the cache when nothing it shows changed; the others
    drawn (their executions made models from the rows already read, no query).
    `said` (a step's number, and the
    notice or error and what the person typed) is this answer's own: that step
    is drawn, never cached. `oob`: for an answer's out-of-band swap."""
    context = {
        "incident": checklist.incident,
        "can": can,
        "viewer_id": viewer_id,
        "csrf_token": CSRF_SENTINEL,
    }
    common = parts_key(checklist.incident, can, viewer_id)
    version = grants_once()
    keys = [
        f"step:{common}:{cs.step.pk}:{rows_key(cs.fetched)}"
        f"{grants_part(cs.fetched, version)}"
        for cs in steps
    ]
    cache = caches["fragments"]
    found = cache.get_many(keys)
    own = said[0] if said else None
    checklist.load(
        cs.fetched for cs, key in zip(steps, keys, strict=True)
        if key not in found or cs.number == own
    )  # fmt: skip
    drawn = []
    for cs, key in zip(steps, keys, strict=True):
        if said and cs.number == own:
            html = render_to_string(CHECKLIST_STEP, {**context, "cs": cs, **said[1]})
        elif (html := found.get(key)) is None:
            html = render_to_string(CHECKLIST_STEP, {**context, "cs": cs})
            cache.set(key, html, TIMEOUT)
        if oob:
            # The step's <li> opens with its id; the attribute is added after it.
            anchor = f'id="step-{cs.number}"'
            html = html.replace(anchor, f'{anchor} hx-swap-oob="true"', 1)
        drawn.append(mark_safe(html))  # noqa: S308 (drawn by the template, escaped there)
    return drawn


def top_html(
    checklist: Checklist, can: dict[str, bool], viewer_id: int | None
) -> SafeString:
    """The context and the Diagnosis with its commands' run panels."""
    rows = checklist.diagnosis_fetched
    key = (
        f"top:{parts_key(checklist.incident, can, viewer_id)}:"
        f"{rows_key(rows)}{grants_part(rows, grants_once())}"
    )
    cache = caches["fragments"]
    html = cache.get(key)
    if html is None:
        checklist.load([rows])
        context = {
            "incident": checklist.incident,
            "checklist": checklist,
            "can": can,
            "viewer_id": viewer_id,
            "csrf_token": CSRF_SENTINEL,
        }
        html = render_to_string("incidents/partials/checklist_top.html", context)
        cache.set(key, html, TIMEOUT)
    return mark_safe(html)  # noqa: S308 (drawn by the template, escaped there)


def event_key(incident: Incident, seq: int) -> str:
    return f"event:{incident.pk}:{int(incident.drill)}:{seq}"


def events_html(incident: Incident, events: list[AuditEvent]) -> SafeString:
    """Timeline entries, newest first. An event never changes once written: each
    entry is drawn once (it shows the event and whether the incident is a drill)."""
    cache = caches["fragments"]
    keys = [event_key(incident, e.seq) for e in events]
    found = cache.get_many(keys)
    missing = {}
    for key, event in zip(keys, events, strict=True):
        if key not in found:
            found[key] = missing[key] = render_to_string(
                TIMELINE_ITEMS, {"incident": incident, "events": [event]}
            )
    if missing:
        cache.set_many(missing, TIMEOUT)
    return mark_safe("".join(found[key] for key in keys))  # noqa: S308


def timeline_html(checklist: Checklist) -> SafeString:
    """The page's timeline: the entries kept, and only the events not yet drawn
    read from the database."""
    incident = checklist.incident
    keys = {seq: event_key(incident, seq) for seq in checklist.event_seqs}
    found = caches["fragments"].get_many(keys.values())
    if len(found) < len(keys):
        missing = {seq for seq, key in keys.items() if key not in found}
        for event in checklist.events(missing):
            found[keys[event.seq]] = str(events_html(incident, [event]))
    return mark_safe("".join(found[key] for key in keys.values()))  # noqa: S308


def checklist_fragments(
    incident: Incident, can: dict[str, bool], viewer_id: int | None = None
) -> ChecklistFragments:
    """The page's checklist (context, Diagnosis, steps) and side (note form and
    timeline), each part from the cache when what it shows has not changed."""
    checklist = present_checklist(
        incident, can, viewer_id=viewer_id, csrf_token=CSRF_SENTINEL
    )
    context = {
        "incident": incident,
        "checklist": checklist,
        "can": can,
        "viewer_id": viewer_id,
        "csrf_token": CSRF_SENTINEL,
        "top": top_html(checklist, can, viewer_id),
        "steps_html": steps_html(checklist, checklist.steps, can, viewer_id),
        "timeline_html": timeline_html(checklist),
    }
    return ChecklistFragments(
        main=render_to_string("incidents/partials/checklist_main.html", context),
        side=render_to_string("incidents/partials/checklist_side.html", context),
        head=Head.of(checklist),
    )


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
