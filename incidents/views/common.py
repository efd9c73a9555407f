"""What every page of an incident shares: loading it, who may do what on it, and
the answer after a change (the changed fragments, or back to the page)."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import messages
from django.core.cache import caches
from django.db import InterfaceError, OperationalError, connection
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.utils.html import escape

from .. import access
from ..fragments import (
    CSRF_SENTINEL,
    Head,
    events_html,
    personalise,
    steps_html,
)
from ..models import AuditEvent, Command, Incident, Playbook
from ..presenters import Checklist, present_checklist

# What the checklist page and its poll read besides the person: scalar SQL columns,
# asked on their own (after Django's session and user) or with the person in one
# query (access.signed_in_with), which the database keeps prepared. Cheaper than
# loading the incident with its joins.
_EVENTS = AuditEvent._meta.db_table
_INCIDENTS = Incident._meta.db_table
# The incident's last event number, by the (incident, seq) index whatever the plan.
# A prepared statement is soon run with PostgreSQL's generic plan, made without the
# values and costed on average statistics: with `incident_id = %s` that plan could
# take the index on seq alone, or a scan, and read a long history whole (a 10,000-
# event incident beside a few small ones: 0.9-3.7 ms). A range on incident keeps
# (incident, seq) in the ORDER BY, an order only that index gives: one entry read
# backwards, whichever the values.
LAST_SEQ = (
    f"(SELECT seq FROM {_EVENTS} WHERE incident_id BETWEEN %s AND %s"
    " ORDER BY incident_id DESC, seq DESC LIMIT 1)"
)
POLL_COLUMNS = (
    f"EXISTS (SELECT 1 FROM {_INCIDENTS} WHERE id = %s),"
    f" COALESCE({LAST_SEQ} > %s, FALSE)"
)
PAGE_COLUMNS = (
    f"(SELECT i.playbook_id FROM {_INCIDENTS} i WHERE i.id = %s),"
    f" (SELECT p.binding_version FROM {_INCIDENTS} i"
    f"  JOIN {Playbook._meta.db_table} p ON p.id = i.playbook_id WHERE i.id = %s),"
    f" {LAST_SEQ}"
)


def poll_params(pk: int, since: int) -> list[int]:
    """POLL_COLUMNS' parameters: is there incident `pk`, an event after `since`?"""
    return [pk, pk, pk, since]


def page_params(pk: int) -> list[int]:
    """PAGE_COLUMNS' parameters: incident `pk`'s playbook, binding, last event."""
    return [pk, pk, pk, pk]


def lookup(columns: str, params: list[object]) -> tuple:
    """The grants counter and the columns, for a person Django has loaded."""
    with connection.bound_cursor() as cursor:  # kept prepared: see LAST_SEQ
        cursor.execute(
            "SELECT (SELECT n FROM incidents_grants_version WHERE id = 1), " + columns,
            params,
        )
        version, *values = cursor.fetchone()
    return version or 0, *values


@dataclass(frozen=True)
class PageKey:
    playbook_id: int
    binding_version: int
    last_seq: int


def page_key(values: tuple) -> PageKey | None:
    """PAGE_COLUMNS' answer (None: no such incident)."""
    playbook_id, binding_version, last_seq = values
    if playbook_id is None:
        return None
    return PageKey(playbook_id, binding_version, last_seq or 0)


def load_incident(pk: int) -> Incident:
    incidents = (
        Incident.objects.select_related("playbook__runbook", "commander", "opened_by")
        # The runbook's whole Markdown is not needed on every page.
        .defer(
            "playbook__runbook__source",
            "playbook__runbook__preamble",
            "playbook__runbook__sections",
            "playbook__runbook__warnings",
        )  # fmt: skip
    )
    return get_object_or_404(incidents, pk=pk)


def commander_choices() -> list[tuple[int, str]]:
    """Who can be made commander: read at most every 15 s per process (the form
    is checked on the server anyway, so a new account appears a moment later)."""
    cache = caches["fragments"]
    people = cache.get("commander-choices")
    if people is None:
        able = access.people_who_can(access.COMMAND_INCIDENTS).order_by("username")
        people = list(able.values_list("pk", "username"))
        cache.set("commander-choices", people, 15)
    return people


def base_context(request: HttpRequest, incident: Incident, **extra: object) -> dict:
    can = access.permissions_for(request.user, incident.playbook)
    context = {"incident": incident, "can": can, **extra}
    if can["command"]:
        context["people"] = commander_choices()
    return context


# An audit sequence number is a PostgreSQL bigint.
MAX_SEQ = 2**63 - 1


def since_number(value: str | None) -> int | None:
    """The `since` event number a page sends, or None when it is not one."""
    # isascii: str.isdigit() also accepts other scripts' digits and superscripts.
    if not value or len(value) > 19 or not (value.isascii() and value.isdigit()):
        return None
    number = int(value)
    return number if number <= MAX_SEQ else None


