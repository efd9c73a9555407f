"""The API's operations. Each reads and checks as its page does: the same
loaders, the same forms, `access.require` with the same permission, then the same
service with the token's owner as the actor. Nothing here decides who may do
what on its own, so the API can never allow what the pages refuse (four eyes
included: an action needs its preview, its word and, where the runbook says so,
a second person's approval, exactly as on the page)."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from ninja import Query, Router, Schema, Status

from alerts.models import Alert
from incidents import access, exports, services
from incidents.forms import (
    CommanderForm,
    IncidentFilterForm,
    NoteForm,
    OpenIncidentForm,
    StatusForm,
    TickForm,
)
from incidents.models import (
    Command,
    Incident,
    Playbook,
    StepExecution,
    step_state,
)
from incidents.services import approvals
from incidents.views.approvals import DECISIONS, approval_refusal
from incidents.views.common import load_incident
from incidents.views.incidents import INCIDENTS_PER_PAGE, incidents_matching, paginate
from probes.commands import confirm_word

from . import schemas as s
from .auth import actor, writing
from .errors import Refused

router = Router()
ERRORS = {code: s.Error for code in (400, 401, 403, 404, 409, 429)}


def valid(form: forms.Form) -> dict:
    """The page's form, fed the JSON body: its cleaned data, or a 400 naming each
    field and its problem."""
    if form.is_valid():
        return form.cleaned_data
    fields = {name: [str(m) for m in errors] for name, errors in form.errors.items()}
    listed = "; ".join(f"{name}: {' '.join(m)}" for name, m in fields.items())
    raise Refused(400, "invalid", f"The request is not valid: {listed}", fields=fields)


# --- playbooks ---------------------------------------------------------------------


def command_out(command: Command) -> dict:
    return {
        "id": command.pk,
        "step": command.step.number if command.step_id else None,
        "text": command.text,
        "kind": command.kind,
        "executor": command.executor,
        "parameters": list(command.parameters),
        "requires_approval": command.requires_approval,
        "runnable": command.is_runnable,
    }


def steps_out(playbook: Playbook, states: dict[int, str] | None = None) -> list[dict]:
    commands = list(
        playbook.commands.select_related("step").order_by("step__number", "line")
    )
    return [
        {
            "number": step.number,
            "title": step.title,
            "state": states.get(step.pk) if states is not None else None,
            "commands": [command_out(c) for c in commands if c.step_id == step.pk],
        }
        for step in playbook.steps.order_by("number")
    ]


def playbook_summary(playbook: Playbook) -> dict:
    return {
        "number": playbook.number,
        "slug": playbook.slug,
        "title": playbook.title,
        "severity": playbook.severity,
        "alerts": list(playbook.alerts),
        "runbook_revision": playbook.runbook.revision,
    }


@router.get(
    "/playbooks", response={200: list[s.PlaybookSummary], **ERRORS}, tags=["playbooks"]
)
def list_playbooks(request: HttpRequest) -> list[dict]:
    """The current runbook's playbooks, in order."""
    access.require(request, access.VIEW_PLAYBOOKS)
    current = Playbook.objects.current().select_related("runbook").order_by("number")
    return [playbook_summary(p) for p in current]


@router.get(
    "/playbooks/{slug}", response={200: s.PlaybookOut, **ERRORS}, tags=["playbooks"]
)
def read_playbook(request: HttpRequest, slug: str) -> dict:
    """One playbook: its context, Diagnosis, steps and their commands (ids to run)."""
    access.require(request, access.VIEW_PLAYBOOKS)
    playbook = get_object_or_404(
        Playbook.objects.current().select_related("runbook"), slug=slug
    )
    diagnosis = playbook.commands.filter(step__isnull=True).order_by("line")
    return {
        **playbook_summary(playbook),
        "alert_condition": playbook.alert_condition,
        "context": [
            {"title": str(c.get("title", "")), "markdown": str(c.get("markdown", ""))}
            for c in playbook.context or []
        ],
        "diagnosis": [command_out(c) for c in diagnosis],
        "steps": steps_out(playbook),
    }


def incident_for(request: HttpRequest, pk: int, perm: str = access.VIEW_INCIDENTS):  # noqa: ANN201
    """As the pages: the right to view incidents first (so an id tells nothing to
    someone without it), then the incident (404), then `perm` on it (a grant on
    its playbook counts)."""
    access.require(request, access.VIEW_INCIDENTS)
    incident = load_incident(pk)
    if perm != access.VIEW_INCIDENTS:
        access.require(request, perm, incident)
    return incident


# --- incidents ---------------------------------------------------------------------


