"""`manage.py render_offline_pages [--force]`: bring the offline playbook pages
(OFFLINE_PAGES_DIR) up to date with the current runbooks now."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from yomira_console import offline


class Command(BaseCommand):
    help = "Store every current playbook's page for reading while the database is down."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument(
            "--force", action="store_true", help="Render even if the store is fresh."
        )

    def handle(self, *args, force: bool = False, **options) -> None:  # noqa: ANN002, ANN003
        root = offline.pages_dir()
        if root is None:
            raise CommandError("OFFLINE_PAGES_DIR is empty: the offline store is off.")
        wrote = offline.refresh(force=force)
        stored = offline.manifest(root) or {}
        count = len(stored.get("playbooks", []))
        self.stdout.write(
            f"{'Stored' if wrote else 'Already up to date:'} {count} playbook "
            f"page{'s' if count != 1 else ''} in {root}"
        )
