"""Running one StepExecution on a worker: claim it, re-check who asked, run the
executor within its limits, store the redacted result, audit the outcome."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from incidents import access, audit
from incidents.models import StepExecution

from . import redaction
from .executors import executor
from .executors.base import Context, ParameterError, Result, cap
from .targets import TargetMissing

log = logging.getLogger(__name__)


def claim(execution_id: int) -> bool:
    """queued -> running, only once: zero rows means a duplicate delivery (or a
    cancelled or already-finished run) and the caller must do nothing."""
    claimed = StepExecution.objects.filter(pk=execution_id, state="queued").update(
        state="running", started_at=timezone.now()
    )
    return claimed == 1


def execute(execution_id: int) -> str | None:
    if not claim(execution_id):
        log.info(
            "execution %s was not queued any more: duplicate delivery ignored",
            execution_id,
        )
        return None
    execution = StepExecution.objects.select_related(
        "command__playbook", "incident", "step", "requested_by", "approved_by"
    ).get(pk=execution_id)
    command = execution.command
    # No "started" event: it would cost a commit on the hot path, and the row's
    # started_at (shown with the result and in the exports) already says when.
    refusal = recheck(execution)
    if refusal:
        return finish(execution, Result(False, f"Not run: {refusal}"), denied=True)
    try:
        result = executor(command.executor).run(
            command, execution.parameters, Context.from_settings()
        )
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
    if not access.can_run(execution.requested_by, command, execution.incident):
        return "the requester may no longer run this command."
    if execution.fingerprint and execution.fingerprint != command.fingerprint(
        execution.parameters
    ):
        return "the command changed after it was requested (and previewed)."
    if command.requires_approval and not execution.break_glass:
        if execution.approved_by is None:
            return "it needs an approval and has none."
        if not access.can_approve(execution.approved_by, execution):
            return "the approver may no longer approve this playbook's actions."
    return ""


def finish(execution: StepExecution, result: Result, denied: bool = False) -> str:
    state = (
        "succeeded" if result.ok else ("timed_out" if result.timed_out else "failed")
    )
    summary = redaction.redact(result.summary)[:500]
    output = redaction.redact(cap(result.output, settings.EXECUTION_OUTPUT_CAP))
    with transaction.atomic():
        updated = StepExecution.objects.filter(pk=execution.pk, state="running").update(
            state=state, finished_at=timezone.now(), summary=summary, output=output
        )
        if updated:
            data = {
                **_event_data(execution),
                "summary": summary,
                "result": redaction.redact_data(result.data),
            }
            verb = "permission.denied" if denied else f"execution.{state}"
            audit.append(
                verb,
                actor_name="worker",
                incident=execution.incident,
                obj=execution,
                data=data,
            )
    return state


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
        state="awaiting_approval", approval_expires_at__lt=timezone.now()
    ).select_related("incident", "step")
    return sum(expire(execution) for execution in due)


def sweep_stale() -> int:
    """Runs left `running` by a worker that died: probes failed; actions
    outcome_unknown, because nobody knows whether they changed something."""
    cutoff = timezone.now() - timedelta(seconds=settings.STALE_RUNNING_AFTER)
    swept = 0
    stale = StepExecution.objects.filter(state="running", started_at__lt=cutoff)
    for execution in stale.select_related(
        "command", "incident", "step", "requested_by"
    ):
        action = execution.command and execution.command.kind == "action"
        state = "outcome_unknown" if action else "failed"
        summary = (
            "The worker stopped while this action ran. Check the target by hand: the "
            "console will not run it again by itself."
            if action
            else "The worker stopped before this probe finished; run it again."
        )
        with transaction.atomic():
            if StepExecution.objects.filter(pk=execution.pk, state="running").update(
                state=state, finished_at=timezone.now(), summary=summary
            ):
                audit.append(
                    f"execution.{state}",
                    actor_name="sweeper",
                    incident=execution.incident,
                    obj=execution,
                    data={**_event_data(execution), "summary": summary},
                )
                swept += 1
    return swept
