"""Four eyes: deciding a request and the queue of requests waiting for a person."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET, require_POST

from .. import access, services
from ..access import permission_required
from ..actors import Actor
from ..models import Incident, StepExecution
from .common import after_change, load_incident, refused


@permission_required(access.VIEW_INCIDENTS)
@require_POST
def execution_decide(request: HttpRequest, pk: int, execution_id: int) -> HttpResponse:
    """A second person approves or rejects an action waiting for four eyes."""
    incident = load_incident(pk)
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
            return refused(request, incident, execution.command, message, 403)
    step = execution.step.number if execution.step else None
    try:
        services.decide_approval(
            execution=execution,
            approve=request.POST.get("decision") == "approve",
            reason=request.POST.get("reason", ""),
            actor=Actor.from_request(request),
        )
    except services.RunRefused as exc:
        return refused(request, incident, execution.command, str(exc), 409)
    return after_change(request, incident, step=step, command=execution.command)


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
