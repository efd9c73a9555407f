"""Run requests: their checks, previews bound to exact text, one run per click, dispatch."""

from __future__ import annotations

import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from celery import current_app
from django.conf import settings
from django.core import signing
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from probes.commands import (
    confirm_word,
    display_text,
    heavy_reason,
    missing_targets,
    parameter_problem,
)
from probes.preview import preview as preview_of

from .. import access, audit
from ..actors import Actor
from ..models import AuditEvent, Command, Incident, StepExecution
from . import inline, sites
from .execution import run_context

log = logging.getLogger(__name__)
State = StepExecution.State


class RunRefused(ValueError):
    """A run the console will not start, with the reason a responder can act on."""


@dataclass
class RunResult:
    execution: StepExecution
    created: bool


MAX_PARAMETER_LENGTH = 500
# The model's request_key column; a longer key would be looked up whole and
# stored cut, so a double click would not find its first run.
MAX_REQUEST_KEY_LENGTH = 64


def clean_parameters(command: Command, given: dict[str, str]) -> dict[str, str]:
    values = {}
    for name in command.parameters:
        value = (given.get(name) or "").strip()
        if not value:
            raise RunRefused(f"Fill in {name} first.")
        if len(value) > MAX_PARAMETER_LENGTH or "\n" in value or "\x00" in value:
            raise RunRefused(
                f"{name} must be one line of at most {MAX_PARAMETER_LENGTH} characters."
            )
        values[name] = value
    problem = parameter_problem(command, values)
    if problem:
        raise RunRefused(problem)
    return values


def clean_request_key(request_key: str) -> str:
    """The Run form's one-time key, refused rather than cut or stored with NULs
    (PostgreSQL cannot store a NUL; a cut key would defeat the double-click check)."""
    if len(request_key) > MAX_REQUEST_KEY_LENGTH or "\x00" in request_key:
        raise RunRefused(
            "The form's request key is malformed: reload the page and press Run again."
        )
    return request_key


def clean_reason(reason: str) -> str:
    if "\x00" in reason:
        raise RunRefused("The reason contains a NUL character; type it again.")
    return reason.strip()


PREVIEW_SALT = "yomira.preview"
# Where a run records the preview that confirmed it: the run's own audit event,
# so "used" lives in the database next to the run, under the incident's lock.
PREVIEW_NONCE_KEY = audit.PREVIEW_NONCE_KEY
# In a preview token: the preview found nothing to act on (no Run is offered, and
# none is accepted with it).
NOTHING_KEY = "z"
RUN_VERBS = (
    "execution.requested",
    "execution.approval_requested",
    "execution.break_glass",
)


def preview_token(
    *,
    incident: Incident,
    command: Command,
    params: dict[str, str],
    actor: Actor,
    nonce: str = "",
    nothing: bool = False,
) -> str:
    """Signed proof that this person previewed exactly this command text and these
    parameters; the confirmation must carry it back. The nonce makes it single
    use: the run it confirms records it (see request_run). `nothing`: the preview
    found nothing to act on, and the token confirms no run (check_preview_token)."""
    proof = {
        "i": incident.pk,
        "c": command.pk,
        "u": _who(actor),
        "f": command.fingerprint(params),
        "n": nonce or secrets.token_urlsafe(12),
    }
    if nothing:
        proof[NOTHING_KEY] = 1
    return signing.dumps(proof, salt=PREVIEW_SALT)


def check_preview_token(
    token: str,
    *,
    incident: Incident,
    command: Command,
    params: dict[str, str],
    actor: Actor,
) -> str:
    """The token's nonce, once the token is shown to be this person's preview of
    exactly this command and these parameters, and young enough."""
    try:
        data = signing.loads(
            token, salt=PREVIEW_SALT, max_age=settings.PREVIEW_TTL_MINUTES * 60
        )
    except signing.SignatureExpired:
        raise RunRefused("The preview is too old: preview the action again.") from None
    except signing.BadSignature:
        raise RunRefused("Preview the action first, then confirm it.") from None
    if not isinstance(data, dict) or not isinstance(data.get("n"), str):
        raise RunRefused("Preview the action first, then confirm it.")
    if (data.get("i"), data.get("c"), data.get("u")) != (
        incident.pk,
        command.pk,
        _who(actor),
    ):
        raise RunRefused(
            "That preview was for another command or person: preview again."
        )
    changed = command.fingerprint_changes(str(data.get("f", "")), params)
    if changed:
        raise RunRefused(
            f"{changed.capitalize()} changed since the preview: preview it again."
        )
    if data.get(NOTHING_KEY):
        raise RunRefused(
            "That preview found nothing to act on, so it confirms no run. "
            "Nothing was run; preview again if things have changed."
        )
    return data["n"]


