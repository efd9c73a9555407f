"""Incidents: the list, opening one, the checklist page and its changes, the
exports."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.cache import caches
from django.core.paginator import Paginator
from django.db.models import BooleanField, ExpressionWrapper, Q, QuerySet
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.shortcuts import get_object_or_404, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from .. import access, exports, services
from ..access import permission_required
from ..actors import Actor
from ..forms import (
    CommanderForm,
    IncidentFilterForm,
    NoteForm,
    OpenIncidentForm,
    StatusForm,
    TickForm,
)
from ..fragments import (
    CSRF_SENTINEL,
    ELAPSED_SENTINEL,
    checklist_fragments,
    fragments_key,
    personalise,
    with_token,
)
from ..fragments import TIMEOUT as FRAGMENTS_TIMEOUT
from ..models import Incident, Playbook
from ..templatetags.console import duration
from .common import (
    PAGE_COLUMNS,
    POLL_COLUMNS,
    after_change,
    base_context,
    commander_choices,
    load_incident,
    lookup,
    page_key,
    page_params,
    poll_params,
    since_number,
)

# A page of the incident list, and of a step's or command's runs: what a person
# reads at a glance, and a cost that does not grow with the table.
INCIDENTS_PER_PAGE = 50
RUNS_PER_PAGE = 50


def page_number(request: HttpRequest) -> int | None:
    """`?page=N` (1 when absent), or None when it is not a page number."""
    raw = request.GET.get("page") or "1"
    if len(raw) > 9 or not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
        return None
    return int(raw)


def paginate(queryset, number: int, per_page: int):  # noqa: ANN001, ANN201
    """The page asked for; past the end, the last page (a list that shrank while
    someone was reading it is not an error)."""
    paginator = Paginator(queryset, per_page)
    return paginator.page(min(number, paginator.num_pages))


def incidents_matching(form: IncidentFilterForm) -> tuple[QuerySet, str]:
    """The list's incidents for a filter, active first, newest first, and what is
    wrong with the filter ("" if nothing): the page and the API read the same."""
    # Active first, newest first (as IncidentQuerySet.active_first), written as the
    # expression migration 0018 indexes: a page reads 50 rows, not the table.
    resolved = ExpressionWrapper(
        Q(status=Incident.Status.RESOLVED), output_field=BooleanField()
    )
    incidents = Incident.objects.select_related(
        "playbook", "commander", "opened_by"
    ).order_by(resolved.asc(), "-opened_at")
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
        if form.cleaned_data["drill"]:
            incidents = incidents.filter(drill=form.cleaned_data["drill"] == "yes")
    if form.is_bound and not form.is_valid():
        # Say so rather than quietly showing everything as if it had matched.
        return incidents.none(), "That filter is not valid: " + "; ".join(
            f"{field}: {' '.join(errors)}" for field, errors in form.errors.items()
        )
    return incidents, ""


@permission_required(access.VIEW_INCIDENTS)
@require_GET
@vary_on_headers("HX-Request")
def incident_list(request: HttpRequest) -> HttpResponse:
    form = IncidentFilterForm(request.GET or None)
    incidents, filter_error = incidents_matching(form)
    number = page_number(request)
    if number is None:
        filter_error = filter_error or "'page' must be a page number (1 or more)."
        incidents, number = incidents.none(), 1
    severities = (
        Incident.objects.order_by("severity")
        .values_list("severity", flat=True)
        .distinct()
    )
    playbooks = Playbook.objects.current().values_list("slug", "number", "title")
    template = "incidents/incident_list.html" + ("#results" if request.htmx else "")
    page = paginate(incidents, number, INCIDENTS_PER_PAGE)
    return render(
        request,
        template,
        {
            "incidents": page.object_list,
            "page": page,
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


@dataclass(frozen=True)
class PageParts:
    """The checklist page as drawn for everyone with the same rights, kept until
    the incident changes (an event), an admin rebinds a command, or who may command
    changes; with sentinels for what is each request's own (CSRF token, Run keys,
    the elapsed time)."""

    pk: int
    title: str
    drill: bool
    opened_at: datetime
    ended_at: datetime | None
    last_seq: int
    head: str
    main: str
    side: str


def draw_page_parts(request: HttpRequest, pk: int) -> PageParts:
    incident = load_incident(pk)
    context = base_context(request, incident)
    fragments = checklist_fragments(incident, context["can"], request.user.pk)
    context.update(
        head=fragments.head, csrf_token=CSRF_SENTINEL, elapsed=ELAPSED_SENTINEL
    )
    return PageParts(
        pk=incident.pk,
        title=incident.title,
        drill=incident.drill,
        opened_at=incident.opened_at,
        ended_at=incident.ended_at(),
        last_seq=fragments.head.last_seq,
        # Drawn without the request, like the fragments: the edges' panels (alerts,
        # notifications) change with the incident's events, as the head does.
        head=render_to_string("incidents/partials/incident_head.html", context),
        main=fragments.main,
        side=fragments.side,
    )


def person_and(
    request: HttpRequest, columns: str, params: list[object]
) -> tuple | HttpResponse:
    """The person (one query with `columns`, see access.signed_in_with) and the
    columns' values; or, the ordinary way, Django's session and user, then the
    columns with the grants counter. A visitor not signed in is sent to sign in;
    a non-GET is refused (audited) or 405."""
    fast = (
        access.signed_in_with(request, columns, params)
        if request.method == "GET"
        else None
    )
    if fast is not None:
        return fast
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if request.method != "GET":
        access.require(request, access.VIEW_INCIDENTS)  # refused first, as elsewhere
        return HttpResponseNotAllowed(["GET"])
    version, *values = lookup(columns, params)
    if request.user.is_active:
        access.remember_grants(request.user, version)
        access.remember_session(request)
    return tuple(values)


def incident_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The checklist. Once drawn, a page costs one query (the person, the
    incident's last event, its playbook's binding version, the grants counter):
    everything else comes from memory, keyed by what it depends on, so it is
    never stale."""
    answer = person_and(request, PAGE_COLUMNS, page_params(pk))
    if isinstance(answer, HttpResponse):
        return answer
    access.require(request, access.VIEW_INCIDENTS)
    found = page_key(answer)
    if found is None:
        raise Http404("No such incident.")
    can = access.permissions_for(request.user, Playbook(pk=found.playbook_id))
    key = "page:" + fragments_key(
        pk, found.last_seq, found.binding_version, can, request.user.pk
    )
    if can["command"]:  # the commander form lists who may command
        key += f":{hash(tuple(commander_choices()))}"
    cache = caches["fragments"]
    parts = cache.get(key)
    if parts is None:
        parts = draw_page_parts(request, pk)
        cache.set(key, parts, FRAGMENTS_TIMEOUT)
    elapsed = duration((parts.ended_at or timezone.now()) - parts.opened_at)
    head = parts.head.replace(ELAPSED_SENTINEL, elapsed)
    context = {
        # The token personalise put in the fragments, for base.html's forms too
        # (each get_token masks afresh: one per answer is enough).
        "csrf_token": personalise(CSRF_SENTINEL, request),
        "incident": parts,
        "head": parts,
        "head_html": with_token(head, request),
        "main": with_token(parts.main, request),
        "side": with_token(parts.side, request),
    }
    return render(request, "incidents/incident_detail.html", context)