def incident_summary(request: HttpRequest, incident: Incident) -> dict:
    return {
        "id": incident.pk,
        "title": incident.title,
        "status": incident.status,
        "severity": incident.severity,
        "drill": incident.drill,
        "playbook": incident.playbook.slug,
        "commander": incident.commander.get_username() if incident.commander else None,
        "opened_by": incident.opened_by.get_username() if incident.opened_by else None,
        "opened_at": incident.opened_at,
        "acknowledged_at": incident.acknowledged_at,
        "mitigated_at": incident.mitigated_at,
        "resolved_at": incident.resolved_at,
        "url": request.build_absolute_uri(incident.get_absolute_url()),
    }


def incident_out(request: HttpRequest, incident: Incident) -> dict:
    by_step: dict[int, list[StepExecution]] = {}
    for tick in incident.executions.filter(state__in=StepExecution.TICKS):
        by_step.setdefault(tick.step_id, []).append(tick)
    states = {
        step.pk: step_state(by_step.get(step.pk, []))[0]
        for step in incident.playbook.steps.all()
    }
    return {
        **incident_summary(request, incident),
        "allowed_statuses": incident.allowed_statuses(),
        "steps": steps_out(incident.playbook, states),
    }


class IncidentFilter(Schema):
    status: str = ""
    severity: str = ""
    playbook: str = ""
    drill: str = ""
    page: int = 1


@router.get("/incidents", response={200: s.IncidentPage, **ERRORS}, tags=["incidents"])
def list_incidents(request: HttpRequest, filters: Query[IncidentFilter]) -> dict:
    """Active first, newest first, 50 a page; the list page's filters
    (status: active or a status; severity; playbook slug; drill: yes or no)."""
    access.require(request, access.VIEW_INCIDENTS)
    wanted = filters.dict()
    number = wanted.pop("page")
    if number < 1:
        raise Refused(400, "invalid", "'page' must be 1 or more.", fields={"page": []})
    form = IncidentFilterForm({k: v for k, v in wanted.items() if v})
    incidents, problem = incidents_matching(form)
    if problem:
        valid(form)  # names the fields
    page = paginate(incidents, number, INCIDENTS_PER_PAGE)
    return {
        "count": page.paginator.count,
        "page": page.number,
        "pages": page.paginator.num_pages,
        "results": [incident_summary(request, i) for i in page.object_list],
    }


@router.post("/incidents", response={201: s.IncidentOut, **ERRORS}, tags=["incidents"])
def open_incident(request: HttpRequest, data: s.OpenIn) -> Status:
    """Open an incident on a current playbook. The opener commands it when their
    role may command, as on the page."""
    writing(request)
    access.require(request, access.OPEN_INCIDENTS)
    cleaned = valid(OpenIncidentForm(data.dict()))
    incident = services.open_incident(
        playbook=cleaned["playbook"],
        title=cleaned["title"],
        actor=actor(request),
        request_key=cleaned["request_key"],
    )
    return Status(201, incident_out(request, load_incident(incident.pk)))


@router.get(
    "/incidents/{int:pk}", response={200: s.IncidentOut, **ERRORS}, tags=["incidents"]
)
def read_incident(request: HttpRequest, pk: int) -> dict:
    incident = incident_for(request, pk)
    return incident_out(request, incident)


@router.post(
    "/incidents/{int:pk}/status",
    response={200: s.IncidentOut, **ERRORS},
    tags=["incidents"],
)
def change_status(request: HttpRequest, pk: int, data: s.StatusIn) -> dict:
    """Acknowledge, mitigate, resolve or reopen (a conflict if the status does
    not allow it)."""
    writing(request)
    incident = incident_for(request, pk, access.COMMAND_INCIDENTS)
    cleaned = valid(StatusForm(data.dict()))
    services.change_status(
        incident=incident, to=cleaned["status"], actor=actor(request)
    )
    return incident_out(request, load_incident(pk))


@router.post(
    "/incidents/{int:pk}/commander",
    response={200: s.IncidentOut, **ERRORS},
    tags=["incidents"],
)
def change_commander(request: HttpRequest, pk: int, data: s.CommanderIn) -> dict:
    """Hand command to someone who may command, or to nobody (null)."""
    writing(request)
    incident = incident_for(request, pk, access.COMMAND_INCIDENTS)
    chosen = ""
    if data.commander is not None:
        # A NUL cannot be in a username (and PostgreSQL refuses it in a query).
        name = data.commander if "\x00" not in data.commander else ""
        found = get_user_model().objects.filter(username=name[:150]).first()
        # An unknown name gets the form's own refusal, as a person who cannot.
        chosen = str(found.pk) if found else "0"
    cleaned = valid(CommanderForm({"commander": chosen}))
    services.change_commander(
        incident=incident, commander=cleaned["commander"], actor=actor(request)
    )
    return incident_out(request, load_incident(pk))