def _who(actor: Actor) -> int | str:
    """Whose preview a token is: a person's account (a system actor never gets
    this far: it may not run commands)."""
    return actor.user.pk if actor.user is not None else actor.key


def _preview_used(incident: Incident, nonce: str) -> AuditEvent | None:
    """The run event that already consumed this preview, if any. Asked under the
    incident's row lock, so two confirmations of one preview queue and the second
    sees the first's committed event."""
    return (
        AuditEvent.objects.filter(
            incident=incident,
            verb__in=RUN_VERBS,
            **{f"data__{PREVIEW_NONCE_KEY}": nonce},
        )
        .order_by("seq")
        .first()
    )


@dataclass
class Previewed:
    result: Any  # probes.preview's answer: headline, rows, detail, facts
    token: str
    params: dict[str, str]


def preview_action(
    *,
    incident: Incident,
    command: Command,
    params: dict[str, str],
    actor: Actor,
) -> Previewed:
    """What an action would touch (its blast radius), audited, with the signed
    token its confirmation must carry back."""
    access.check(
        actor,
        access.run_permission(command),
        incident=incident,
        playbook=incident.playbook,
    )
    values = clean_parameters(command, params)
    shown = preview_of(command, values, run_context())
    # The nonce ties this preview to the run it confirms (whose event records it
    # too), so an approver is shown the very preview the requester saw.
    nonce = secrets.token_urlsafe(12)
    audit.append(
        "execution.previewed",
        actor=actor,
        incident=incident,
        obj=command,
        data={
            "step": command.step.number if command.step else None,
            "command": command.text[:300],
            "rows": shown.rows,
            "headline": shown.headline,
            "facts": [fact[:300] for fact in shown.facts[:10]],
            PREVIEW_NONCE_KEY: nonce,
            **({"nothing": shown.nothing} if shown.nothing else {}),
        },
    )
    token = preview_token(
        incident=incident,
        command=command,
        params=values,
        actor=actor,
        nonce=nonce,
        nothing=bool(shown.nothing),
    )
    return Previewed(shown, token, values)


def request_run(
    *,
    incident: Incident,
    command: Command,
    params: dict[str, str],
    actor: Actor,
    confirmation: str = "",
    preview: str | None = None,
    break_glass_reason: str = "",
    break_glass: bool = False,
    request_key: str = "",
    confirm_heavy: bool = False,
) -> RunResult:
    """Queue one run of a command for an incident and send it on commit. Actions
    need the typed word and a preview token bound to the exact command and
    parameters, used once; approval-required actions wait for a second person
    unless a commander breaks glass (with a reason). A double click (same request
    key from the same person) or a second person pressing Run while the same
    command with the same parameters is in flight gets that execution, not a new
    one. `preview=None` skips the preview check (internal callers and tests of the
    pipeline only; views always pass it). No system identity may run commands.
    A heavy probe (a read that can hurt production: `KEYS *`, a whole-table scan)
    runs only with `confirm_heavy`, the person's tick under its warning; the run's
    audit event and the execution record that it was confirmed, and why."""
    access.check(
        actor,
        access.run_permission(command),
        incident=incident,
        playbook=incident.playbook,
    )
    with transaction.atomic():
        return _request_run(
            incident=incident,
            command=command,
            params=params,
            actor=actor,
            confirmation=confirmation,
            preview=preview,
            break_glass_reason=break_glass_reason,
            break_glass=break_glass,
            request_key=request_key,
            confirm_heavy=confirm_heavy,
        )


HEAVY_KEY = "heavy_confirmed"


