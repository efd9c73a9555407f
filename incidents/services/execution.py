"""A run on a worker: claim it, re-check who asked, run it, store the redacted result."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import Model
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


# claim_and_load's one statement: the claim (queued -> running), and from the row
# it claimed, what the re-check and the result need (the command and its playbook,
# the incident, the step, the requester), each model's columns in field order.
CLAIM_AND_LOAD_JOINS = (
    ("command", "c", "LEFT JOIN {table} c ON c.id = claimed.command_id"),
    ("command.playbook", "p", "LEFT JOIN {table} p ON p.id = c.playbook_id"),
    ("incident", "i", "JOIN {table} i ON i.id = claimed.incident_id"),
    ("step", "s", "LEFT JOIN {table} s ON s.id = claimed.step_id"),
    ("requested_by", "u", "LEFT JOIN {table} u ON u.id = claimed.requested_by_id"),
)


@functools.cache
def _claim_and_load_sql() -> tuple[str, tuple[tuple[str, type[Model]], ...]]:
    """The statement (built once per process: the ORM compiled and planned the
    two reads it replaces on every run) and, in column order, which relation
    each group of columns fills ("" for the execution itself)."""
    table = StepExecution._meta.db_table
    groups: list[tuple[str, type[Model], str]] = [("", StepExecution, "claimed")]
    joins = []
    for path, alias, join in CLAIM_AND_LOAD_JOINS:
        model: type[Model] = StepExecution
        for name in path.split("."):
            model = model._meta.get_field(name).related_model
        groups.append((path, model, alias))
        joins.append(join.format(table=connection.ops.quote_name(model._meta.db_table)))
    columns = ", ".join(
        f"{alias}.{connection.ops.quote_name(field.column)}"
        for _, model, alias in groups
        for field in model._meta.concrete_fields
    )
    sql = (
        f"WITH claimed AS (UPDATE {connection.ops.quote_name(table)} "
        "SET state = %s, started_at = %s WHERE id = %s AND state = %s RETURNING *) "
        f"SELECT {columns} FROM claimed {' '.join(joins)}"
    )
    return sql, tuple((path, model) for path, model, _ in groups)


@functools.cache
def _converters(model: type[Model]) -> tuple[tuple[Any, list], ...]:
    """Per column of `model`: the expression the ORM would read it as, and the
    converters it would apply (JSON fields, ...), worked out once per process."""
    found = []
    for field in model._meta.concrete_fields:
        expression = field.get_col(model._meta.db_table)
        found.append(
            (
                expression,
                connection.ops.get_db_converters(expression)
                + field.get_db_converters(connection),
            )
        )
    return tuple(found)


def _from_row(model: type[Model], values: tuple) -> Model | None:
    """A model instance from its columns as the database sent them, converted as
    the ORM converts them; None for a LEFT JOIN that found no row (its primary key
    is NULL)."""
    converted = []
    for (expression, converters), value in zip(_converters(model), values, strict=True):
        if value is not None:
            for convert in converters:
                value = convert(value, expression, connection)
        converted.append(value)
    fields = model._meta.concrete_fields
    if converted[fields.index(model._meta.pk)] is None:
        return None
    return model.from_db(connection.alias, [f.attname for f in fields], converted)


def claim_and_load(execution_id: int) -> StepExecution | None:
    """claim(), and the claimed execution with what its run needs, in one
    statement (one round trip and one plan, where a claim and a read with four
    joins took two of each); None when there was nothing to claim. Not retried on
    a lost connection, like claim(): whether it committed is unknown, and a
    claimed run left `running` is the sweeper's."""
    sql, groups = _claim_and_load_sql()
    # Kept prepared by the worker's connection: planning this statement (four
    # joins) took ~0.9 ms of every run, more than running it.
    with connection.bound_cursor() as cursor:
        cursor.execute(
            sql,
            [State.RUNNING.value, timezone.now(), execution_id, State.QUEUED.value],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    loaded: dict[str, Model | None] = {}
    at = 0
    for path, model in groups:
        width = len(model._meta.concrete_fields)
        loaded[path] = _from_row(model, row[at : at + width])
        at += width
    execution = loaded[""]  # as claimed: RETURNING gives the row as updated
    assert isinstance(execution, StepExecution)
    command = loaded["command"]
    if command is not None:
        command.playbook = loaded["command.playbook"]
    execution.command = command
    execution.incident = loaded["incident"]
    execution.step = loaded["step"]
    execution.requested_by = loaded["requested_by"]
    return execution


def execute(execution_id: int) -> str | None:
    """A worker's run of one execution: claim, re-check, run, store. (The worker
    keeps its database connection between tasks; incidents.tasks checks it first.)"""
    execution = claim_and_load(execution_id)
    if execution is None:
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
    # The approver, for the runs that have one, in a read of its own: a second
    # join on users made the read about 40% dearer for every run.
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
