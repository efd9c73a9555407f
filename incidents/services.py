"""Writes that touch several models: keyword-only and atomic."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.contenttypes.models import ContentType
from django.core import signing
from django.db import DatabaseError, connection, transaction
from django.db.models import Max
from django.http import HttpRequest
from django.utils import timezone

from . import audit
from . import runbook as rb
from .models import (
    AuditEvent,
    Command,
    Incident,
    Playbook,
    Runbook,
    Step,
    StepExecution,
    step_state,
)
from .runbook.slugs import slugify


@dataclass
class ImportResult:
    runbook: Runbook
    parsed: rb.Runbook
    created: bool


def check_runbook(*, source: bytes | str, source_name: str = "") -> rb.Runbook:
    """What `import_runbook` would refuse, without writing anything (the dry run):
    the same parse and the same checks, so both give the same verdict. Without a
    reachable database the slug check is skipped, with a warning."""
    parsed = rb.parse_runbook(source)
    _check_source_name(source_name)
    try:
        with transaction.atomic():
            _refuse_taken_slugs(parsed, slugify(parsed.title) or "runbook")
    except DatabaseError as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        parsed.warnings.append(
            f"not compared with the database ({reason}): a slug used by another "
            "runbook would only be refused by the import"
        )
    return parsed


def _check_source_name(source_name: str) -> None:
    if len(source_name) > rb.SOURCE_NAME_MAX:
        raise rb.RunbookError(
            f"the file name is {len(source_name)} characters long; at most "
            f"{rb.SOURCE_NAME_MAX} fit"
        )


def _refuse_taken_slugs(parsed: rb.Runbook, key: str) -> None:
    """Playbook URLs are /playbooks/<slug>/: two current runbooks cannot share one."""
    taken = dict(
        Playbook.objects.current()
        .exclude(runbook__key=key)
        .filter(slug__in=[p.slug for p in parsed.playbooks])
        .values_list("slug", "runbook__title")
    )
    for playbook in parsed.playbooks:
        if playbook.slug in taken:
            raise rb.RunbookError(
                f"playbook '{playbook.title}' has the same slug as one in the runbook "
                f"'{taken[playbook.slug]}'; rename one of them",
                playbook.line,
            )


@transaction.atomic
def import_runbook(
    *,
    source: bytes | str,
    source_name: str = "",
    imported_by: AbstractBaseUser | None = None,
) -> ImportResult:
    """Import a runbook file as a new revision, or do nothing if the current revision
    has the same content. Raises RunbookError (naming the line) before writing
    anything when the file cannot be read as a runbook."""
    parsed = rb.parse_runbook(source)
    _check_source_name(source_name)
    actor = {"actor": imported_by} if imported_by else {"actor_name": "manage.py"}
    key = slugify(parsed.title) or "runbook"
    revisions = Runbook.objects.select_for_update().filter(key=key)
    current = revisions.filter(is_current=True).first()
    if (
        current
        and current.sha256 == parsed.sha256
        and current.parser_version == rb.PARSER_VERSION
    ):
        audit.append(
            "runbook.unchanged", obj=current, data={"sha256": parsed.sha256}, **actor
        )
        return ImportResult(current, parsed, created=False)

    _refuse_taken_slugs(parsed, key)

    revision = (revisions.aggregate(n=Max("revision"))["n"] or 0) + 1
    revisions.filter(is_current=True).update(is_current=False)
    text = source.decode("utf-8-sig") if isinstance(source, bytes) else source
    runbook = Runbook.objects.create(
        key=key,
        revision=revision,
        title=parsed.title,
        version=parsed.version,
        sha256=parsed.sha256,
        parser_version=rb.PARSER_VERSION,
        source_name=source_name,
        source=text,
        preamble=parsed.preamble,
        sections=[{"title": s.title, "markdown": s.markdown} for s in parsed.sections],
        warnings=parsed.warnings,
        imported_by=imported_by,
    )
    new_playbooks = [_save_playbook(runbook, p) for p in parsed.playbooks]
    if current is not None:
        carry_grants(current, new_playbooks)
    audit.append(
        "runbook.imported",
        obj=runbook,
        data={
            "title": runbook.title,
            "revision": revision,
            "sha256": parsed.sha256,
            "source": source_name,
            "playbooks": len(parsed.playbooks),
        },
        **actor,
    )
    return ImportResult(runbook, parsed, created=True)


def carry_grants(previous: Runbook, playbooks: list[Playbook]) -> None:
    """Per-playbook grants follow a playbook (by slug) into the new revision, so a
    re-import never silently takes away, or hands out, the right to act."""
    from guardian.models import GroupObjectPermission, UserObjectPermission

    old = dict(previous.playbooks.values_list("slug", "pk"))
    # Old playbook pk -> its successor's pk; one query per kind of holder, not one
    # per playbook (a 1,000-playbook runbook made 2,000 queries).
    successor = {str(old[p.slug]): str(p.pk) for p in playbooks if p.slug in old}
    content_type = ContentType.objects.get_for_model(Playbook)
    for model in (UserObjectPermission, GroupObjectPermission):
        holder = "user_id" if model is UserObjectPermission else "group_id"
        grants = model.objects.filter(
            content_type=content_type, object_pk__in=list(successor)
        ).values_list("object_pk", "permission_id", holder)
        copies = [
            model(
                content_type=content_type,
                object_pk=successor[object_pk],
                permission_id=permission_id,
                **{holder: who},
            )
            for object_pk, permission_id, who in grants
        ]
        model.objects.bulk_create(copies, ignore_conflicts=True)


def _save_playbook(runbook: Runbook, parsed: rb.Playbook) -> Playbook:
    playbook = Playbook.objects.create(
        runbook=runbook,
        number=parsed.number,
        slug=parsed.slug,
        title=parsed.title,
        anchor=parsed.anchor,
        alerts=parsed.alerts,
        alert_condition=parsed.alert_condition,
        severity=parsed.severity,
        severity_note=parsed.severity_note,
        escalation=parsed.escalation,
        context=[{"title": s.title, "markdown": s.markdown} for s in parsed.context],
        diagnosis=parsed.diagnosis,
        line=parsed.line,
    )
    steps = Step.objects.bulk_create(
        Step(
            playbook=playbook,
            number=s.number,
            title=s.title,
            body=s.body,
            links=s.links,
            line=s.line,
        )
        for s in parsed.steps
    )
    owned = [(None, c) for c in parsed.diagnosis_commands]
    owned += [
        (step, c)
        for step, s in zip(steps, parsed.steps, strict=True)
        for c in s.commands
    ]
    Command.objects.bulk_create(
        Command(
            playbook=playbook,
            step=step,
            position=position,
            block=c.block,
            language=c.language,
            text=c.text,
            comment=c.comment,
            context=c.context,
            after=c.after,
            kind=c.kind,
            executor=c.executor or "",
            parameters=c.parameters,
            variables=c.variables,
            spec=c.spec,
            requires_approval=c.requires_approval,
            line=c.line,
        )
        for position, (step, c) in enumerate(owned, start=1)
    )
    return playbook


# --- incidents ------------------------------------------------------------------------


# Serialises requests that carry the same one-time key (see `_once`): the class
# half of PostgreSQL's two-key advisory lock, a key space apart from audit.append's.
REQUEST_KEY_LOCK_CLASS = 0x594B  # "YK"
_request_key_lock = threading.Lock()  # SQLite: one process, one writer at a time


@contextmanager
def _once(scope: str, by: AbstractBaseUser, request_key: str) -> Iterator[None]:
    """A transaction in which a person's request carrying `request_key` is the only
    one with that key: the look-up for an earlier result and the write that records
    this one cannot interleave with a double submit's twin. PostgreSQL: an advisory
    lock held until commit. SQLite (`make run`): a process lock held until commit
    (its one process is the only writer)."""
    if not request_key:
        with transaction.atomic():
            yield
        return
    if connection.vendor == "postgresql":
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_advisory_xact_lock(%s, hashtext(%s))",
                    [REQUEST_KEY_LOCK_CLASS, f"{scope}:{by.pk}:{request_key}"],
                )
            yield
        return
    with _request_key_lock, transaction.atomic():
        yield


def open_incident(
    *,
    playbook: Playbook,
    title: str,
    by: AbstractBaseUser,
    request: HttpRequest | None = None,
    request_key: str = "",
) -> Incident:
    """Open an incident. With a `request_key` (the form's one-time key), a repeat
    by the same person returns the incident the first submit opened."""
    with _once("incident", by, request_key):
        if request_key:
            # The key lives in the opening event: the audit log is the record of
            # who opened what, and this needs no column of its own.
            first = (
                AuditEvent.objects.filter(
                    verb="incident.opened",
                    actor_id=by.pk,
                    data__request_key=request_key,
                )
                .values_list("incident_id", flat=True)
                .first()
            )
            if first is not None:
                return Incident.objects.get(pk=first)
        incident = Incident.objects.create(
            playbook=playbook,
            title=title.strip(),
            severity=playbook.severity,
            opened_by=by,
            commander=by,
        )
        data = {
            "title": incident.title,
            "playbook": playbook.number,
            "playbook_title": playbook.title,
            "runbook_revision": playbook.runbook.revision,
            "severity": incident.severity,
        }
        if request_key:
            data["request_key"] = request_key
        audit.append(
            "incident.opened",
            actor=by,
            incident=incident,
            obj=incident,
            data=data,
            request=request,
        )
        return incident


class TransitionError(ValueError):
    """A status change the incident's current status does not allow."""


STATUS_TIMESTAMPS = {
    "acknowledged": "acknowledged_at",
    "mitigated": "mitigated_at",
    "resolved": "resolved_at",
}


@transaction.atomic
def change_status(
    *,
    incident: Incident,
    to: str,
    by: AbstractBaseUser,
    request: HttpRequest | None = None,
) -> Incident:
    incident = Incident.objects.select_for_update().get(pk=incident.pk)
    if to not in incident.allowed_statuses():
        raise TransitionError(
            f"An incident that is {incident.status} cannot become {to}; "
            f"it can become {', '.join(incident.allowed_statuses()) or 'nothing else'}."
        )
    before, now = incident.status, timezone.now()
    incident.status = to
    if to == "open":  # reopened: the later stages happen again
        incident.mitigated_at = incident.resolved_at = None
    else:
        here = Incident.ORDER.index(to)
        for status in Incident.ORDER[1 : here + 1]:
            field = STATUS_TIMESTAMPS[status]
            if getattr(incident, field) is None or status == to:
                setattr(incident, field, now)
    incident.save()
    verb = "incident.reopened" if to == "open" else "incident.status_changed"
    audit.append(
        verb,
        actor=by,
        incident=incident,
        obj=incident,
        data={"from": before, "to": to},
        request=request,
    )
    return incident


@transaction.atomic
def change_commander(
    *,
    incident: Incident,
    commander: AbstractBaseUser | None,
    by: AbstractBaseUser,
    request: HttpRequest | None = None,
) -> Incident:
    incident = Incident.objects.select_for_update().get(pk=incident.pk)
    before = incident.commander.get_username() if incident.commander else None
    incident.commander = commander
    incident.save(update_fields=["commander"])
    audit.append(
        "incident.commander_changed",
        actor=by,
        incident=incident,
        obj=incident,
        data={"from": before, "to": commander.get_username() if commander else None},
        request=request,
    )
    return incident


@dataclass
class TickResult:
    execution: StepExecution | None
    conflict: str = ""


@transaction.atomic
def tick_step(
    *,
    incident: Incident,
    step: Step,
    state: str,
    expected: int | None,
    by: AbstractBaseUser,
    reason: str = "",
    request: HttpRequest | None = None,
) -> TickResult:
    """Mark a step done, skipped (with a reason) or reopened. `expected` is the id of
    the latest tick the person saw (0 for none): if someone else ticked the step in
    the meantime, nothing is written and the result says who did what. The incident
    row lock makes two simultaneous ticks of one step queue behind each other."""
    if state not in StepExecution.TICKS:
        raise ValueError(f"unknown tick {state!r}")
    if state == "skipped" and not reason.strip():
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
        verb = {
            "done": "marked it done",
            "skipped": "skipped it",
            "reopened": "reopened it",
        }
        return TickResult(
            None,
            f"{who} {verb[latest.state]} at {latest.created_at:%H:%M:%S} UTC while you were "
            "looking; your change was not applied.",
        )
    if (state == "reopened" and current == "pending") or state == current:
        return TickResult(None, f"Step {step.number} is already {current}.")
    execution = StepExecution.objects.create(
        incident=incident,
        step=step,
        state=state,
        requested_by=by,
        reason=reason.strip(),
    )
    audit.append(
        f"step.{state}",
        actor=by,
        incident=incident,
        obj=execution,
        data={"step": step.number, "title": step.title, "reason": execution.reason},
        request=request,
    )
    return TickResult(execution)


def add_note(
    *,
    incident: Incident,
    text: str,
    by: AbstractBaseUser,
    step: Step | None = None,
    request: HttpRequest | None = None,
    request_key: str = "",
) -> AuditEvent:
    """Add a note (an event of the incident). With a `request_key`, a repeat by
    the same person returns the first note's event instead of a second note."""
    text = text.strip()
    if not text:
        raise ValueError("A note needs some text.")
    with _once("note", by, request_key):
        if request_key:
            first = AuditEvent.objects.filter(
                incident=incident,
                verb="note.added",
                actor_id=by.pk,
                data__request_key=request_key,
            ).first()
            if first is not None:
                return first
        data = {"text": text, "step": step.number if step else None}
        if request_key:
            data["request_key"] = request_key
        return audit.append(
            "note.added", actor=by, incident=incident, data=data, request=request
        )


# --- running commands ------------------------------------------------------------------


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
    from probes.commands import parameter_problem

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
PREVIEW_NONCE_KEY = "preview"
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
    by: AbstractBaseUser,
) -> str:
    """Signed proof that this person previewed exactly this command text and these
    parameters; the confirmation must carry it back. The nonce makes it single
    use: the run it confirms records it (see request_run)."""
    return signing.dumps(
        {
            "i": incident.pk,
            "c": command.pk,
            "u": by.pk,
            "f": command.fingerprint(params),
            "n": secrets.token_urlsafe(12),
        },
        salt=PREVIEW_SALT,
    )


