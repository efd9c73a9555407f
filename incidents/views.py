"""Pages and HTMX fragments. Every view requires login and a permission, checked
here on the server through incidents.access; templates only hide what is refused."""

from __future__ import annotations

import time
import uuid

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.cache import caches
from django.core.exceptions import PermissionDenied
from django.db import InterfaceError, OperationalError, connection
from django.db.models import Count, OuterRef, Q, Subquery
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.html import escape
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from probes import targets

from . import access, exports, services
from .access import permission_required
from .actors import Actor
from .forms import (
    CommanderForm,
    IncidentFilterForm,
    NoteForm,
    OpenIncidentForm,
    StatusForm,
    TickForm,
)
from .fragments import (
    CSRF_SENTINEL,
    Head,
    checklist_fragments,
    personalise,
    with_token,
)
from .models import AuditEvent, Command, Incident, Playbook, Step, StepExecution
from .presenters import present_checklist, present_playbook

# --- the playbook library ---------------------------------------------------------------

MAX_SEARCH = 200


@permission_required(access.VIEW_PLAYBOOKS)
@require_GET
@vary_on_headers("HX-Request")
def playbook_list(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()
    # Titles and alert names are short: a longer search is a mistake (or a probe).
    search_error = (
        f"Search for at most {MAX_SEARCH} characters."
        if len(query) > MAX_SEARCH
        # The database cannot compare a NUL (the search reaches commands' text).
        else "The search holds a NUL character; type it again."
        if "\x00" in query
        else ""
    )
    if search_error:
        query = ""
    playbooks = (
        Playbook.objects.current()
        .select_related("runbook")
        .annotate(
            step_count=Count("steps", distinct=True),
            probe_count=Count(
                "commands", filter=Q(commands__kind=Command.Kind.PROBE), distinct=True
            ),
            action_count=Count(
                "commands", filter=Q(commands__kind=Command.Kind.ACTION), distinct=True
            ),
            manual_count=Count(
                "commands", filter=Q(commands__kind=Command.Kind.MANUAL), distinct=True
            ),
        )
    )
    everything = list(playbooks)
    shown = search(everything, query)
    runbooks = {p.runbook_id: p.runbook for p in everything}.values()
    template = "incidents/playbook_list.html"
    if request.htmx:
        template += "#results"
    context = {
        "playbooks": [] if search_error else shown,
        "query": query,
        "search_error": search_error,
        "total": len(everything),
        "runbooks": runbooks,
        "can_open": access.can(request.user, access.OPEN_INCIDENTS),
    }
    return render(request, template, context, status=400 if search_error else 200)


def search(playbooks: list[Playbook], query: str) -> list[Playbook]:
    """What a person types, found: titles, slugs, numbers and alert names first;
    then the text a responder remembers (a command such as `terminate`, a step, a
    symptom such as `502`), each saying where it was found (`found_in`)."""
    named = [p for p in playbooks if p.matches(query)]
    if not query:
        return named
    ids = [p.pk for p in playbooks if p not in named]
    in_commands = dict(
        Command.objects.filter(playbook_id__in=ids, text__icontains=query)
        .order_by("playbook_id", "-position")
        .values_list("playbook_id", "step__number")
    )
    in_steps = dict(
        Step.objects.filter(playbook_id__in=ids)
        .filter(Q(title__icontains=query) | Q(body__icontains=query))
        .order_by("playbook_id", "-number")
        .values_list("playbook_id", "number")
    )
    found = []
    for playbook in playbooks:
        if playbook in named:
            continue
        where = playbook.found_in_text(query)
        if not where and playbook.pk in in_commands:
            number = in_commands[playbook.pk]
            where = f"a command of step {number}" if number else "Diagnosis"
        if not where and playbook.pk in in_steps:
            where = f"step {in_steps[playbook.pk]}"
        if where:
            playbook.found_in = where
            found.append(playbook)
    return named + found


@permission_required(access.VIEW_PLAYBOOKS)
@require_GET
def playbook_detail(request: HttpRequest, slug: str) -> HttpResponse:
    playbook = get_object_or_404(
        Playbook.objects.current().select_related("runbook"), slug=slug
    )
    context = {
        "view": present_playbook(playbook),
        "can_open": access.can(request.user, access.OPEN_INCIDENTS),
        # The one-click Open's key: a double click opens one incident.
        "request_key": uuid.uuid4().hex,
    }
    return render(request, "incidents/playbook_detail.html", context)


# --- incidents --------------------------------------------------------------------------


@permission_required(access.VIEW_INCIDENTS)
@require_GET
@vary_on_headers("HX-Request")
def incident_list(request: HttpRequest) -> HttpResponse:
    form = IncidentFilterForm(request.GET or None)
    incidents = Incident.objects.select_related("playbook", "commander").active_first()
    if form.is_valid():
        status = form.cleaned_data["status"]
        if status == "active":
            incidents = incidents.exclude(status=Incident.Status.RESOLVED)
        elif status:
            incidents = incidents.filter(status=status)
        if form.cleaned_data["severity"]:
            incidents = incidents.filter(severity=form.cleaned_data["severity"].lower())
        if form.cleaned_data["playbook"]:
            incidents = incidents.filter(playbook__slug=form.cleaned_data["playbook"])
    filter_error = ""
    if form.is_bound and not form.is_valid():
        # Say so rather than quietly showing everything as if it had matched.
        filter_error = "That filter is not valid: " + "; ".join(
            f"{field}: {' '.join(errors)}" for field, errors in form.errors.items()
        )
        incidents = incidents.none()
    severities = (
        Incident.objects.order_by("severity")
        .values_list("severity", flat=True)
        .distinct()
    )
    playbooks = Playbook.objects.current().values_list("slug", "number", "title")
    template = "incidents/incident_list.html" + ("#results" if request.htmx else "")
    return render(
        request,
        template,
        {
            "incidents": incidents[:500],
            "filter_error": filter_error,
            "form": form,
            "severities": [s for s in severities if s],
            "playbooks": playbooks,
            "can_open": access.can(request.user, access.OPEN_INCIDENTS),
        },
        status=400 if filter_error else 200,
    )


@permission_required(access.OPEN_INCIDENTS)
def incident_new(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = OpenIncidentForm(request.POST)
        if form.is_valid():
            incident = services.open_incident(
                playbook=form.cleaned_data["playbook"],
                title=form.cleaned_data["title"],
                actor=Actor.from_request(request),
                request_key=form.cleaned_data["request_key"],
            )
            return HttpResponseRedirect(incident.get_absolute_url())
        status = 400
    else:
        wanted = request.GET.get("playbook", "")
        chosen = Playbook.objects.current().filter(slug=wanted).first()
        # The playbook's own title is a good first title: one edit, or none.
        form = OpenIncidentForm(
            initial={"playbook": wanted, "title": chosen.title if chosen else ""}
        )
        status = 200
    playbooks = Playbook.objects.current().order_by("number")
    # A new key for every page load: a double submit of this page sends it twice.
    context = {"form": form, "playbooks": playbooks, "request_key": uuid.uuid4().hex}
    return render(request, "incidents/incident_new.html", context, status=status)


def _incident(pk: int) -> Incident:
    latest = AuditEvent.objects.filter(incident=OuterRef("pk")).order_by("-seq")
    incidents = (
        Incident.objects.select_related("playbook__runbook", "commander", "opened_by")
        # The runbook's whole Markdown is not needed on every page.
        .defer(
            "playbook__runbook__source",
            "playbook__runbook__preamble",
            "playbook__runbook__sections",
            "playbook__runbook__warnings",
        )  # fmt: skip
        .annotate(last_seq=Subquery(latest.values("seq")[:1]))
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


def _base_context(request: HttpRequest, incident: Incident, **extra: object) -> dict:
    can = access.permissions_for(request.user, incident.playbook)
    context = {"incident": incident, "can": can, **extra}
    if can["command"]:
        context["people"] = commander_choices()
    return context


# An audit sequence number is a PostgreSQL bigint.
MAX_SEQ = 2**63 - 1


def _since(value: str | None) -> int | None:
    """The `since` event number a page sends, or None when it is not one."""
    # isascii: str.isdigit() also accepts other scripts' digits and superscripts.
    if not value or len(value) > 19 or not (value.isascii() and value.isdigit()):
        return None
    number = int(value)
    return number if number <= MAX_SEQ else None


@permission_required(access.VIEW_INCIDENTS)
@require_GET
def incident_detail(request: HttpRequest, pk: int) -> HttpResponse:
    incident = _incident(pk)
    context = _base_context(request, incident)
    fragments = checklist_fragments(incident, context["can"], request.user.pk)
    context.update(
        head=fragments.head,
        main=with_token(fragments.main, request),
        side=with_token(fragments.side, request),
    )
    return render(request, "incidents/incident_detail.html", context)


def _after_change(
    request: HttpRequest,
    incident: Incident,
    *,
    step: int | None = None,
    notice: str = "",
    error: str = "",
    status: int = 200,
    command: Command | None = None,
    preview: dict | None = None,
) -> HttpResponse:
    """HTMX: the changed fragment plus out-of-band header, timeline and poller.
    Without JavaScript: back to the page (the notice as a message).

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
            return _draw_changes(
                request,
                incident,
                step=step,
                notice=notice,
                error=error,
                status=status,
                command=command,
                preview=preview,
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


def _draw_changes(
    request: HttpRequest,
    incident: Incident,
    *,
    step: int | None,
    notice: str,
    error: str,
    status: int,
    command: Command | None,
    preview: dict | None,
) -> HttpResponse:
    incident = _incident(incident.pk)
    # The change (if any) has committed: a bad `since` cannot refuse it any more,
    # it only means "send every event" (the page de-duplicates them).
    since = _since(request.POST.get("since") or request.GET.get("since")) or 0
    context = _base_context(
        request, incident, notice=notice, error=error, viewer_id=request.user.pk
    )
    checklist = context["checklist"] = present_checklist(
        incident, context["can"], viewer_id=request.user.pk, csrf_token=CSRF_SENTINEL
    )
    context["head"] = Head.of(checklist)
    new_events = [e for e in checklist.events if e.seq > since]
    changed = {e.data.get("step") for e in new_events} | {step}
    context.update(
        new_events=new_events,
        changed_steps=[s for s in checklist.steps if s.number in changed],
        focus_step=step,
        # A Diagnosis command has no step to re-render, and a preview lives only in
        # this answer: send the command's run panel on its own, after its step.
        run_command=command
        if command is not None and (command.step_id is None or preview)
        else None,
        runs_by_command=checklist.runs_by_command,
        preview=preview,
    )
    response = render(
        request, "incidents/partials/changes.html", context, status=status
    )
    # Step bodies come from templates drawn without the request: their forms
    # carry sentinels for the CSRF token and the Run keys.
    response.content = personalise(response.content.decode(), request)
    return response


@permission_required(access.COMMAND_INCIDENTS)
@require_POST
def incident_status(request: HttpRequest, pk: int) -> HttpResponse:
    incident = _incident(pk)
    form = StatusForm(request.POST)
    if not form.is_valid():
        return _after_change(request, incident, error="Choose a status.", status=400)
    try:
        services.change_status(
            incident=incident,
            to=form.cleaned_data["status"],
            actor=Actor.from_request(request),
        )
    except services.TransitionError as exc:
        return _after_change(request, incident, error=str(exc), status=409)
    return _after_change(request, incident)


@permission_required(access.COMMAND_INCIDENTS)
@require_POST
def incident_commander(request: HttpRequest, pk: int) -> HttpResponse:
    incident = _incident(pk)
    form = CommanderForm(request.POST)
    if not form.is_valid():
        return _after_change(
            request, incident, error="That person cannot command.", status=400
        )
    services.change_commander(
        incident=incident,
        commander=form.cleaned_data["commander"],
        actor=Actor.from_request(request),
    )
    return _after_change(request, incident)


@permission_required(access.TICK_STEPS)
@require_POST
def step_tick(request: HttpRequest, pk: int, number: int) -> HttpResponse:
    incident = _incident(pk)
    step = get_object_or_404(incident.playbook.steps, number=number)
    form = TickForm(request.POST)
    if not form.is_valid():
        error = "; ".join(e for errors in form.errors.values() for e in errors)
        return _after_change(request, incident, step=number, error=error, status=400)
    result = services.tick_step(
        incident=incident,
        step=step,
        state=form.cleaned_data["state"],
        expected=form.cleaned_data["expected"],
        reason=form.cleaned_data["reason"] or "",
        actor=Actor.from_request(request),
    )
    return _after_change(request, incident, step=number, notice=result.conflict)


@permission_required(access.ADD_NOTES)
@require_POST
def note_add(request: HttpRequest, pk: int) -> HttpResponse:
    incident = _incident(pk)
    form = NoteForm(request.POST)
    if not form.is_valid():
        error = "; ".join(e for errors in form.errors.values() for e in errors)
        if "text" in form.errors:
            error = "A note needs some text (at most 5,000 characters)."
        return _after_change(request, incident, error=error, status=400)
    step = None
    if form.cleaned_data["step"]:
        step = get_object_or_404(
            incident.playbook.steps, number=form.cleaned_data["step"]
        )
    services.add_note(
        incident=incident,
        text=form.cleaned_data["text"],
        step=step,
        actor=Actor.from_request(request),
        request_key=form.cleaned_data["request_key"],
    )
    return _after_change(request, incident, step=step.number if step else None)


@permission_required(access.VIEW_INCIDENTS)
@require_GET
def incident_changes(request: HttpRequest, pk: int) -> HttpResponse:
    """Polled every few seconds: 204 when nothing happened since `since`, else the
    changed fragments out of band."""
    since = _since(request.GET.get("since") or "0")
    if since is None:
        return HttpResponse(
            "'since' must be an event number (0 or more).",
            status=400,
            content_type="text/plain; charset=utf-8",
        )
    incident = _incident(pk)
    if not incident.events.filter(seq__gt=since).exists():
        return HttpResponse(status=204)
    return _after_change(request, incident)


# --- running commands ---------------------------------------------------------------------


def _wait_until_done(execution_id: int, seconds: float) -> None:
    """Fast probes finish in milliseconds: answer the click with the result itself
    rather than a spinner (the fragment keeps polling if it is slower)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            state = StepExecution.objects.filter(pk=execution_id).values_list(
                "state", flat=True
            )
            if state and state[0] not in StepExecution.IN_FLIGHT:
                return
        except (OperationalError, InterfaceError):
            # The run is committed; the answer is drawn on a new connection.
            connection.close()
            return
        time.sleep(0.01)


def _refused(
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
        return _after_change(request, incident, error=message, status=status)
    response = render(
        request,
        "incidents/partials/run_error.html",
        {"command": command, "message": message},
        status=status,
    )
    response["X-Console-Explained"] = "1"  # console.js adds no generic text
    return response


def _command_request(
    request: HttpRequest, pk: int, command_id: int
) -> tuple[Incident, Command, int | None, dict[str, str]]:
    """The incident, its command (404 if not of its playbook), the step number and
    the submitted parameters, once the person's right to run it is checked."""
    incident = _incident(pk)
    command = get_object_or_404(
        Command, pk=command_id, playbook_id=incident.playbook_id
    )
    access.require(request, access.run_permission(command), incident)
    step = command.step.number if command.step else None
    params = {
        name: request.POST.get(f"param-{name}", "") for name in command.parameters
    }
    return incident, command, step, params


@permission_required(access.VIEW_INCIDENTS)
@require_POST
def command_run(request: HttpRequest, pk: int, command_id: int) -> HttpResponse:
    incident, command, step, params = _command_request(request, pk, command_id)
    try:
        result = services.request_run(
            incident=incident,
            command=command,
            params=params,
            confirmation=request.POST.get("confirmation", ""),
            preview=request.POST.get("preview", ""),
            break_glass_reason=request.POST.get("break_glass_reason", ""),
            # The break-glass button, pressed with its reason left empty, must
            # not quietly file an ordinary approval request instead.
            break_glass=request.POST.get("mode") == "break_glass",
            request_key=request.POST.get("request_key", ""),
            actor=Actor.from_request(request),
        )
    except services.RunRefused as exc:
        return _refused(request, incident, command, str(exc), 400)
    if result.created:
        _wait_until_done(result.execution.pk, settings.RUN_WAIT_SECONDS)
    return _after_change(request, incident, step=step, command=command)


@permission_required(access.VIEW_INCIDENTS)
@require_POST
def command_preview(request: HttpRequest, pk: int, command_id: int) -> HttpResponse:
    """An action's blast radius, and the confirmation form bound to it."""
    incident, command, step, params = _command_request(request, pk, command_id)
    try:
        shown = services.preview_action(
            incident=incident,
            command=command,
            params=params,
            actor=Actor.from_request(request),
        )
    except services.RunRefused as exc:
        return _refused(request, incident, command, str(exc), 400)
    preview_context = {
        "command_id": command.pk,
        "result": shown.result,
        "token": shown.token,
        "params": shown.params,
    }
    if not request.htmx:
        # Without JavaScript the preview and its confirmation form are a page of
        # their own (the checklist is shared, cached HTML; a preview is not).
        context = _base_context(request, incident)
        context.update(command=command, preview=preview_context, runs_by_command={})
        response = render(request, "incidents/command_preview.html", context)
        response.content = personalise(response.content.decode(), request)
        return response
    return _after_change(
        request, incident, step=step, command=command, preview=preview_context
    )


@permission_required(access.VIEW_INCIDENTS)
@require_POST
def execution_decide(request: HttpRequest, pk: int, execution_id: int) -> HttpResponse:
    """A second person approves or rejects an action waiting for four eyes."""
    incident = _incident(pk)
    execution = get_object_or_404(
        StepExecution.objects.select_related(
            "command__playbook", "requested_by", "step"
        ),
        pk=execution_id,
        incident_id=pk,
    )
    if execution.command is None:
        raise Http404
    if not access.can_approve(request.user, execution):
        mine = execution.requested_by_id == request.user.pk
        why = (
            "the requester cannot approve"
            if mine
            else "no approve_actions on this playbook"
        )
        message = (
            "Four eyes: someone else must approve your request."
            if mine
            else "You need the 'approve_actions' permission on this playbook."
        )
        try:
            access.deny(request, access.APPROVE_ACTIONS, incident, why=why)
        except PermissionDenied:
            if not request.htmx:
                raise PermissionDenied(message) from None
            return _refused(request, incident, execution.command, message, 403)
    step = execution.step.number if execution.step else None
    try:
        services.decide_approval(
            execution=execution,
            approve=request.POST.get("decision") == "approve",
            reason=request.POST.get("reason", ""),
            actor=Actor.from_request(request),
        )
    except services.RunRefused as exc:
        return _refused(request, incident, execution.command, str(exc), 409)
    return _after_change(request, incident, step=step, command=execution.command)


@permission_required(access.VIEW_INCIDENTS)
@require_GET
def approval_queue(request: HttpRequest) -> HttpResponse:
    """Requests waiting for this person's second pair of eyes (none on resolved
    incidents: approving them is refused)."""
    waiting = list(
        StepExecution.objects.filter(state=StepExecution.State.AWAITING_APPROVAL)
        .exclude(incident__status=Incident.Status.RESOLVED)
        .select_related("command__playbook", "incident", "step", "requested_by")
        .order_by("created_at")
    )
    mine = [e for e in waiting if access.can_approve(request.user, e)]
    others = [e for e in waiting if e not in mine]
    return render(request, "incidents/approvals.html", {"mine": mine, "others": others})


@permission_required(access.VIEW_PLAYBOOKS)
@require_GET
def playbook_access(request: HttpRequest, slug: str) -> HttpResponse:
    """Every person and what they may do with this playbook."""
    playbook = get_object_or_404(Playbook.objects.current(), slug=slug)
    people = []
    for person in get_user_model().objects.filter(is_active=True).order_by("username"):
        rights = access.permissions_for(person, playbook)
        people.append((person, rights, access.grant_sources(person, playbook)))
    context = {"playbook": playbook, "people": people}
    return render(request, "incidents/playbook_access.html", context)


@permission_required(access.VIEW_INCIDENTS)
@require_GET
def execution_detail(request: HttpRequest, pk: int, execution_id: int) -> HttpResponse:
    """One run, polled while it is queued or running; 286 stops the polling."""
    execution = get_object_or_404(
        StepExecution.objects.select_related("requested_by"),
        pk=execution_id,
        incident_id=pk,
    )
    response = render(
        request, "incidents/partials/execution.html", {"e": execution, "open": True}
    )
    if execution.is_terminal:
        response.status_code = 286
    return response


@permission_required(access.VIEW_PLAYBOOKS)
@require_GET
def target_status(request: HttpRequest) -> HttpResponse:
    """Which TARGET_* variables and hosts each playbook needs, and whether each is
    set on this console (values are never shown)."""
    hosts_mapped = targets.host_map()
    rows = []
    for playbook in (
        Playbook.objects.current().prefetch_related("commands").order_by("number")
    ):
        needed: dict[str, bool] = {}
        hosts: dict[str, bool] = {}
        for command in playbook.commands.all():
            if not command.is_runnable:
                continue
            for name in command.variables + [command.spec.get("target", "")]:
                if name:
                    needed[targets.PREFIX + name] = targets.value(name) is not None
            if command.executor == "http" and command.spec.get("host"):
                hosts[command.spec["host"]] = (
                    command.spec["host"].lower() in hosts_mapped
                )
        rows.append((playbook, sorted(needed.items()), sorted(hosts.items())))
    return render(request, "incidents/targets.html", {"rows": rows})


# --- exports ------------------------------------------------------------------------------


@permission_required(access.EXPORT_INCIDENTS)
@require_GET
def export_postmortem(request: HttpRequest, pk: int) -> HttpResponse:
    return exports.response(request, _incident(pk), "postmortem.md")


@permission_required(access.EXPORT_INCIDENTS)
@require_GET
def export_timeline_json(request: HttpRequest, pk: int) -> HttpResponse:
    return exports.response(request, _incident(pk), "timeline.json")


@permission_required(access.EXPORT_INCIDENTS)
@require_GET
def export_timeline_csv(request: HttpRequest, pk: int) -> HttpResponse:
    return exports.response(request, _incident(pk), "timeline.csv")


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Incidents for those who may see them, else the playbooks."""
    if access.can(request.user, access.VIEW_INCIDENTS):
        return HttpResponseRedirect(reverse("incidents:incident_list"))
    return HttpResponseRedirect(reverse("incidents:playbook_list"))
