from django.apps import AppConfig


class NotifyConfig(AppConfig):
    name = "notify"
    verbose_name = "Notification channels"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from incidents.events import audit_event_committed
        from incidents.models import AuditEvent

        # The panels register themselves; the tasks must be known to the web
        # process's Celery app, which sends them by name (services.dispatch).
        from . import panels, tasks  # noqa: F401
        from .subscription import on_audit_event

        audit_event_committed.connect(
            on_audit_event, sender=AuditEvent, dispatch_uid="notify.subscription"
        )
