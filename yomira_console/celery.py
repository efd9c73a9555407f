"""The console's Celery app: configured from Django settings (CELERY_* names)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "yomira_console.settings")

app = Celery("yomira_console")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
