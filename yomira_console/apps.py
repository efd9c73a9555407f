from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    """The project as an app (its management commands, the offline store's hook)."""

    name = "yomira_console"
    verbose_name = "Yomira console"

    def ready(self) -> None:
        # Every process that can import a runbook (web, `manage.py import_runbook`)
        # keeps the offline pages in step with it.
        from incidents.events import audit_event_committed

        from . import offline

        audit_event_committed.connect(
            offline.on_audit_event, dispatch_uid="offline-pages-on-import"
        )