@permission_required(access.COMMAND_INCIDENTS)
@require_POST
def incident_status(request: HttpRequest, pk: int) -> HttpResponse:
    incident = load_incident(pk)
    form = StatusForm(request.POST)
    if not form.is_valid():
        return after_change(
            request, incident, error="Choose a status.", panel="head", status=400
        )
    try:
        services.change_status(
            incident=incident,
            to=form.cleaned_data["status"],
            actor=Actor.from_request(request),
        )
    except services.TransitionError as exc:
        return after_change(request, incident, error=str(exc), panel="head", status=409)
    return after_change(request, incident)


@permission_required(access.COMMAND_INCIDENTS)
@require_POST
def incident_commander(request: HttpRequest, pk: int) -> HttpResponse:
    incident = load_incident(pk)
    form = CommanderForm(request.POST)
    if not form.is_valid():
        return after_change(
            request,
            incident,
            error="That person cannot command.",
            panel="head",
            status=400,
        )
    services.change_commander(
        incident=incident,
        commander=form.cleaned_data["commander"],
        actor=Actor.from_request(request),
    )
    return after_change(request, incident)


@permission_required(access.TICK_STEPS)
@require_POST
def step_tick(request: HttpRequest, pk: int, number: int) -> HttpResponse:
    incident = load_incident(pk)
    step = get_object_or_404(incident.playbook.steps, number=number)
    form = TickForm(request.POST)
    if not form.is_valid():
        error = "; ".join(e for errors in form.errors.values() for e in errors)
        kept = {"reason": request.POST.get("reason", "")[:1000]}
        return after_change(
            request, incident, step=number, error=error, kept=kept, status=400
        )
    result = services.tick_step(
        incident=incident,
        step=step,
        state=form.cleaned_data["state"],
        expected=form.cleaned_data["expected"],
        reason=form.cleaned_data["reason"] or "",
        actor=Actor.from_request(request),
    )
    return after_change(request, incident, step=number, notice=result.conflict)


