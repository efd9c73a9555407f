"""Four eyes: deciding a request (on its step, or in place on /approvals/) and the
queue of requests waiting for a person. Every decision goes through
services.decide_approval, after the same permission check."""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from .. import access, services
from ..access import permission_required
from ..actors import Actor
from ..models import StepExecution
from ..services import approvals
from .common import after_change, load_incident, refused

DECISIONS = {"approve": True, "reject": False}


def approval_refusal(request: HttpRequest, execution: StepExecution) -> str:
    """Why this person may not decide this request ("" if they may); a refusal
    is audited as a denial."""
    if access.can_approve(request.user, execution):
        return ""
    mine = execution.requested_by_id == request.user.pk
    why = (
        "the requester cannot approve"
        if mine
        else "no approve_actions on this playbook"
    )
    # Audited here; the caller answers with the reason, in the place it belongs.
    with suppress(PermissionDenied):
        access.deny(request, access.APPROVE_ACTIONS, execution.incident, why=why)
    if mine:
        return "Four eyes: someone else must approve your request."
    return "You need the 'approve_actions' permission on this playbook."


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
    execution.incident = incident
    message = approval_refusal(request, execution)
    if message:
        if not request.htmx:
            raise PermissionDenied(message)
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


# --- the queue ----------------------------------------------------------------------


@dataclass
class Row:
    """One request as /approvals/ shows it, and what this person may do with it."""

    execution: StepExecution
    preview: approvals.ShownPreview | None
    approvers: str  # who may decide it, in words
    may_decide: bool
    error: str = ""
    reason: str = ""  # what the person typed, kept when the decision was refused
    decided: str = ""  # after a decision from this page: what happened


def _queue_rows(request: HttpRequest) -> list[Row]:
    """Every waiting request, in queries that do not grow with their number: the
    requests, their previews (two), and the approvers once per playbook."""
    waiting = list(
        approvals.waiting()
        .select_related("command__playbook", "incident", "step", "requested_by")
        .order_by("approval_expires_at", "created_at")
    )
    previews = approvals.previews_of(waiting)
    playbooks = {}
    rows = []
    for e in waiting:
        # One playbook object per playbook, so its approvers are read once.
        playbook = playbooks.setdefault(e.command.playbook_id, e.command.playbook)
        rows.append(
            Row(
                execution=e,
                preview=previews.get(e.pk),
                approvers=approvals.approver_names(e, playbook),
                may_decide=access.can_approve(request.user, e),
            )
        )
    return rows


def _queue_page(
    request: HttpRequest, rows: list[Row], status: int = 200
) -> HttpResponse:
    return render(
        request,
        "incidents/approvals.html",
        {
            "mine": [r for r in rows if r.may_decide],
            "others": [r for r in rows if not r.may_decide],
        },
        status=status,
    )


@permission_required(access.VIEW_INCIDENTS)
@require_GET
def approval_queue(request: HttpRequest) -> HttpResponse:
    """Requests waiting for this person's second pair of eyes, decided in place;
    below, the ones waiting for someone else (their own, or playbooks they may
    not approve) with who may. None on resolved incidents or past their expiry:
    deciding those is refused."""
    return _queue_page(request, _queue_rows(request))


@permission_required(access.VIEW_INCIDENTS)
@require_POST
def approval_decide(request: HttpRequest, execution_id: int) -> HttpResponse:
    """Approve (it runs at once) or reject (with a reason) from /approvals/. With
    HTMX the answer is that request's row: decided, or the refusal in it with the
    typed reason kept. Without JavaScript: back to /approvals/ with a message, or
    the page again with the refusal in the row."""
    execution = get_object_or_404(
        StepExecution.objects.select_related(
            "command__playbook", "incident", "step", "requested_by"
        ).filter(command__isnull=False),
        pk=execution_id,
    )
    reason = request.POST.get("reason", "")
    decision = request.POST.get("decision", "")
    status, error = 200, ""
    if decision not in DECISIONS:
        status, error = 400, "Choose Approve or Reject."
    else:
        error = approval_refusal(request, execution)
        status = 403 if error else 200
    if not error:
        try:
            execution = services.decide_approval(
                execution=execution,
                approve=DECISIONS[decision],
                reason=reason,
                actor=Actor.from_request(request),
            )
        except services.RunRefused as exc:
            status, error = 409, str(exc)
    if error:
        return _refused_row(request, execution, error, reason, status)
    decided = _decided(execution)
    if not request.htmx:
        messages.success(request, decided)
        return HttpResponseRedirect(reverse("incidents:approval_queue"))
    # The row decided in place, and the header's badge counting one fewer.
    return render(
        request,
        "incidents/partials/approval_row.html",
        {"row": _row(request, execution, decided=decided), "badge": True},
    )


def _row(request: HttpRequest, execution: StepExecution, **extra: object) -> Row:
    return Row(
        execution=execution,
        preview=approvals.previews_of([execution]).get(execution.pk),
        approvers=approvals.approver_names(execution),
        may_decide=access.can_approve(request.user, execution),
        **extra,
    )


def _refused_row(
    request: HttpRequest,
    execution: StepExecution,
    error: str,
    reason: str,
    status: int,
) -> HttpResponse:
    if request.htmx:
        response = render(
            request,
            "incidents/partials/approval_row.html",
            {"row": _row(request, execution, error=error, reason=reason)},
            status=status,
        )
        response["X-Console-Explained"] = "1"  # console.js adds no generic text
        return response
    rows = _queue_rows(request)
    found = False
    for row in rows:
        if row.execution.pk == execution.pk:
            row.error, row.reason, found = error, reason, True
    if not found:  # no longer waiting: the refusal says what became of it
        messages.error(request, error)
    return _queue_page(request, rows, status=status)


def _decided(execution: StepExecution) -> str:
    where = f"#{execution.incident_id} {execution.incident.title}"
    if execution.state == StepExecution.State.REJECTED:
        return f"Rejected: nothing runs ({where})."
    return f"Approved: it runs now ({where})."
