"""`manage.py import_runbook PATH [--dry-run] [--json]` (a contract: see DESIGN)."""

import json
from collections import Counter
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from incidents.actors import Actor
from incidents.runbook import Runbook, RunbookError
from incidents.services import check_runbook, import_runbook

# Who the audit log says imported the file (the command has no signed-in person).
IMPORTER = Actor.system("manage.py")


class Command(BaseCommand):
    help = "Import a Markdown runbook of incident playbooks as a new revision."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "path",
            nargs="?",
            help="The runbook's Markdown file (default: DEFAULT_RUNBOOK, the bundled one).",
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

    def handle(
        self, *args: object, path: str, dry_run: bool, as_json: bool, **options: object
    ) -> None:
        path = path or str(settings.DEFAULT_RUNBOOK)
        try:
            source = Path(path).read_bytes()
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror or exc}") from None
        name = Path(path).name
        try:
            # The dry run makes the same checks as the import (the same parse, the
            # same limits, the same database checks), so both give the same verdict.
            if dry_run:
                parsed, result = check_runbook(source=source, source_name=name), None
            else:
                result = import_runbook(source=source, source_name=name, actor=IMPORTER)
                parsed = result.parsed
        except RunbookError as exc:
            raise CommandError(f"{path}:{exc.line}: {exc.message}") from None

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


def _summary(parsed: Runbook) -> str:
    kinds = Counter(c.kind for p in parsed.playbooks for c in p.commands)
    steps = sum(len(p.steps) for p in parsed.playbooks)
    version = f"version {parsed.version}, " if parsed.version else ""
    return (
        f"{version}{len(parsed.playbooks)} playbooks, {steps} steps, "
        f"{sum(kinds.values())} commands ({kinds['probe']} probes, "
        f"{kinds['action']} actions, {kinds['manual']} manual)"
    )
