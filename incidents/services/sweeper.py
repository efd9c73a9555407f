"""The sweeper: runs a dead worker left, lost messages, approvals nobody answered.

It acts as the "sweeper" system identity, which the services it calls allow."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models.functions import Coalesce
from django.utils import timezone

from .. import audit, metrics
from ..actors import Actor
from ..models import Command, StepExecution
from . import runs
from .approvals import expire
from .execution import event_data

State = StepExecution.State
SWEEPER = Actor.system("sweeper")
# A re-sent probe's task id starts with this, so the sweeper re-sends only once.
RESENT_PREFIX = "resent-"


def sweep() -> int:
    """One pass of the periodic sweep (the beat schedule runs it every minute):
    what it ended, re-sent or expired."""
    swept = sweep_stale() + sweep_unclaimed() + expire_approvals()
    metrics.SWEEPER_RUNS.inc()
    return swept


def expire_approvals() -> int:
    due = StepExecution.objects.filter(
        state=State.AWAITING_APPROVAL, approval_expires_at__lt=timezone.now()
    ).select_related("incident", "step")
    expired = sum(expire(execution=execution, actor=SWEEPER) for execution in due)
    metrics.SWEEPER_SWEPT.labels(metrics.APPROVAL_EXPIRED).inc(expired)
    return expired


def sweep_stale() -> int:
    """Runs left `running` by a worker that died: probes failed; actions
    outcome_unknown, because nobody knows whether they changed something."""
    cutoff = timezone.now() - timedelta(seconds=settings.STALE_RUNNING_AFTER)
    swept = 0
    stale = StepExecution.objects.filter(state=State.RUNNING, started_at__lt=cutoff)
    for execution in stale.select_related(
        "command", "incident", "step", "requested_by"
    ):
        action = execution.command and execution.command.kind == Command.Kind.ACTION
        state = State.OUTCOME_UNKNOWN if action else State.FAILED
        summary = (
            "The worker stopped while this action ran. Check the target by hand: the "
            "console will not run it again by itself."
            if action
            else "The worker stopped before this probe finished; run it again."
        )
        swept += _end_swept(execution, was=State.RUNNING, state=state, summary=summary)
    metrics.SWEEPER_SWEPT.labels(metrics.STALE_ENDED).inc(swept)
    return swept


def _end_swept(
    execution: StepExecution, *, was: State, state: State, summary: str
) -> bool:
    """End a run the sweeper found `was` (one conditional UPDATE: a worker that
    moved it on meanwhile wins), with its audit event in the same transaction."""
    with transaction.atomic():
        ended = StepExecution.objects.filter(pk=execution.pk, state=was).update(
            state=state, finished_at=timezone.now(), summary=summary
        )
        if ended:
            audit.append(
                f"execution.{state.value}",
                actor=SWEEPER,
                incident=execution.incident,
                obj=execution,
                data={**event_data(execution), "summary": summary},
            )
    return bool(ended)


def sweep_unclaimed() -> int:
    """Queued runs no worker claimed in time: their broker message was lost (a
    broker restarted without persistence) and they would block their command for
    ever. A probe is read-only, so it is sent once more; an action, or a probe
    still unclaimed after its second chance, ends `dispatch_failed` with the
    reason: never claimed means never started, and a late delivery finds it no
    longer queued and does nothing. Both are audited."""
    now = timezone.now()
    # Longer than a busy worker's backlog of runs at their time limit.
    bound = timedelta(seconds=settings.STALE_QUEUED_AFTER)
    # An approved run is queued from its approval, not from its request.
    unclaimed = (
        StepExecution.objects.filter(state=State.QUEUED)
        .annotate(queued_since=Coalesce("approved_at", "created_at"))
        .filter(queued_since__lt=now - bound)
        .select_related("command", "incident", "step", "requested_by")
    )
    swept = 0
    for execution in unclaimed:
        probe = execution.command and execution.command.kind == Command.Kind.PROBE
        resent = execution.task_id.startswith(RESENT_PREFIX)
        waited = int((now - execution.queued_since).total_seconds())
        if probe and resent and execution.queued_since >= now - 2 * bound:
            continue  # its second message gets a whole bound too
        if probe and not resent:
            task_id = f"{RESENT_PREFIX}{uuid.uuid4()}"
            with transaction.atomic():
                if not StepExecution.objects.filter(
                    pk=execution.pk, state=State.QUEUED
                ).update(task_id=task_id):
                    continue  # claimed meanwhile
                audit.append(
                    "execution.resent",
                    actor=SWEEPER,
                    incident=execution.incident,
                    obj=execution,
                    data={
                        **event_data(execution),
                        "summary": f"No worker picked it up in {waited} s; sent again.",
                    },
                )
                transaction.on_commit(
                    lambda pk=execution.pk, task_id=task_id: runs.dispatch(
                        pk, Command.Kind.PROBE, task_id
                    )
                )
            swept += 1
            metrics.SWEEPER_SWEPT.labels(metrics.RESENT).inc()
            continue
        sent = "though it was sent twice " if resent else ""
        summary = (
            f"Not run: no worker picked it up in {waited} s, {sent}(no worker is "
            "running, or the task queue lost it). Nothing ran; press Run again."
        )
        ended = _end_swept(
            execution, was=State.QUEUED, state=State.DISPATCH_FAILED, summary=summary
        )
        metrics.SWEEPER_SWEPT.labels(metrics.NEVER_CLAIMED).inc(ended)
        swept += ended
    return swept
