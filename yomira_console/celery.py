"""The console's Celery app: configured from Django settings (CELERY_* names)."""

import os

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger

from yomira_console import broker

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "yomira_console.settings")
broker.install()  # filesystem:// with atomic message files (see broker.py)

app = Celery("yomira_console")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@after_setup_logger.connect
@after_setup_task_logger.connect
def _redact_worker_logs(logger, **kwargs):  # noqa: ANN001, ANN003, ANN202
    """The worker's own log handlers redact too (yomira_console/logfilter.py)."""
    from yomira_console.logfilter import redact_handlers

    redact_handlers(logger)
