"""Probes run in the web process when the task queue cannot take them.

A dead broker (the runbook's §4 when the console shares Yomira's Redis) would
otherwise leave the console unable to run anything at all. A probe is read-only,
so it may run here instead, through the worker's own steps: the same conditional
claim (queued -> running: a message that did get through after all, or the
sweeper's re-send, then finds it taken and does nothing, so nothing runs twice),
the same re-check of who asked, the same redaction, result and audit event
(execution.finish). Limits: INLINE_PROBE_TIMEOUT of wall clock per run (the
probe's own client timeouts are capped to it, and a thread's deadline backs them
up), INLINE_PROBE_CONCURRENCY runs at once in this process.

A probe whose targets are at a site of their own (TARGET_SITE_*) does not run
here either: only that site's workers can reach them.

An action never runs here: its at-most-once guarantee is the worker's
(acknowledged on receipt, never retried), and a web request is no place for a
change that may take minutes.

Diagnosis probes queued by an alert run here too: they are read-only probes of
the incident's own playbook that the worker would have run, the worker's
re-check (may_run_unasked) is asked here as well, DIAGNOSIS_PER_MINUTE still
bounds how many there are, and each is held to the same wall clock and cap. The
alert intake already applies a receipt in its request when the broker is down
(alerts/intake.enqueue), so the responder opening the incident finds the
Diagnosis results, marked inline, instead of a column of dispatch failures."""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import replace
from typing import Any

from django.conf import settings

from probes import commands
from probes.runtime import Context, ParameterError, Result
from probes.targets import TargetMissing

from ..models import Command, StepExecution
from .execution import claim, finish, recheck, with_reconnect

log = logging.getLogger(__name__)

# Leads the stored summary (and so the checklist, the timeline and the exports).
INLINE_MARK = "Ran inline: task queue unreachable."
# In the audit event's result data (execution.finish stores it under "result").
INLINE_KEY = "inline"
ACTIONS_ONLY_ON_WORKER = (
    "Actions run only on a worker, with its at-most-once guarantee; nothing ran. "
    "Press Run again once the queue is back."
)
# The probe's own deadline fires first (its message names what it waited for);
# the thread's deadline is the backstop for an executor that overruns it.
GUARD_GRACE = 0.5


class _Slots:
    """A non-blocking counting semaphore whose size is read at each take, so the
    setting can change (tests, a reload) without a restart. A slot is held until
    the probe's thread really ends: a hung probe keeps its slot, so hung probes
    cannot pile up threads in the web process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.taken = 0

    def take(self, size: int) -> bool:
        with self._lock:
            if self.taken >= size:
                return False
            self.taken += 1
            return True

    def give(self) -> None:
        with self._lock:
            self.taken -= 1


SLOTS = _Slots()
# A forked child (a pre-forking web server) starts with no inline runs of its own.
os.register_at_fork(after_in_child=SLOTS.__init__)


def site_reason(site_queue: str) -> str:
    return (
        f"Its targets are at a site of their own: it runs only on that site's "
        f"workers (queue {site_queue}); nothing ran. Press Run again once the "
        "queue is back."
    )


def cap_reason(size: int) -> str:
    if size == 0:
        return (
            "Inline runs are off (INLINE_PROBE_CONCURRENCY=0); nothing ran. "
            "Press Run again once the queue is back."
        )
    return (
        f"{size} probe{'s' if size != 1 else ''} already run inline in this web "
        f"process, its limit (INLINE_PROBE_CONCURRENCY={size}); nothing ran. "
        "Press Run again in a moment."
    )


def run_instead(execution_id: int, kind: str, site_queue: str | None = None) -> str:
    """Run a queued probe that could not be sent to the workers, here and now.
    Returns "" when it ran (or was no longer queued: someone else has it), else
    why it did not run, for the caller to record as dispatch_failed. `kind` is
    the kind the run was sent as: only a probe is run. `site_queue`: the queue of
    its site's workers, if its targets are at a site of their own (services/
    sites.py): only they can reach them, so it does not run here either."""
    if kind != Command.Kind.PROBE:
        return ACTIONS_ONLY_ON_WORKER
    if site_queue:
        return site_reason(site_queue)
    size = settings.INLINE_PROBE_CONCURRENCY
    if not SLOTS.take(size):
        return cap_reason(size)
    handed_to_thread = False
    try:
        if not claim(execution_id):
            log.info(
                "execution %s was not queued any more: not run inline", execution_id
            )
            return ""
        log.warning("execution %s runs inline: task queue unreachable", execution_id)
        execution = with_reconnect(
            lambda: StepExecution.objects.select_related(
                "command__playbook", "incident", "step", "requested_by", "approved_by"
            ).get(pk=execution_id),
            f"loading execution {execution_id}",
        )
        refusal = recheck(execution)
        if refusal:
            finish(
                execution,
                Result(False, f"Not run: {refusal}", data={INLINE_KEY: True}),
                denied=True,
            )
            return ""
        handed_to_thread = True
        result = _run_bounded(execution)
        finish(
            execution,
            replace(
                result,
                summary=f"{INLINE_MARK} {result.summary}",
                data={**(result.data or {}), INLINE_KEY: True},
            ),
        )
        return ""
    finally:
        if not handed_to_thread:
            SLOTS.give()


def inline_context() -> Context:
    """The worker's limits, each capped to the inline wall clock."""
    limit = settings.INLINE_PROBE_TIMEOUT
    return Context(
        connect_timeout=min(settings.EXECUTION_CONNECT_TIMEOUT, limit),
        timeout=min(settings.EXECUTION_TIMEOUT, limit),
        output_cap=settings.EXECUTION_OUTPUT_CAP,
    )


def _run_bounded(execution: StepExecution) -> Result:
    """The probe on a thread of its own, waited for until the wall clock is up:
    past it the run ends timed_out here, whatever the thread still does (its
    late result is dropped; it gives its slot back when it ends). The thread runs
    only the probe (no database), so it needs no connection of its own."""
    limit = settings.INLINE_PROBE_TIMEOUT
    command, parameters = execution.command, dict(execution.parameters)
    box: list[Result] = []

    def work() -> None:
        try:
            box.append(_probe(command, parameters, inline_context(), execution.pk))
        finally:
            SLOTS.give()

    thread = threading.Thread(
        target=work, name=f"inline-probe-{execution.pk}", daemon=True
    )
    try:
        thread.start()
    except RuntimeError:  # no thread to be had: the slot is still this caller's
        SLOTS.give()
        raise
    thread.join(limit + GUARD_GRACE)
    if box:
        return box[0]
    log.warning("inline execution %s overran %s s", execution.pk, limit)
    return Result(
        False,
        f"Stopped: no answer within the inline limit of {limit:g} s.",
        timed_out=True,
    )


def _probe(
    command: Command, parameters: dict[str, Any], ctx: Context, pk: int
) -> Result:
    """What the worker's execute() makes of a run: a failure is a result."""
    try:
        return commands.run(command, parameters, ctx)
    except (TargetMissing, ParameterError) as exc:
        return Result(False, str(exc))
    except Exception as exc:  # noqa: BLE001 - a failure is a result, never a crash
        log.exception("executor %s failed on inline execution %s", command.executor, pk)
        return Result(False, f"{type(exc).__name__}: {exc}")
