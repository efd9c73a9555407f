"""Writes that touch several models: keyword-only and atomic."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Max
from django.http import HttpRequest
from django.utils import timezone

from . import audit
from . import runbook as rb
from .models import (
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
    for p in parsed.playbooks:
        _save_playbook(runbook, p)
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
            line=c.line,
        )
        for position, (step, c) in enumerate(owned, start=1)
    )
    return playbook


# --- incidents ------------------------------------------------------------------------


@transaction.atomic
def open_incident(
    *,
    playbook: Playbook,
    title: str,
    by: AbstractBaseUser,
    request: HttpRequest | None = None,
) -> Incident:
    incident = Incident.objects.create(
        playbook=playbook,
        title=title.strip(),
        severity=playbook.severity,
        opened_by=by,
        commander=by,
    )
    audit.append(
        "incident.opened",
        actor=by,
        incident=incident,
        obj=incident,
        data={
            "title": incident.title,
            "playbook": playbook.number,
            "playbook_title": playbook.title,
            "runbook_revision": playbook.runbook.revision,
            "severity": incident.severity,
        },
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


@transaction.atomic
def add_note(
    *,
    incident: Incident,
    text: str,
    by: AbstractBaseUser,
    step: Step | None = None,
    request: HttpRequest | None = None,
) -> None:
    text = text.strip()
    if not text:
        raise ValueError("A note needs some text.")
    audit.append(
        "note.added",
        actor=by,
        incident=incident,
        data={"text": text, "step": step.number if step else None},
        request=request,
    )


# --- running commands ------------------------------------------------------------------


class RunRefused(ValueError):
    """A run the console will not start, with the reason a responder can act on."""


@dataclass
class RunResult:
    execution: StepExecution
    created: bool


MAX_PARAMETER_LENGTH = 500


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
    return values


@transaction.atomic
def request_run(
    *,
    incident: Incident,
    command: Command,
    params: dict[str, str],
    by: AbstractBaseUser,
    confirmation: str = "",
    request_key: str = "",
    request: HttpRequest | None = None,
) -> RunResult:
    """Queue one run of a command for an incident and send it on commit. A double
    click (same request key) or a second person pressing Run while the same command
    with the same parameters is queued or running gets that execution, not a new one."""
    from probes.commands import confirm_word, display_text, missing_targets
    from probes.dispatch import dispatch

    if command.playbook_id != incident.playbook_id:
        raise RunRefused("That command is not part of this incident's playbook.")
    if not command.is_runnable:
        raise RunRefused("This command is manual: copy it and run it by hand.")
    if not incident.is_active:
        raise RunRefused("The incident is resolved; reopen it to run commands.")
    values = clean_parameters(command, params)
    if command.kind == Command.Kind.ACTION:
        word = confirm_word(command)
        if confirmation.strip().lower() != word:
            raise RunRefused(f"Type “{word}” to confirm this action.")
    absent = missing_targets(command)
    if absent:
        raise RunRefused(
            f"Not configured: set {', '.join(absent)} on the console and its workers."
        )

    Incident.objects.select_for_update().get(pk=incident.pk)
    runs = incident.executions.filter(command=command)
    existing = None
    if request_key:
        existing = runs.filter(request_key=request_key).first()
    if existing is None:
        existing = runs.filter(
            state__in=StepExecution.IN_FLIGHT, parameters=values
        ).first()
    if existing is not None:
        return RunResult(existing, created=False)

    execution = StepExecution.objects.create(
        incident=incident,
        step=command.step,  # empty for a Diagnosis command
        command=command,
        state=StepExecution.State.QUEUED,
        requested_by=by,
        parameters=values,
        command_text=display_text(command, values),
        request_key=request_key[:64],
    )
    audit.append(
        "execution.requested",
        actor=by,
        incident=incident,
        obj=execution,
        data={
            "step": command.step.number if command.step else None,
            "command": execution.command_text[:300],
            "kind": command.kind,
            "executor": command.executor,
            "parameters": sorted(values),
        },
        request=request,
    )
    transaction.on_commit(lambda: dispatch(execution.pk, command.kind))
    return RunResult(execution, created=True)
