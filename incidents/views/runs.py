"""Running a command: a probe's Run, an action's preview and confirmation, and a
run's result polled until it is done."""

from __future__ import annotations

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET, require_POST

from .. import access, services, wakeup
from ..access import permission_required
from ..actors import Actor
from ..fragments import (
    personalise,
)
from ..models import Command, Incident, StepExecution
from ..results import Pickers
from .common import after_change, base_context, load_incident, refused


def _wait_until_done(execution_id: int, seconds: float) -> wakeup.Outcome:
    """Fast probes finish in milliseconds: answer the click with the result itself
    rather than a spinner. The wait sleeps until the run's NOTIFY (incidents/wakeup.py)
    and reads the row only when woken; it holds one of gunicorn's threads (gthread),
    never a whole worker process, for at most `seconds`. With the listener down it
    does not wait: the answer shows the run in flight, and the fragment's own poll
    (until its 286) brings the result."""

    def done() -> bool:
        state = list(
            StepExecution.objects.filter(pk=execution_id)
            .order_by()
            .values_list("state", flat=True)
        )
        return not state or state[0] not in StepExecution.IN_FLIGHT

    try:
        return wakeup.wait(execution_id, seconds, done)
    except (OperationalError, InterfaceError):
        # The run is committed; the answer is drawn on a new connection.
        connection.close()
        return wakeup.Outcome.NO_LISTENER


def _command_request(
    request: HttpRequest, pk: int, command_id: int
) -> tuple[Incident, Command, int | None, dict[str, str]]:
    """The incident, its command (404 if not of its playbook), the step number and
    the submitted parameters, once the person's right to run it is checked."""
    incident = load_incident(pk)
    command = get_object_or_404(
        Command, pk=command_id, playbook_id=incident.playbook_id
    )
    access.require(request, access.run_permission(command), incident)
    step = command.step.number if command.step else None
    params = {
        name: request.POST.get(f"param-{name}", "") for name in command.parameters
    }
    return incident, command, step, params


@access.signed_in_at_once
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
            # The tick under a heavy probe's warning (probes.commands.heavy_reason).
            confirm_heavy=request.POST.get("confirm_heavy") == "1",
            actor=Actor.from_request(request),
        )
    except services.RunRefused as exc:
        return refused(request, incident, command, str(exc), 400)
    if result.created:
        _wait_until_done(result.execution.pk, settings.RUN_WAIT_SECONDS)
    # A run changes no column of the incident: drawn from the one loaded above.
    return after_change(request, incident, step=step, command=command, loaded=True)


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
        return refused(request, incident, command, str(exc), 400)
    preview_context = {
        "command_id": command.pk,
        "result": shown.result,
        "token": shown.token,
        "params": shown.params,
    }
    if not request.htmx:
        # Without JavaScript the preview and its confirmation form are a page of
        # their own (the checklist is shared, cached HTML; a preview is not).
        context = base_context(request, incident)
        context.update(command=command, preview=preview_context, runs_by_command={})
        response = render(request, "incidents/command_preview.html", context)
        response.content = personalise(response.content.decode(), request)
        return response
    return after_change(
        request, incident, step=step, command=command, preview=preview_context
    )


@permission_required(access.VIEW_INCIDENTS)
@require_GET
def execution_detail(request: HttpRequest, pk: int, execution_id: int) -> HttpResponse:
    """One run, polled while it is queued or running; 286 stops the polling.
    Opened without HTMX, the run on a page of its own, with its whole output."""
    execution = get_object_or_404(
        StepExecution.objects.select_related("requested_by", "incident__playbook"),
        pk=execution_id,
        incident_id=pk,
    )
    context = {"e": execution, "open": True}
    if execution.is_terminal and execution.result:
        # The finished result's pickers, for what this person may run.
        incident = execution.incident
        context.update(
            incident=incident,
            can=access.permissions_for(request.user, incident.playbook),
            viewer_id=request.user.pk,
            pickers=Pickers.of_playbook(incident.playbook_id),
        )
    if not request.htmx:
        # Opened from a link (the post-mortem's "full output"): a page of its own.
        context.setdefault("incident", execution.incident)
        response = render(request, "incidents/execution_page.html", context)
        response.content = personalise(response.content.decode(), request)
        return response
    response = render(request, "incidents/partials/execution.html", context)
    response.content = personalise(response.content.decode(), request)
    if execution.is_terminal:
        response.status_code = 286
    return response
