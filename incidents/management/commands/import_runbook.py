"""`manage.py import_runbook PATH [--dry-run] [--json] [--allow-partial] [--title T]`
(a contract: see DESIGN). PATH is a Markdown file or a directory of them."""

import json
from collections import Counter
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from incidents.actors import Actor
from incidents.runbook import Runbook, RunbookError, read_directory
from incidents.services import RunbookSource, check_runbook, import_runbook

# Who the audit log says imported the file (the command has no signed-in person).
IMPORTER = Actor.system("manage.py")


class Command(BaseCommand):
    help = (
        "Import a Markdown runbook of incident playbooks, or a directory of them "
        "(one playbook per file), as a new revision."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "path",
            nargs="?",
            help="A Markdown file, or a directory: every .md file under it, as one "
            "runbook (default: DEFAULT_RUNBOOK, the bundled one).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Parse and report; import nothing."
        )
        parser.add_argument(
            "--json",
            action="store_true",
            dest="as_json",
            help="Print the parsed runbook as one JSON document.",
        )
        parser.add_argument(
            "--allow-partial",
            action="store_true",
            help="Accept a file whose playbooks mostly have no steps (they are listed "
            "as not understood instead of refused).",
        )
        parser.add_argument(
            "--title",
            default="",
            help="A directory's runbook title (default: the directory's name).",
        )

    def handle(
        self,
        *args: object,
        path: str,
        dry_run: bool,
        as_json: bool,
        allow_partial: bool,
        title: str,
        **options: object,
    ) -> None:
        path = path or str(settings.DEFAULT_RUNBOOK)
        tree = _source(Path(path), allow_partial=allow_partial, title=title)
        try:
            # The dry run makes the same checks as the import (the same parse, the
            # same limits, the same database checks), so both give the same verdict.
            if dry_run:
                parsed, result = check_runbook(tree=tree), None
            else:
                result = import_runbook(tree=tree, actor=IMPORTER)
                parsed = result.parsed
        except RunbookError as exc:
            where = _where(path, tree, exc)
            raise CommandError(f"{where}:{exc.line}: {exc.message}") from None

        for warning in parsed.warnings:
            self.stderr.write(f"warning: {path}: {warning}")
        if as_json:
            self.stdout.write(
                json.dumps(parsed.to_contract(), ensure_ascii=False, indent=2)
            )
            return
        summary = _summary(parsed)
        if result is None:
            self.stdout.write(f"Dry run: '{parsed.title}' {summary}. Nothing imported.")
        elif result.created:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Imported '{parsed.title}' as revision {result.runbook.revision}: {summary}."
                )
            )
        else:
            self.stdout.write(
                f"Unchanged: '{parsed.title}' revision {result.runbook.revision} already has "
                f"this content (sha256 {parsed.sha256[:12]}); nothing imported."
            )
        if parsed.not_understood:
            self.stdout.write(
                f"Not understood ({len(parsed.not_understood)}), read as described:"
            )
            for line in parsed.not_understood:
                self.stdout.write(f"  {_prefixed(path, tree, line)}")
        else:
            self.stdout.write("Everything was understood.")


def _source(path: Path, *, allow_partial: bool, title: str) -> RunbookSource:
    try:
        if path.is_dir():
            files, ignored = read_directory(path)
            return RunbookSource(
                name=path.resolve().name,
                files=files,
                ignored=ignored,
                title=title or path.resolve().name,
                allow_partial=allow_partial,
            )
        return RunbookSource(
            name=path.name, text=path.read_bytes(), allow_partial=allow_partial
        )
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror or exc}") from None


def _where(path: str, tree: RunbookSource, exc: RunbookError) -> str:
    """The file at fault as the person typed it: `runbooks/` + its relative path."""
    if tree.text is None and exc.path:
        return str(Path(path) / exc.path)
    return path


def _prefixed(path: str, tree: RunbookSource, line: str) -> str:
    if tree.text is None:
        return f"{Path(path)}/{line}"
    # One file: its messages start with its name; show the path as typed.
    return line.replace(f"{tree.name}:", f"{path}:", 1) if tree.name else line


def _summary(parsed: Runbook) -> str:
    kinds = Counter(c.kind for p in parsed.playbooks for c in p.commands)
    steps = sum(len(p.steps) for p in parsed.playbooks)
    version = f"version {parsed.version}, " if parsed.version else ""
    files = ""
    if parsed.files:
        skipped = sum(1 for f in parsed.files if f.get("skipped"))
        files = f"{len(parsed.files) - skipped} files" + (
            f" ({skipped} skipped: not runbooks), " if skipped else ", "
        )
    return (
        f"{version}{files}{len(parsed.playbooks)} playbooks, {steps} steps, "
        f"{sum(kinds.values())} commands ({kinds['probe']} probes, "
        f"{kinds['action']} actions, {kinds['manual']} manual)"
    )