@router.post(
    "/incidents/{int:pk}/steps/{int:number}/tick",
    response={200: s.IncidentOut, **ERRORS},
    tags=["incidents"],
)
def tick_step(request: HttpRequest, pk: int, number: int, data: s.TickIn) -> dict:
    """Mark a step done, skipped (with a reason) or reopened. With `expected`, a
    tick someone else made meanwhile is a conflict and nothing is written."""
    writing(request)
    incident = incident_for(request, pk, access.TICK_STEPS)
    step = get_object_or_404(incident.playbook.steps, number=number)
    given = {k: v for k, v in data.dict().items() if v is not None}
    cleaned = valid(TickForm(given))
    result = services.tick_step(
        incident=incident,
        step=step,
        state=cleaned["state"],
        expected=cleaned["expected"],
        reason=cleaned["reason"] or "",
        actor=actor(request),
    )
    if result.conflict:
        raise Refused(409, "conflict", result.conflict)
    return incident_out(request, load_incident(pk))


@router.post(
    "/incidents/{int:pk}/notes", response={201: s.NoteOut, **ERRORS}, tags=["incidents"]
)
def add_note(request: HttpRequest, pk: int, data: s.NoteIn) -> Status:
    writing(request)
    incident = incident_for(request, pk, access.ADD_NOTES)
    given = {k: v for k, v in data.dict().items() if v is not None}
    cleaned = valid(NoteForm(given))
    step = None
    if cleaned["step"]:
        step = get_object_or_404(incident.playbook.steps, number=cleaned["step"])
    event = services.add_note(
        incident=incident,
        text=cleaned["text"],
        step=step,
        actor=actor(request),
        request_key=cleaned["request_key"],
    )
    return Status(
        201,
        {
            "seq": event.seq,
            "text": event.data.get("text", ""),
            "step": event.data.get("step"),
            "created_at": event.created_at,
        },
    )


@router.get("/incidents/{int:pk}/timeline", tags=["incidents"])
def read_timeline(request: HttpRequest, pk: int) -> HttpResponse:
    """The incident and every event, as the timeline.json export (documented in
    the README), streamed. Needs the export permission, as the export does."""
    incident = incident_for(request, pk, access.EXPORT_INCIDENTS)
    return exports.response(request, incident, "timeline.json")


# --- runs --------------------------------------------------------------------------


def execution_out(e: StepExecution) -> dict:
    return {
        "id": e.pk,
        "incident": e.incident_id,
        "step": e.step.number if e.step_id else None,
        "command": e.command_id,
        "command_text": e.command_text,
        "state": e.state,
        "parameters": {str(k): str(v) for k, v in (e.parameters or {}).items()},
        "requested_by": e.requester_name,
        "approved_by": e.approved_by.get_username() if e.approved_by else None,
        "break_glass": e.break_glass,
        "summary": e.summary,
        "output": e.output,
        "result": e.result or {},
        "created_at": e.created_at,
        "started_at": e.started_at,
        "finished_at": e.finished_at,
        "approval_expires_at": e.approval_expires_at,
    }


EXECUTIONS = StepExecution.objects.select_related("step", "requested_by", "approved_by")


@router.get(
    "/incidents/{int:pk}/executions",
    response={200: list[s.ExecutionOut], **ERRORS},
    tags=["runs"],
)
def list_executions(request: HttpRequest, pk: int) -> list[dict]:
    """The incident's runs (not ticks), newest first, at most 200."""
    incident = incident_for(request, pk)
    runs = EXECUTIONS.filter(incident=incident, command__isnull=False)
    return [execution_out(e) for e in runs.order_by("-created_at", "-pk")[:200]]


@router.get(
    "/incidents/{int:pk}/executions/{int:execution_id}",
    response={200: s.ExecutionOut, **ERRORS},
    tags=["runs"],
)
def read_execution(request: HttpRequest, pk: int, execution_id: int) -> dict:
    """One run: poll it until `finished_at` is set."""
    incident = incident_for(request, pk)
    return execution_out(
        get_object_or_404(
            EXECUTIONS, pk=execution_id, incident=incident, command__isnull=False
        )
    )


def command_of(request: HttpRequest, pk: int, command_id: int) -> tuple:
    """As the page's Run and Preview: the incident, its playbook's command (404
    otherwise), once the right to run that kind of command is checked."""
    incident = incident_for(request, pk)
    command = get_object_or_404(
        Command, pk=command_id, playbook_id=incident.playbook_id
    )
    access.require(request, access.run_permission(command), incident)
    return incident, command


