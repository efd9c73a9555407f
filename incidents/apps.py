from django.apps import AppConfig


class IncidentsConfig(AppConfig):
    name = "incidents"
    verbose_name = "Incidents and runbooks"

    def ready(self) -> None:
        from . import signals  # noqa: F401  (connects the audit receivers)