def after_change(
    request: HttpRequest,
    incident: Incident,
    *,
    step: int | None = None,
    notice: str = "",
    error: str = "",
    panel: str = "",
    kept: dict[str, str] | None = None,
    status: int = 200,
    command: Command | None = None,
    preview: dict | None = None,
    loaded: bool = False,
) -> HttpResponse:
    """HTMX: the changed fragment plus out-of-band header, timeline and poller.
    Without JavaScript: back to the page (the notice as a message). `loaded`: the
    caller's incident was loaded in this request (load_incident) and its change
    does not touch the row (a run): it is drawn from as it is, unless the header
    has to be drawn (see HEAD_NEUTRAL).

    Called after the change committed: if the database connection breaks while
    the answer is drawn, the change still happened, so the answer is a success
    (drawn again on a new connection, or a short notice the poller will follow),
    never a 500 that makes a person press again."""
    if not request.htmx:
        if notice or error:
            messages.add_message(
                request, messages.ERROR if error else messages.INFO, notice or error
            )
        anchor = f"#step-{step}" if step else ""
        return HttpResponseRedirect(incident.get_absolute_url() + anchor)
    for attempt in range(2):
        try:
            return draw_changes(
                request,
                incident,
                step=step,
                notice=notice,
                error=error,
                panel=panel,
                kept=kept or {},
                status=status,
                command=command,
                preview=preview,
                loaded=loaded and not attempt,
            )
        except (OperationalError, InterfaceError):
            connection.close()  # a new connection on the next query
            if attempt:
                break
    text = error or notice or "Done. The page will show it in a moment."
    return HttpResponse(
        f'<div id="flash" hx-swap-oob="true"><p class="notice" role="status">'
        f"{escape(text)}</p></div>",
        status=status,
    )


# Events that never change the header (status, commander, steps done, the alert,
# the notifications sent and their panels): a run's life and a note. An answer
# whose new events are all of these leaves the header on the page as it is: on a
# Run click that is a third of the answer's server time (the edges' panels, each
# a query) and its biggest fragment for the browser to swap.
HEAD_NEUTRAL = ("execution.", "note.")


def head_changed(new_events: list[AuditEvent], panel: str) -> bool:
    """Whether the answer must draw the header: a new event of another kind
    (someone else's change, with the answer's `since` before it, included), or
    a refusal shown in it. None new (a repeated click): nothing to redraw."""
    return panel == "head" or any(
        not event.verb.startswith(HEAD_NEUTRAL) for event in new_events
    )


def draw_changes(
    request: HttpRequest,
    incident: Incident,
    *,
    step: int | None,
    notice: str,
    error: str,
    panel: str,
    kept: dict[str, str],
    status: int,
    command: Command | None,
    preview: dict | None,
    loaded: bool = False,
) -> HttpResponse:
    if not loaded:
        incident = load_incident(incident.pk)
    # The change (if any) has committed: a bad `since` cannot refuse it any more,
    # it only means "send every event" (the page de-duplicates them).
    since = since_number(request.POST.get("since") or request.GET.get("since")) or 0
    context, checklist = _present(
        request, incident, notice=notice, error=error, panel=panel, kept=kept
    )
    can, viewer_id = context["can"], request.user.pk
    new_events = checklist.events({n for n in checklist.event_seqs if n > since})
    context["draw_head"] = head_changed(new_events, panel)
    if context["draw_head"] and loaded:
        # Someone changed the header while this request ran: the incident afresh.
        incident = load_incident(incident.pk)
        context, checklist = _present(
            request, incident, notice=notice, error=error, panel=panel, kept=kept
        )
        new_events = checklist.events({n for n in checklist.event_seqs if n > since})
        context["draw_head"] = True
    changed = {e.data.get("step") for e in new_events} | {step}
    # A notice or an error shows in the step acted on, with what was typed: that
    # step is this answer's own, drawn and not cached.
    said = {"notice": notice, "error": error, "focus_step": step, "kept": kept}
    context.update(
        new_events=new_events,
        new_events_html=events_html(incident, new_events),
        changed_steps_html=steps_html(
            checklist,
            [cs for cs in checklist.steps if cs.number in changed],
            can,
            viewer_id,
            oob=True,
            said=(step, said) if notice or error else None,
        ),
        focus_step=step,
        # A Diagnosis command has no step to re-render, and a preview lives only in
        # this answer: send the command's run panel on its own, after its step.
        run_command=command
        if command is not None and (command.step_id is None or preview)
        else None,
        runs_by_command=checklist.runs_by_command,
        more_runs=checklist.more_runs,
        preview=preview,
    )
    response = render(
        request, "incidents/partials/changes.html", context, status=status
    )
    # Step bodies come from templates drawn without the request: their forms
    # carry sentinels for the CSRF token and the Run keys.
    response.content = personalise(response.content.decode(), request)
    return response


def _present(
    request: HttpRequest, incident: Incident, **said: object
) -> tuple[dict, Checklist]:
    """The answer's context and the checklist as it is now. Nothing is drawn from
    it but what changed: the steps the new events touched (and the one acted on),
    each from the cache when its runs and ticks are as they were, and the new
    timeline entries."""
    # Where a refusal is shown (said["panel"]: "head", "note", or the step): next
    # to what the person did, with what they typed (said["kept"]) put back.
    context = base_context(request, incident, viewer_id=request.user.pk, **said)
    checklist = context["checklist"] = present_checklist(
        incident, context["can"], viewer_id=request.user.pk, csrf_token=CSRF_SENTINEL
    )
    context["head"] = Head.of(checklist)
    return context, checklist


def refused(
    request: HttpRequest,
    incident: Incident,
    command: Command,
    message: str,
    status: int,
) -> HttpResponse:
    """A refused run, preview or decision. With HTMX only the message, in the run
    panel that caused it: the form and its preview stay as the person left them.
    Without JavaScript: back to the page, the message on top."""
    if not request.htmx:
        return after_change(request, incident, error=message, status=status)
    response = render(
        request,
        "incidents/partials/run_error.html",
        {"command": command, "message": message},
        status=status,
    )
    response["X-Console-Explained"] = "1"  # console.js adds no generic text
    return response
