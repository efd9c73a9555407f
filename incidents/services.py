"""Writes that touch several models: keyword-only and atomic."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Max

from . import runbook as rb
from .models import Command, Playbook, Runbook, Step
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
    key = slugify(parsed.title) or "runbook"
    revisions = Runbook.objects.select_for_update().filter(key=key)
    current = revisions.filter(is_current=True).first()
    if (
        current
        and current.sha256 == parsed.sha256
        and current.parser_version == rb.PARSER_VERSION
    ):
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
