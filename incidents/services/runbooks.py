"""Runbook import: a Markdown file becomes a revision; grants follow its playbooks."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.contenttypes.models import ContentType
from django.db import DatabaseError, transaction
from django.db.models import Max
from guardian.models import GroupObjectPermission, UserObjectPermission

from .. import access, audit
from .. import runbook as rb
from ..actors import Actor
from ..models import Command, Playbook, Runbook, Step
from ..runbook.slugs import slugify


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


# The system identities that may import: `manage.py import_runbook`.
IMPORTERS = frozenset({"manage.py"})


def import_runbook(
    *, source: bytes | str, actor: Actor, source_name: str = ""
) -> ImportResult:
    """Import a runbook file as a new revision, or do nothing if the current revision
    has the same content. Raises RunbookError (naming the line) before writing
    anything when the file cannot be read as a runbook."""
    access.check(actor, access.IMPORT_RUNBOOKS, systems=IMPORTERS)
    with transaction.atomic():
        return _import(source, source_name, actor)


def _import(source: bytes | str, source_name: str, actor: Actor) -> ImportResult:
    parsed = rb.parse_runbook(source)
    _check_source_name(source_name)
    key = slugify(parsed.title) or "runbook"
    revisions = Runbook.objects.select_for_update().filter(key=key)
    current = revisions.filter(is_current=True).first()
    if (
        current
        and current.sha256 == parsed.sha256
        and current.parser_version == rb.PARSER_VERSION
    ):
        audit.append(
            "runbook.unchanged",
            actor=actor,
            obj=current,
            data={"sha256": parsed.sha256},
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
        imported_by=actor.user,
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
        actor=actor,
    )
    return ImportResult(runbook, parsed, created=True)


def carry_grants(previous: Runbook, playbooks: list[Playbook]) -> None:
    """Per-playbook grants follow a playbook (by slug) into the new revision, so a
    re-import never silently takes away, or hands out, the right to act."""
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