@permission_required(access.ADD_NOTES)
@require_POST
def note_add(request: HttpRequest, pk: int) -> HttpResponse:
    incident = load_incident(pk)
    form = NoteForm(request.POST)
    if not form.is_valid():
        error = "; ".join(e for errors in form.errors.values() for e in errors)
        if "text" in form.errors:
            error = "A note needs some text (at most 5,000 characters)."
        # The note form is not redrawn: what the person wrote stays in it.
        return after_change(request, incident, error=error, panel="note", status=400)
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
    return after_change(request, incident, step=step.number if step else None)


def incident_changes(request: HttpRequest, pk: int) -> HttpResponse:
    """Polled every 2 s by every open tab: 204 when nothing happened since
    `since`, else the changed fragments out of band. An idle poll is one query
    (the person, whether the incident has an event after `since`) and the
    permission answered from memory under the grants counter."""
    since = since_number(request.GET.get("since") or "0")
    if since is None:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        access.require(request, access.VIEW_INCIDENTS)
        return HttpResponse(
            "'since' must be an event number (0 or more).",
            status=400,
            content_type="text/plain; charset=utf-8",
        )
    answer = person_and(request, POLL_COLUMNS, poll_params(pk, since))
    if isinstance(answer, HttpResponse):
        return answer
    access.require(request, access.VIEW_INCIDENTS)
    exists, changed = answer
    if not exists:
        raise Http404("No such incident.")
    if not changed:
        return HttpResponse(status=204)
    return after_change(request, Incident(pk=pk))  # which loads it afresh


@permission_required(access.VIEW_INCIDENTS)
@require_GET
def incident_runs(request: HttpRequest, pk: int) -> HttpResponse:
    """Every tick and run of one step (`?step=N`) or one command (`?command=ID`),
    newest first, a page at a time: the checklist shows only the last few."""
    incident = get_object_or_404(Incident.objects.select_related("playbook"), pk=pk)
    executions = (
        incident.executions.select_related("requested_by", "approved_by")
        .defer("output", "result")  # a run's own page shows those
        .order_by("-created_at", "-id")
    )
    step = command = None
    wanted_step, wanted_command = request.GET.get("step"), request.GET.get("command")
    number = page_number(request)
    error = ""
    if number is None:
        error = "'page' must be a page number (1 or more)."
    elif wanted_step is not None and since_number(wanted_step) is not None:
        step = get_object_or_404(incident.playbook.steps, number=int(wanted_step))
        executions = executions.filter(step=step)
    elif wanted_command is not None and since_number(wanted_command) is not None:
        command = get_object_or_404(incident.playbook.commands, pk=int(wanted_command))
        executions = executions.filter(command=command)
    else:
        error = "Say which runs: ?step=<step number> or ?command=<command id>."
    if error:
        return HttpResponse(error, status=400, content_type="text/plain; charset=utf-8")
    page = paginate(executions, number, RUNS_PER_PAGE)
    return render(
        request,
        "incidents/incident_runs.html",
        {"incident": incident, "step": step, "command": command, "page": page},
    )


@permission_required(access.EXPORT_INCIDENTS)
@require_GET
def export_postmortem(request: HttpRequest, pk: int) -> HttpResponse:
    return exports.response(request, load_incident(pk), "postmortem.md")


@permission_required(access.EXPORT_INCIDENTS)
@require_GET
def export_timeline_json(request: HttpRequest, pk: int) -> HttpResponse:
    return exports.response(request, load_incident(pk), "timeline.json")


@permission_required(access.EXPORT_INCIDENTS)
@require_GET
def export_timeline_csv(request: HttpRequest, pk: int) -> HttpResponse:
    return exports.response(request, load_incident(pk), "timeline.csv")


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Incidents for those who may see them, else the playbooks."""
    if access.can(request.user, access.VIEW_INCIDENTS):
        return HttpResponseRedirect(reverse("incidents:incident_list"))
    return HttpResponseRedirect(reverse("incidents:playbook_list"))
