"""Running one StepExecution on a worker: claim it, re-check who asked, run the
executor within its limits, store the redacted result, audit the outcome."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models.functions import Coalesce
from django.utils import timezone

from incidents import access, audit
from incidents.models import Command, StepExecution

from . import commands, redaction
from .runtime import Context, ParameterError, Result, cap
from .targets import TargetMissing

log = logging.getLogger(__name__)
State = StepExecution.State
T = TypeVar("T")

# A result that cannot be stored is a run nobody hears about: storing it is tried
# again on a fresh connection (the state-conditioned UPDATE makes a retry of a
# write that did commit a no-op). Backoff 0.1, 0.2, 0.4, 0.8, 1.6 s: about 3 s,
# well inside the task's hard limit.
STORE_ATTEMPTS = 6
# A re-sent probe's task id starts with this, so the sweeper re-sends only once.
RESENT_PREFIX = "resent-"


def run_context() -> Context:
    """The limits a run gets, from the console's settings."""
    return Context(
        connect_timeout=settings.EXECUTION_CONNECT_TIMEOUT,
        timeout=settings.EXECUTION_TIMEOUT,
        output_cap=settings.EXECUTION_OUTPUT_CAP,
    )


def claim(execution_id: int) -> bool:
    """queued -> running, only once: zero rows means a duplicate delivery (or a
    cancelled or already-finished run) and the caller must do nothing."""
    claimed = StepExecution.objects.filter(pk=execution_id, state=State.QUEUED).update(
        state=State.RUNNING, started_at=timezone.now()
    )
    return claimed == 1


def execute(execution_id: int) -> str | None:
    if not claim(execution_id):
        log.info(
            "execution %s was not queued any more: duplicate delivery ignored",
            execution_id,
        )
        return None
    # Claimed: from here on a lost connection must not strand the run `running`.
    execution = with_reconnect(
        lambda: StepExecution.objects.select_related(
            "command__playbook", "incident", "step", "requested_by", "approved_by"
        ).get(pk=execution_id),
        f"loading execution {execution_id}",
    )
    command = execution.command
    # No "started" event: it would cost a commit on the hot path, and the row's
    # started_at (shown with the result and in the exports) already says when.
    refusal = recheck(execution)
    if refusal:
        return finish(execution, Result(False, f"Not run: {refusal}"), denied=True)
    try:
        result = commands.run(command, execution.parameters, run_context())
    except (TargetMissing, ParameterError) as exc:
        result = Result(False, str(exc))
    except SoftTimeLimitExceeded:
        result = Result(False, "Stopped at the worker's time limit.", timed_out=True)
    except Exception as exc:  # noqa: BLE001 - a failure is a result, never a crash
        log.exception(
            "executor %s failed on execution %s", command.executor, execution_id
        )
        result = Result(False, f"{type(exc).__name__}: {exc}")
    return finish(execution, result)


def recheck(execution: StepExecution) -> str:
    """Everything that allowed this run, asked again on the worker just before it
    starts: permissions may have been revoked, the command rebound, since the click."""
    command = execution.command
    if not execution.incident.is_active:
        return "the incident was resolved before the run started."
    if not access.can_run(execution.requested_by, command, execution.incident):
        return "the requester may no longer run this command."
    changed = execution.fingerprint and command.fingerprint_changes(
        execution.fingerprint, execution.parameters
    )
    if changed:
        return f"{changed} changed after it was requested (and previewed)."
    if command.requires_approval and not execution.break_glass:
        if execution.approved_by is None:
            return "it needs an approval and has none."
        if not access.can_approve(execution.approved_by, execution):
            return "the approver may no longer approve this playbook's actions."
    return ""


def with_reconnect(write: Callable[[], T], what: str) -> T:
    """Run a database write, again on a fresh connection when the connection
    breaks (a restarted database, a killed backend, a failover). Only for writes
    that are idempotent: state-conditioned UPDATEs and what they guard."""
    for attempt in range(STORE_ATTEMPTS):
        try:
            return write()
        except (OperationalError, InterfaceError) as exc:
            if attempt == STORE_ATTEMPTS - 1:
                raise
            log.warning("%s: database connection lost (%s); retrying", what, exc)
            connection.close()  # the next query opens a new one
            time.sleep(0.1 * 2**attempt)
    raise AssertionError("unreachable")


def finish(execution: StepExecution, result: Result, denied: bool = False) -> str:
    state = (
        State.SUCCEEDED
        if result.ok
        else (State.TIMED_OUT if result.timed_out else State.FAILED)
    )
    summary = redaction.redact(result.summary)[:500]
    # Redact, then cap: a secret cut in two by the cap would not be recognised.
    output = cap(redaction.redact(result.output), settings.EXECUTION_OUTPUT_CAP)

    @transaction.atomic
    def store() -> None:
        updated = StepExecution.objects.filter(
            pk=execution.pk, state=State.RUNNING
        ).update(
            state=state, finished_at=timezone.now(), summary=summary, output=output
        )
        if updated:
            data = {
                **_event_data(execution),
                "summary": summary,
                "result": redaction.redact_data(result.data),
            }
            verb = "permission.denied" if denied else f"execution.{state.value}"
            audit.append(
                verb,
                actor_name="worker",
                incident=execution.incident,
                obj=execution,
                data=data,
            )

    with_reconnect(store, f"storing the result of execution {execution.pk}")
    return state.value


def _event_data(execution: StepExecution) -> dict:
    return {
        "step": execution.step.number if execution.step else None,
        "command": execution.command_text[:300],
        "kind": execution.command.kind,
        "executor": execution.command.executor,
        "requested_by": execution.requested_by.get_username()
        if execution.requested_by
        else None,
    }


def expire_approvals() -> int:
    from incidents.services import expire

    due = StepExecution.objects.filter(
        state=State.AWAITING_APPROVAL, approval_expires_at__lt=timezone.now()
    ).select_related("incident", "step")
    return sum(expire(execution) for execution in due)


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
                actor_name="sweeper",
                incident=execution.incident,
                obj=execution,
                data={**_event_data(execution), "summary": summary},
            )
    return bool(ended)


def sweep_unclaimed() -> int:
    """Queued runs no worker claimed in time: their broker message was lost (a
    broker restarted without persistence) and they would block their command for
    ever. A probe is read-only, so it is sent once more; an action, or a probe
    still unclaimed after its second chance, ends `dispatch_failed` with the
    reason: never claimed means never started, and a late delivery finds it no
    longer queued and does nothing. Both are audited."""
    from .dispatch import dispatch

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
                    actor_name="sweeper",
                    incident=execution.incident,
                    obj=execution,
                    data={
                        **_event_data(execution),
                        "summary": f"No worker picked it up in {waited} s; sent again.",
                    },
                )
                transaction.on_commit(
                    lambda pk=execution.pk, task_id=task_id: dispatch(
                        pk, Command.Kind.PROBE, task_id
                    )
                )
            swept += 1
            continue
        sent = "though it was sent twice " if resent else ""
        summary = (
            f"Not run: no worker picked it up in {waited} s, {sent}(no worker is "
            "running, or the task queue lost it). Nothing ran; press Run again."
        )
        swept += _end_swept(
            execution, was=State.QUEUED, state=State.DISPATCH_FAILED, summary=summary
        )
    return swept
