"""The checklist: ticking steps (done, skipped, reopened) and notes."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from .. import access, audit
from ..actors import Actor
from ..models import (
    STEP_PENDING,
    AuditEvent,
    Incident,
    Step,
    StepExecution,
    step_state,
)
from .idempotency import by_actor, once

State = StepExecution.State
# How a conflict names what the other person did.
TICK_WORDS = {
    State.DONE: "marked it done",
    State.SKIPPED: "skipped it",
    State.REOPENED: "reopened it",
}


@dataclass
class TickResult:
    execution: StepExecution | None
    conflict: str = ""


def tick_step(
    *,
    incident: Incident,
    step: Step,
    state: str,
    expected: int | None,
    actor: Actor,
    reason: str = "",
) -> TickResult:
    """Mark a step done, skipped (with a reason) or reopened. `expected` is the id of
    the latest tick the person saw (0 for none): if someone else ticked the step in
    the meantime, nothing is written and the result says who did what. The incident
    row lock makes two simultaneous ticks of one step queue behind each other."""
    access.check(actor, access.TICK_STEPS, incident=incident)
    with transaction.atomic():
        return _tick(incident, step, state, expected, actor, reason)


def _tick(
    incident: Incident,
    step: Step,
    state: str,
    expected: int | None,
    actor: Actor,
    reason: str,
) -> TickResult:
    if state not in StepExecution.TICKS:
        raise ValueError(f"unknown tick {state!r}")
    if state == State.SKIPPED and not reason.strip():
        raise ValueError("Say why the step is skipped.")
    Incident.objects.select_for_update().get(pk=incident.pk)
    current, latest = step_state(list(incident.executions.filter(step=step)))
    if expected is not None and (latest.pk if latest else 0) != expected:
        if latest is None:
            # The page saw a tick that is not there (a stale or hand-made form).
            return TickResult(
                None,
                f"Nobody has ticked step {step.number} yet: your page refers to a "
                "tick that does not exist, so your change was not applied. Reload.",
            )
        who = (
            latest.requested_by.get_username()
            if latest and latest.requested_by
            else "someone"
        )
        return TickResult(
            None,
            f"{who} {TICK_WORDS[latest.state]} at {latest.created_at:%H:%M:%S} UTC while you were "
            "looking; your change was not applied.",
        )
    if (state == State.REOPENED and current == STEP_PENDING) or state == current:
        return TickResult(None, f"Step {step.number} is already {current}.")
    execution = StepExecution.objects.create(
        incident=incident,
        step=step,
        state=state,
        requested_by=actor.user,
        reason=reason.strip(),
    )
    audit.append(
        f"step.{execution.state}",
        actor=actor,
        incident=incident,
        obj=execution,
        data={"step": step.number, "title": step.title, "reason": execution.reason},
    )
    return TickResult(execution)


def add_note(
    *,
    incident: Incident,
    text: str,
    actor: Actor,
    step: Step | None = None,
    request_key: str = "",
) -> AuditEvent:
    """Add a note (an event of the incident). With a `request_key`, a repeat by
    the same actor returns the first note's event instead of a second note."""
    access.check(actor, access.ADD_NOTES, incident=incident)
    text = text.strip()
    if not text:
        raise ValueError("A note needs some text.")
    with once("note", actor, request_key):
        if request_key:
            first = AuditEvent.objects.filter(
                by_actor(actor),
                incident=incident,
                verb="note.added",
                data__request_key=request_key,
            ).first()
            if first is not None:
                return first
        data = {"text": text, "step": step.number if step else None}
        if request_key:
            data["request_key"] = request_key
        return audit.append("note.added", actor=actor, incident=incident, data=data)