@router.post(
    "/incidents/{int:pk}/commands/{int:command_id}/preview",
    response={200: s.PreviewOut, **ERRORS},
    tags=["runs"],
)
def preview_action(
    request: HttpRequest, pk: int, command_id: int, data: s.PreviewIn
) -> dict:
    """An action's blast radius, and the token its run must carry back (single
    use, bound to you, this command and these parameters)."""
    writing(request)
    incident, command = command_of(request, pk, command_id)
    if command.kind != Command.Kind.ACTION:
        raise Refused(
            409, "refused", "Only actions are previewed; run probes directly."
        )
    shown = services.preview_action(
        incident=incident, command=command, params=data.parameters, actor=actor(request)
    )
    result = shown.result
    return {
        "headline": result.headline,
        "detail": result.detail,
        "facts": list(result.facts),
        "rows": result.rows,
        "nothing": result.nothing or "",
        "preview": shown.token,
        "confirmation": confirm_word(command),
        "parameters": shown.params,
    }


@router.post(
    "/incidents/{int:pk}/commands/{int:command_id}/runs",
    response={202: s.RunOut, **ERRORS},
    tags=["runs"],
)
def request_run(
    request: HttpRequest, pk: int, command_id: int, data: s.RunIn
) -> Status:
    """Queue a run. A probe runs at once. An action needs `preview` (from the
    preview call) and `confirmation` (its word); if the runbook says it needs
    approval, it waits (`awaiting_approval`) for a second person on /approvals/,
    unless a commander breaks glass with a reason. Poll the execution."""
    writing(request)
    incident, command = command_of(request, pk, command_id)
    result = services.request_run(
        incident=incident,
        command=command,
        params=data.parameters,
        confirmation=data.confirmation,
        # Always a string: None would skip the preview check (internal callers).
        preview=data.preview or "",
        break_glass_reason=data.break_glass_reason,
        break_glass=data.break_glass,
        request_key=data.request_key,
        confirm_heavy=data.confirm_heavy,
        actor=actor(request),
    )
    execution = EXECUTIONS.get(pk=result.execution.pk)
    return Status(
        202, {"created": result.created, "execution": execution_out(execution)}
    )


@router.get("/approvals", response={200: list[s.ExecutionOut], **ERRORS}, tags=["runs"])
def list_approvals(request: HttpRequest) -> list[dict]:
    """The requests waiting for you (never your own), oldest first."""
    access.require(request, access.VIEW_INCIDENTS)
    found = approvals.decidable_by(request.user)
    if found is None:
        return []
    return [execution_out(e) for e in EXECUTIONS.filter(pk__in=found.values("pk"))]


@router.post(
    "/incidents/{int:pk}/executions/{int:execution_id}/decision",
    response={200: s.ExecutionOut, **ERRORS},
    tags=["runs"],
)
def decide(
    request: HttpRequest, pk: int, execution_id: int, data: s.DecisionIn
) -> dict:
    """A second person approves or rejects an action waiting for four eyes, as on
    /approvals/: never the requester, only with approve_actions on the playbook."""
    writing(request)
    incident = incident_for(request, pk)
    execution = get_object_or_404(
        StepExecution.objects.select_related(
            "command__playbook", "incident", "step", "requested_by"
        ).filter(command__isnull=False),
        pk=execution_id,
        incident=incident,
    )
    if data.decision not in DECISIONS:
        raise Refused(
            400,
            "invalid",
            "'decision' is approve or reject.",
            fields={"decision": ["approve or reject"]},
        )
    refusal = approval_refusal(request, execution)  # audited there
    if refusal:
        raise Refused(403, "forbidden", refusal)
    decided = services.decide_approval(
        execution=execution,
        approve=DECISIONS[data.decision],
        reason=data.reason,
        actor=actor(request),
    )
    return execution_out(EXECUTIONS.get(pk=decided.pk))


# --- alerts ------------------------------------------------------------------------


@router.get("/alerts", response={200: list[s.AlertOut], **ERRORS}, tags=["alerts"])
def list_alerts(request: HttpRequest, status: str = "firing") -> list[dict]:
    """Alerts as /alerts/ lists them: firing (every one) or resolved (the latest
    100)."""
    access.require(request, access.VIEW_INCIDENTS)
    rows = Alert.objects.select_related("group__source")
    if status == "firing":
        rows = rows.filter(status=Alert.Status.FIRING).order_by("-starts_at")[:500]
    elif status == "resolved":
        rows = rows.filter(status=Alert.Status.RESOLVED).order_by("-last_seen", "-id")[
            :100
        ]
    else:
        raise Refused(
            400,
            "invalid",
            "'status' is firing or resolved.",
            fields={"status": ["firing or resolved"]},
        )
    return [
        {
            "id": a.pk,
            "name": a.name,
            "status": a.status,
            "severity": a.severity,
            "labels": {str(k): str(v) for k, v in (a.labels or {}).items()},
            "annotations": {str(k): str(v) for k, v in (a.annotations or {}).items()},
            "starts_at": a.starts_at,
            "ends_at": a.ends_at,
            "source": a.group.source.name,
            "incident": a.group.incident_id,
        }
        for a in rows
    ]
