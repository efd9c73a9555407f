"""Drills: practise a playbook against the simulated Yomira stack (issue 12).

A scenario (one data file each, drills/scenarios/) injects a fault into the
simulated stack and fires its alert through the console's own intake; the incident
it opens is marked DRILL; the drill ends when the playbook's own health probes pass,
and its scorecard is kept. Development only: nothing here runs unless SANDBOX is on.
"""

from django.apps import AppConfig


class DrillsConfig(AppConfig):
    name = "drills"
    verbose_name = "Drills"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import exports, signals, timeline  # noqa: F401 - signals: receivers

        exports.register()
        timeline.register()