def check_preview_token(
    token: str,
    *,
    incident: Incident,
    command: Command,
    params: dict[str, str],
    by: AbstractBaseUser,
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
        by.pk,
    ):
        raise RunRefused(
            "That preview was for another command or person: preview again."
        )
    changed = command.fingerprint_changes(str(data.get("f", "")), params)
    if changed:
        raise RunRefused(
            f"{changed.capitalize()} changed since the preview: preview it again."
        )
    return data["n"]


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


@transaction.atomic
def request_run(
    *,
    incident: Incident,
    command: Command,
    params: dict[str, str],
    by: AbstractBaseUser,
    confirmation: str = "",
    preview: str | None = None,
    break_glass_reason: str = "",
    break_glass: bool = False,
    request_key: str = "",
    request: HttpRequest | None = None,
) -> RunResult:
    """Queue one run of a command for an incident and send it on commit. Actions
    need the typed word and a preview token bound to the exact command and
    parameters, used once; approval-required actions wait for a second person
    unless a commander breaks glass (with a reason). A double click (same request
    key from the same person) or a second person pressing Run while the same
    command with the same parameters is in flight gets that execution, not a new
    one. `preview=None` skips the preview check (internal callers and tests of the
    pipeline only; views always pass it)."""
    from probes.commands import confirm_word, display_text, missing_targets
    from probes.dispatch import dispatch

    from . import access

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
    breaking_glass = False
    nonce = ""
    if command.kind == Command.Kind.ACTION:
        word = confirm_word(command)
        if confirmation.strip().lower() != word:
            raise RunRefused(f"Type “{word}” to confirm this action.")
        if preview is not None:
            nonce = check_preview_token(
                preview, incident=incident, command=command, params=values, by=by
            )
        if command.requires_approval and break_glass_reason:
            if not access.can_break_glass(by, command):
                raise RunRefused(
                    "Only a commander who may run this action can break glass."
                )
            breaking_glass = True
    absent = missing_targets(command)
    if absent:
        raise RunRefused(
            f"Not configured: set {', '.join(absent)} on the console and its workers."
        )

    locked = Incident.objects.select_for_update().get(pk=incident.pk)
    if not locked.is_active:  # resolved while this request waited for the lock
        raise RunRefused("The incident is resolved; reopen it to run commands.")
    runs = incident.executions.filter(command=command)
    if request_key:
        # A key is one person's one page load: someone else's key never returns
        # their run (the key travels in HTML that might be shared).
        clicked = runs.filter(request_key=request_key, requested_by=by).first()
        if clicked is not None:
            return RunResult(clicked, created=False)
    if nonce:
        used = _preview_used(incident, nonce)
        if used is not None:
            raise RunRefused(
                f"That preview already confirmed a run at {used.created_at:%H:%M:%S} UTC; "
                "preview the action again to run it again."
            )
    in_flight = runs.filter(
        state__in=StepExecution.IN_FLIGHT, parameters=values
    ).first()
    if in_flight is not None:
        return RunResult(in_flight, created=False)

    needs_approval = command.requires_approval and not breaking_glass
    now = timezone.now()
    execution = StepExecution.objects.create(
        incident=incident,
        step=command.step,  # empty for a Diagnosis command
        command=command,
        state=StepExecution.State.AWAITING_APPROVAL
        if needs_approval
        else StepExecution.State.QUEUED,
        requested_by=by,
        parameters=values,
        command_text=display_text(command, values),
        request_key=request_key,
        fingerprint=command.fingerprint(values),
        approval_expires_at=(now + timedelta(minutes=settings.APPROVAL_TTL_MINUTES))
        if needs_approval
        else None,
        break_glass=breaking_glass,
        reason=break_glass_reason if breaking_glass else "",
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
    if needs_approval:
        verb = "execution.approval_requested"
        data["expires_at"] = execution.approval_expires_at.isoformat()
    elif breaking_glass:
        verb = "execution.break_glass"
        data["reason"] = execution.reason
    else:
        verb = "execution.requested"
    audit.append(
        verb, actor=by, incident=incident, obj=execution, data=data, request=request
    )
    if not needs_approval:
        transaction.on_commit(lambda: dispatch(execution.pk, command.kind))
    return RunResult(execution, created=True)


def decide_approval(
    *,
    execution: StepExecution,
    approve: bool,
    by: AbstractBaseUser,
    reason: str = "",
    request: HttpRequest | None = None,
) -> StepExecution:
    """A second person approves (the run is sent at once) or rejects a request.
    Refused for the requester, without approve_actions, after expiry, on a
    resolved incident, or when the command or its parameters changed since it
    was requested."""
    reason = clean_reason(reason)
    expires = execution.approval_expires_at
    if (
        execution.state == StepExecution.State.AWAITING_APPROVAL
        and expires
        and timezone.now() > expires
    ):
        expire(execution)  # committed on its own: the refusal below must not undo it
        raise RunRefused(
            f"The request expired at {expires:%H:%M:%S} UTC; ask for it again."
        )
    return _decide(
        execution=execution, approve=approve, by=by, reason=reason, request=request
    )


def _not_waiting(execution: StepExecution) -> str:
    """Why a request can no longer be decided, in words: who decided it and when,
    or what became of it."""
    who = execution.approved_by.get_username() if execution.approved_by else None
    when = f" at {execution.approved_at:%H:%M:%S} UTC" if execution.approved_at else ""
    state = execution.get_state_display().lower()
    if execution.state == StepExecution.State.REJECTED:
        return f"{who or 'Someone'} already rejected this request{when}."
    if who:
        return f"{who} already approved this request{when}; the run is {state}."
    if execution.state == StepExecution.State.CANCELLED:
        return f"This request was cancelled ({execution.summary or 'no reason given'})."
    return f"This request is no longer waiting for approval: the run is {state}."


@transaction.atomic
def _decide(
    *,
    execution: StepExecution,
    approve: bool,
    by: AbstractBaseUser,
    reason: str = "",
    request: HttpRequest | None = None,
) -> StepExecution:
    """decide_approval's locked part (expiry is checked again: it may have passed
    while waiting for the lock). The incident's row is locked first, as
    change_status does, so a resolve and an approval cannot cross."""
    from probes.dispatch import dispatch

    from . import access

    incident = Incident.objects.select_for_update().get(pk=execution.incident_id)
    execution = (
        StepExecution.objects.select_for_update(of=("self",))
        .select_related("command__playbook", "incident", "step", "approved_by")
        .get(pk=execution.pk)
    )
    if execution.state != StepExecution.State.AWAITING_APPROVAL:
        raise RunRefused(_not_waiting(execution))
    if execution.requested_by_id == by.pk:
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
    execution.state = (
        StepExecution.State.QUEUED if approve else StepExecution.State.REJECTED
    )
    if not approve:
        execution.finished_at = execution.approved_at
        execution.summary = f"Rejected by {by.get_username()}: {reason}"[:500]
    execution.save()
    audit.append(
        "execution.approved" if approve else "execution.rejected",
        actor=by,
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
        request=request,
    )
    if approve:
        transaction.on_commit(lambda: dispatch(execution.pk, execution.command.kind))
    return execution


def expire(execution: StepExecution) -> bool:
    """An approval request nobody answered in time is cancelled, never run later."""
    updated = StepExecution.objects.filter(
        pk=execution.pk, state=StepExecution.State.AWAITING_APPROVAL
    ).update(
        state=StepExecution.State.CANCELLED,
        finished_at=timezone.now(),
        summary="The approval request expired.",
    )
    if updated:
        audit.append(
            "execution.expired",
            actor_name="console",
            incident=execution.incident,
            obj=execution,
            data={
                "step": execution.step.number if execution.step else None,
                "command": execution.command_text[:300],
            },
        )
    return bool(updated)