def _request_run(
    *,
    incident: Incident,
    command: Command,
    params: dict[str, str],
    actor: Actor,
    confirmation: str,
    preview: str | None,
    break_glass_reason: str,
    break_glass: bool,
    request_key: str,
    confirm_heavy: bool = False,
) -> RunResult:
    request_key = clean_request_key(request_key)
    break_glass_reason = clean_reason(break_glass_reason)
    if break_glass and not break_glass_reason:
        raise RunRefused(
            "Breaking glass needs a reason: say why this cannot wait for a second "
            "person. Nothing was run or requested."
        )
    if command.playbook_id != incident.playbook_id:
        raise RunRefused("That command is not part of this incident's playbook.")
    if not command.is_runnable:
        raise RunRefused("This command is manual: copy it and run it by hand.")
    if not incident.is_active:
        raise RunRefused("The incident is resolved; reopen it to run commands.")
    values = clean_parameters(command, params)
    heavy = heavy_reason(command)
    if heavy and not confirm_heavy:
        raise RunRefused(
            f"Heavy read: {heavy}. Nothing was run: tick “Run it anyway” under the "
            "warning to confirm, then press Run."
        )
    breaking_glass = False
    nonce = ""
    if command.kind == Command.Kind.ACTION:
        word = confirm_word(command)
        if confirmation.strip().lower() != word:
            raise RunRefused(f"Type “{word}” to confirm this action.")
        if preview is not None:
            nonce = check_preview_token(
                preview, incident=incident, command=command, params=values, actor=actor
            )
        if command.requires_approval and break_glass_reason:
            if not access.can_break_glass(actor.user, command):
                raise RunRefused(
                    "Only a commander who may run this action can break glass."
                )
            breaking_glass = True
    absent = missing_targets(command)
    if absent:
        raise RunRefused(
            f"Not configured: set {', '.join(absent)} on the console and its workers."
        )
    # Its site's workers must be there: said now, not after a wait in a queue.
    if site_problem := sites.run_problem(command):
        raise RunRefused(site_problem)

    locked = Incident.objects.select_for_update().get(pk=incident.pk)
    if not locked.is_active:  # resolved while this request waited for the lock
        raise RunRefused("The incident is resolved; reopen it to run commands.")
    # Asked after the lock is held (a statement's snapshot is taken when it starts,
    # so a read in the locking statement would miss the run a first click just
    # committed).
    clicked, in_flight = _earlier_runs(incident, command, actor, request_key, values)
    if clicked is not None:
        return RunResult(clicked, created=False)
    if nonce:
        used = _preview_used(incident, nonce)
        if used is not None:
            raise RunRefused(
                f"That preview already confirmed a run at {used.created_at:%H:%M:%S} UTC; "
                "preview the action again to run it again."
            )
    if in_flight is not None:
        return RunResult(in_flight, created=False)

    needs_approval = command.requires_approval and not breaking_glass
    now = timezone.now()
    # The message's id, chosen now and stored with the row: sending it needs no
    # write after the send (which would also contend with the worker's claim of
    # this very row).
    task_id = "" if needs_approval else str(uuid.uuid4())
    execution = StepExecution.objects.create(
        incident=incident,
        step=command.step,  # empty for a Diagnosis command
        command=command,
        state=State.AWAITING_APPROVAL if needs_approval else State.QUEUED,
        requested_by=actor.user,
        parameters=values,
        command_text=display_text(command, values),
        request_key=request_key,
        task_id=task_id,
        fingerprint=command.fingerprint(values),
        approval_expires_at=(now + timedelta(minutes=settings.APPROVAL_TTL_MINUTES))
        if needs_approval
        else None,
        break_glass=breaking_glass,
        reason=break_glass_reason
        if breaking_glass
        else (f"Heavy read, confirmed: {heavy}" if heavy else ""),
    )
    data = {
        "step": command.step.number if command.step else None,
        "command": execution.command_text[:300],
        "kind": command.kind,
        "executor": command.executor,
        "parameters": sorted(values),
    }
    if nonce:
        data[PREVIEW_NONCE_KEY] = nonce
    if heavy:
        data[HEAVY_KEY] = heavy  # the warning the person saw and confirmed
    if needs_approval:
        verb = "execution.approval_requested"
        data["expires_at"] = execution.approval_expires_at.isoformat()
    elif breaking_glass:
        verb = "execution.break_glass"
        data["reason"] = execution.reason
    else:
        verb = "execution.requested"
    audit.append(verb, actor=actor, incident=incident, obj=execution, data=data)
    if not needs_approval:
        transaction.on_commit(lambda: dispatch(execution.pk, command.kind, task_id))
    return RunResult(execution, created=True)


