"""A run on a worker: claim it, re-check who asked, run it, store the redacted result."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from probes import commands, redaction, tables
from probes.runtime import Context, ParameterError, Result, cap
from probes.targets import TargetMissing

from .. import access, audit, wakeup
from ..actors import Actor
from ..models import Command, StepExecution

log = logging.getLogger(__name__)
State = StepExecution.State
T = TypeVar("T")

# A result that cannot be stored is a run nobody hears about: storing it is tried
# again on a fresh connection (the state-conditioned UPDATE makes a retry of a
# write that did commit a no-op). Backoff 0.1, 0.2, 0.4, 0.8, 1.6 s: about 3 s,
# well inside the task's hard limit.
STORE_ATTEMPTS = 6
# Who records a run's outcome in the audit log.
WORKER = Actor.system("worker")
# Who runs an alert-opened incident's Diagnosis probes (services/diagnosis.py),
# and the identities the worker lets run a command no person asked for.
DIAGNOSIS = Actor.system("diagnosis")
DIAGNOSERS = frozenset({DIAGNOSIS.name})


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
    """A worker's run of one execution: claim, re-check, run, store. (The worker
    keeps its database connection between tasks; incidents.tasks checks it first.)"""
    if not claim(execution_id):
        log.info(
            "execution %s was not queued any more: duplicate delivery ignored",
            execution_id,
        )
        return None
    if log.isEnabledFor(logging.DEBUG):  # which connection: the reuse test reads it
        log.debug(
            "execution %s claimed on console backend %s",
            execution_id,
            connection.connection.info.backend_pid,
        )
    # Claimed: from here on a lost connection must not strand the run `running`.
    # What the re-check and the result need, in one read. The approver, for the
    # runs that have one, in a read of its own: a second join on users made this
    # read (compiled, planned, hydrated on every run) about 40% dearer.
    execution = with_reconnect(
        lambda: StepExecution.objects.select_related(
            "command__playbook", "incident", "step", "requested_by"
        ).get(pk=execution_id),
        f"loading execution {execution_id}",
    )
    if execution.approved_by_id is not None:
        execution.approved_by = with_reconnect(
            # None if the account is gone meanwhile: the re-check then refuses.
            lambda: (
                get_user_model().objects.filter(pk=execution.approved_by_id).first()
            ),
            f"loading the approver of execution {execution_id}",
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
    if execution.requested_as:
        if not may_run_unasked(execution.requested_as, execution):
            return f"{execution.requested_as} may run only Diagnosis probes."
    elif not access.can_run(execution.requested_by, command, execution.incident):
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


def may_run_unasked(identity: str, execution: StepExecution) -> bool:
    """The worker's re-check for a run no person asked for: only the diagnosis
    identity, only a Diagnosis probe of the incident's own playbook."""
    command = execution.command
    return (
        identity in DIAGNOSERS
        and command.kind == Command.Kind.PROBE
        and command.step_id is None
        and execution.step_id is None
        and command.playbook_id == execution.incident.playbook_id
        # A heavy read needs a person's confirmation, which nobody gave.
        and not commands.heavy_reason(command)
    )


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
    structured = tables.safe(result.structured, settings.EXECUTION_OUTPUT_CAP)

    @transaction.atomic
    def store() -> None:
        updated = StepExecution.objects.filter(
            pk=execution.pk, state=State.RUNNING
        ).update(
            state=state,
            finished_at=timezone.now(),
            summary=summary,
            output=output,
            result=structured,
        )
        if updated:
            data = {
                **event_data(execution),
                "summary": summary,
                "result": redaction.redact_data(result.data),
            }
            verb = "permission.denied" if denied else f"execution.{state.value}"
            audit.append(
                verb,
                actor=WORKER,
                incident=execution.incident,
                obj=execution,
                data=data,
            )
            # Delivered on commit, with the result: wakes the click waiting for it.
            wakeup.notify(execution.pk)

    with_reconnect(store, f"storing the result of execution {execution.pk}")
    return state.value


def event_data(execution: StepExecution) -> dict:
    return {
        "step": execution.step.number if execution.step else None,
        "command": execution.command_text[:300],
        "kind": execution.command.kind,
        "executor": execution.command.executor,
        "requested_by": execution.requested_by.get_username()
        if execution.requested_by
        else (execution.requested_as or None),
    }
