"""Four eyes: a second person approves or rejects an action; unanswered requests expire."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from .. import access, audit
from ..actors import Actor
from ..models import Incident, StepExecution
from . import runs
from .runs import RunRefused, clean_reason

State = StepExecution.State
# Who may expire an approval request: the sweeper, which finds the overdue ones,
# and the console, when a person tries to decide one too late. Nobody else.
EXPIRERS = frozenset({"sweeper", "console"})
CONSOLE = Actor.system("console")


def decide_approval(
    *,
    execution: StepExecution,
    approve: bool,
    actor: Actor,
    reason: str = "",
) -> StepExecution:
    """A second person approves (the run is sent at once) or rejects a request.
    Refused for the requester, without approve_actions, after expiry, on a
    resolved incident, or when the command or its parameters changed since it
    was requested."""
    reason = clean_reason(reason)
    expires = execution.approval_expires_at
    if (
        execution.state == State.AWAITING_APPROVAL
        and expires
        and timezone.now() > expires
    ):
        # Committed on its own: the refusal below must not undo it.
        expire(execution=execution, actor=CONSOLE)
        raise RunRefused(
            f"The request expired at {expires:%H:%M:%S} UTC; ask for it again."
        )
    return _decide(execution=execution, approve=approve, actor=actor, reason=reason)


def _not_waiting(execution: StepExecution) -> str:
    """Why a request can no longer be decided, in words: who decided it and when,
    or what became of it."""
    who = execution.approved_by.get_username() if execution.approved_by else None
    when = f" at {execution.approved_at:%H:%M:%S} UTC" if execution.approved_at else ""
    state = execution.get_state_display().lower()
    if execution.state == State.REJECTED:
        return f"{who or 'Someone'} already rejected this request{when}."
    if who:
        return f"{who} already approved this request{when}; the run is {state}."
    if execution.state == State.CANCELLED:
        return f"This request was cancelled ({execution.summary or 'no reason given'})."
    return f"This request is no longer waiting for approval: the run is {state}."


@transaction.atomic
def _decide(
    *,
    execution: StepExecution,
    approve: bool,
    actor: Actor,
    reason: str = "",
) -> StepExecution:
    """decide_approval's locked part (expiry is checked again: it may have passed
    while waiting for the lock). The incident's row is locked first, as
    change_status does, so a resolve and an approval cannot cross."""
    incident = Incident.objects.select_for_update().get(pk=execution.incident_id)
    execution = (
        StepExecution.objects.select_for_update(of=("self",))
        .select_related("command__playbook", "incident", "step", "approved_by")
        .get(pk=execution.pk)
    )
    if execution.state != State.AWAITING_APPROVAL:
        raise RunRefused(_not_waiting(execution))
    by = actor.user  # a system identity has none, so it may not approve
    if by is not None and execution.requested_by_id == by.pk:
        raise RunRefused("Four eyes: someone else must approve your request.")
    if not access.can_approve(by, execution):
        raise RunRefused("You may not approve this playbook's actions.")
    step = execution.step.number if execution.step else None
    if execution.approval_expires_at and timezone.now() > execution.approval_expires_at:
        raise RunRefused(
            f"The request expired at {execution.approval_expires_at:%H:%M:%S} UTC; "
            "ask for it again."
        )
    if approve and not incident.is_active:
        raise RunRefused(
            f"The incident is {incident.get_status_display().lower()}: nothing runs on "
            "it. Reopen it, then ask for the action again."
        )
    changed = execution.command.fingerprint_changes(
        execution.fingerprint, execution.parameters
    )
    if changed:
        raise RunRefused(
            f"{changed.capitalize()} changed since it was requested; "
            "it must be requested again."
        )
    if not approve and not reason:
        raise RunRefused("Say why you reject it.")
    execution.approved_by = by
    execution.approved_at = timezone.now()
    execution.state = State.QUEUED if approve else State.REJECTED
    if not approve:
        execution.finished_at = execution.approved_at
        execution.summary = f"Rejected by {actor.name}: {reason}"[:500]
    execution.save()
    audit.append(
        "execution.approved" if approve else "execution.rejected",
        actor=actor,
        incident=execution.incident,
        obj=execution,
        data={
            "step": step,
            "command": execution.command_text[:300],
            "reason": reason,
            "requested_by": execution.requested_by.get_username()
            if execution.requested_by
            else None,
        },
    )
    if approve:
        transaction.on_commit(
            lambda: runs.dispatch(execution.pk, execution.command.kind)
        )
    return execution


def expire(*, execution: StepExecution, actor: Actor) -> bool:
    """An approval request nobody answered in time is cancelled, never run later."""
    if not actor.is_one_of(EXPIRERS):
        access.refuse(
            actor,
            "expire approval requests",
            incident=execution.incident,
            why="only the sweeper and the console expire approval requests",
        )
    updated = StepExecution.objects.filter(
        pk=execution.pk, state=State.AWAITING_APPROVAL
    ).update(
        state=State.CANCELLED,
        finished_at=timezone.now(),
        summary="The approval request expired.",
    )
    if updated:
        audit.append(
            "execution.expired",
            actor=actor,
            incident=execution.incident,
            obj=execution,
            data={
                "step": execution.step.number if execution.step else None,
                "command": execution.command_text[:300],
            },
        )
    return bool(updated)
