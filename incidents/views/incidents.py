"""Incidents: the list, opening one, the checklist page and its changes, the
exports."""

from __future__ import annotations

import uuid

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
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
    checklist_fragments,
    with_token,
)
from ..models import Incident, Playbook
from .common import (
    after_change,
    base_context,
    load_incident,
    poll_lookup,
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
        if form.cleaned_data["drill"]:
            incidents = incidents.filter(drill=form.cleaned_data["drill"] == "yes")
    filter_error = ""
    if form.is_bound and not form.is_valid():
        # Say so rather than quietly showing everything as if it had matched.
        filter_error = "That filter is not valid: " + "; ".join(
            f"{field}: {' '.join(errors)}" for field, errors in form.errors.items()
        )
        incidents = incidents.none()
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


@permission_required(access.VIEW_INCIDENTS)
@require_GET
def incident_detail(request: HttpRequest, pk: int) -> HttpResponse:
    incident = load_incident(pk)
    context = base_context(request, incident)
    fragments = checklist_fragments(incident, context["can"], request.user.pk)
    context.update(
        head=fragments.head,
        main=with_token(fragments.main, request),
        side=with_token(fragments.side, request),
    )
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


@login_required
def incident_changes(request: HttpRequest, pk: int) -> HttpResponse:
    """Polled every 2 s by every open tab: 204 when nothing happened since
    `since`, else the changed fragments out of band. An idle poll is one query
    after the session and the user (poll_lookup), the permission answered from
    memory under the grants counter that query read."""
    since = since_number(request.GET.get("since") or "0")
    if request.method != "GET" or since is None:
        access.require(request, access.VIEW_INCIDENTS)  # refused first, as elsewhere
        if request.method != "GET":
            return HttpResponseNotAllowed(["GET"])
        return HttpResponse(
            "'since' must be an event number (0 or more).",
            status=400,
            content_type="text/plain; charset=utf-8",
        )
    version, exists, changed = poll_lookup(pk, since)
    if request.user.is_active:
        access.remember_grants(request.user, version)
    access.require(request, access.VIEW_INCIDENTS)
    if not exists:
        raise Http404("No such incident.")
    if not changed:
        return HttpResponse(status=204)
    return after_change(request, load_incident(pk))


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