def _earlier_runs(
    incident: Incident,
    command: Command,
    actor: Actor,
    request_key: str,
    values: dict[str, str],
) -> tuple[StepExecution | None, StepExecution | None]:
    """(this person's run with this request key: a double click; a run of the same
    command with the same parameters still in flight), in one read: each the first
    in the model's order, as two reads would find them. A key is one person's one
    page load: someone else's key never returns their run (the key travels in HTML
    that might be shared)."""
    who = actor.user.pk if actor.user is not None else None
    in_flight = Q(state__in=StepExecution.IN_FLIGHT, parameters=values)
    wanted = (
        in_flight | Q(request_key=request_key, requested_by_id=who)
        if request_key
        else in_flight
    )
    found = list(incident.executions.filter(command=command).filter(wanted))

    # Which of the two each is, told apart here rather than in SQL (annotations
    # cost more to compile than the read). Parameters are one-line strings both
    # sides, so equal dicts are what jsonb equality finds.
    def clicked(run: StepExecution) -> bool:
        return bool(request_key) and (run.request_key, run.requested_by_id) == (
            request_key,
            who,
        )

    def flying(run: StepExecution) -> bool:
        return run.state in StepExecution.IN_FLIGHT and run.parameters == values

    return (
        next((run for run in found if clicked(run)), None),
        next((run for run in found if flying(run)), None),
    )


# --- sending a queued run to the workers --------------------------------------------

# The workers' task names (incidents/tasks.py registers them under these): runs are
# sent by name, so this module never imports the tasks that call back into it.
RUN_PROBE_TASK = "incidents.tasks.run_probe"
RUN_ACTION_TASK = "incidents.tasks.run_action"
# Fail within about a second when the broker is down, instead of kombu's own
# multi-second reconnect loop (measured: ~0.05 s to the OperationalError).
RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.1,
    "interval_max": 0.2,
}
# Who records a run the broker refused.
CONSOLE = Actor.system("console")


def dispatch(execution_id: int, kind: str, task_id: str | None = None) -> None:
    """Send a queued execution to the workers, or record why it could not go.
    `task_id` names the message, and the row already holds it (request_run stores
    it with the row; the sweeper marks a re-sent probe by it): nothing is written
    after a send. Without one, the message's id is recorded after the send."""
    task = RUN_ACTION_TASK if kind == Command.Kind.ACTION else RUN_PROBE_TASK
    queue = sites.queue_for_execution(execution_id)  # its site's; None: the default
    try:
        sent = current_app.send_task(
            task,
            args=[execution_id],
            task_id=task_id,
            queue=queue,
            ignore_result=True,
            retry=True,
            retry_policy=RETRY_POLICY,
        )
    except Exception as exc:  # noqa: BLE001 - kombu raises several kinds; all mean "not sent"
        log.warning("dispatch of execution %s failed: %s", execution_id, exc)
        if task_id:
            # No message carries it: the row must not name one (only if it still
            # names this one).
            StepExecution.objects.filter(pk=execution_id, task_id=task_id).update(
                task_id=""
            )
        # A probe runs here instead (services/inline.py); an action, a probe of
        # another site, or one past the inline cap is recorded as not sent, saying why.
        refusal = inline.run_instead(execution_id, kind, queue)
        if refusal:
            _dispatch_failed(execution_id, exc, refusal)
        return
    if task_id is None:
        StepExecution.objects.filter(pk=execution_id).update(task_id=sent.id or "")


def _dispatch_failed(execution_id: int, exc: Exception, why: str = "") -> None:
    """Record a run the broker refused and nobody ran: `why` says why it did not
    run inline instead (an action; the inline cap)."""
    why = why or "Nothing ran; press Run again once it is back."
    summary = f"Not sent: the task queue is unreachable ({type(exc).__name__}). {why}"
    with transaction.atomic():
        if StepExecution.objects.filter(pk=execution_id, state=State.QUEUED).update(
            state=State.DISPATCH_FAILED,
            finished_at=timezone.now(),
            summary=summary,
        ):
            execution = StepExecution.objects.select_related("incident", "step").get(
                pk=execution_id
            )
            audit.append(
                "execution.dispatch_failed",
                actor=CONSOLE,
                incident=execution.incident,
                obj=execution,
                data={
                    "step": execution.step.number if execution.step else None,
                    "summary": summary,
                },
            )
