"""Runbook import: a Markdown file, or a directory of them, becomes a revision;
grants follow its playbooks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from django.contrib.contenttypes.models import ContentType
from django.db import DatabaseError, transaction
from django.db.models import Max
from guardian.models import GroupObjectPermission, UserObjectPermission

from .. import access, audit
from .. import runbook as rb
from ..actors import Actor
from ..models import Command, Playbook, Runbook, Step
from ..runbook.slugs import slugify
from .severities import aliases as severity_aliases


@dataclass
class ImportResult:
    runbook: Runbook
    parsed: rb.Runbook
    created: bool


@dataclass
class RunbookSource:
    """What is imported: one file (`text`), or a tree of files (`files`, relative
    POSIX paths; `ignored` lists the files of the tree that are not Markdown)."""

    name: str = ""
    text: bytes | str | None = None
    files: Sequence[tuple[str, bytes]] = ()
    ignored: Sequence[str] = field(default_factory=list)
    title: str = ""  # a tree's title (default: its name)
    allow_partial: bool = False

    def parse(self) -> rb.Runbook:
        """The same parse for the dry run, the import and the upload's diff."""
        severities = severity_aliases()
        if self.text is not None:
            return rb.parse_runbook(
                self.text,
                path=self.name,
                severities=severities,
                allow_partial=self.allow_partial,
            )
        return rb.parse_tree(
            self.files,
            title=self.title or self.name or "Runbooks",
            ignored=self.ignored,
            severities=severities,
            allow_partial=self.allow_partial,
        )

    def stored_text(self) -> str:
        """The Markdown kept with the revision: a tree's files one after another,
        each under a comment naming it."""
        if self.text is not None:
            text = self.text
            return text.decode("utf-8-sig") if isinstance(text, bytes) else text
        return "\n".join(
            f"<!-- file: {path} -->\n{data.decode('utf-8-sig')}"
            for path, data in sorted(self.files)
        )


def check_runbook(
    *,
    source: bytes | str | None = None,
    source_name: str = "",
    tree: RunbookSource | None = None,
) -> rb.Runbook:
    """What `import_runbook` would refuse, without writing anything (the dry run):
    the same parse and the same checks, so both give the same verdict. Without a
    reachable database the slug check is skipped, with a warning."""
    tree = tree or RunbookSource(name=source_name, text=source)
    parsed = tree.parse()
    _check_source_name(tree.name)
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
    *,
    actor: Actor,
    source: bytes | str | None = None,
    source_name: str = "",
    tree: RunbookSource | None = None,
    audit_data: dict | None = None,
) -> ImportResult:
    """Import a runbook file (or a tree of them) as a new revision, or do nothing if
    the current revision has the same content. Raises RunbookError (naming the file
    and line) before writing anything when it cannot be read as a runbook.
    `audit_data` is added to the import's audit event (the upload's diff)."""
    access.check(actor, access.IMPORT_RUNBOOKS, systems=IMPORTERS)
    tree = tree or RunbookSource(name=source_name, text=source)
    with transaction.atomic():
        return _import(tree, actor, audit_data or {})


def _import(tree: RunbookSource, actor: Actor, audit_data: dict) -> ImportResult:
    parsed = tree.parse()
    source_name = tree.name
    _check_source_name(source_name)
    key = slugify(parsed.title) or "runbook"
    revisions = Runbook.objects.select_for_update().filter(key=key)
    current = revisions.filter(is_current=True).first()
    if current and same_reading(current, parsed):
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
    runbook = Runbook.objects.create(
        key=key,
        revision=revision,
        title=parsed.title,
        version=parsed.version,
        sha256=parsed.sha256,
        parser_version=rb.PARSER_VERSION,
        source_name=source_name,
        source=tree.stored_text(),
        files=parsed.files,
        preamble=parsed.preamble,
        sections=[{"title": s.title, "markdown": s.markdown} for s in parsed.sections],
        warnings=parsed.warnings,
        not_understood=parsed.not_understood,
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
            "files": len(parsed.files) or 1,
            "not_understood": len(parsed.not_understood),
            **audit_data,
        },
        actor=actor,
    )
    return ImportResult(runbook, parsed, created=True)


def same_reading(current: Runbook, parsed: rb.Runbook) -> bool:
    """Importing `parsed` would change nothing: the same text, read by the same
    parser, with the same severity levels (an Admin's new alias changes how an
    unchanged file is read, and then it makes a new revision)."""
    return (
        current.sha256 == parsed.sha256
        and current.parser_version == rb.PARSER_VERSION
        and dict(current.playbooks.values_list("slug", "severity"))
        == {p.slug: p.severity for p in parsed.playbooks}
    )


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
        severity_text=parsed.severity_text,
        severity_note=parsed.severity_note,
        path=parsed.path,
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
