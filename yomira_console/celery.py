"""The console's Celery app: configured from Django settings (CELERY_* names)."""

import os

from celery import Celery
from celery.signals import (
    after_setup_logger,
    after_setup_task_logger,
    celeryd_after_setup,
    celeryd_init,
    worker_ready,
    worker_shutdown,
)

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


# --- Sites and heartbeats (incidents/services/workers.py, probes/sites.py) ---------
_worker: dict = {}  # this worker process's own: whether -Q was given, its heartbeat


@celeryd_init.connect
def _remember_queue_option(options=None, **kwargs):  # noqa: ANN001, ANN003, ANN202
    _worker["queues_given"] = bool((options or {}).get("queues"))


@celeryd_after_setup.connect
def _consume_site_queue(instance=None, **kwargs):  # noqa: ANN001, ANN003, ANN202
    """WORKER_SITE=eu: this worker consumes `site.eu` only (the commands whose
    targets are at site eu), unless -Q said otherwise."""
    from probes import sites

    site = sites.worker_site()
    if site and not _worker.get("queues_given"):
        instance.app.amqp.queues.select([sites.queue_for(site)])


@worker_ready.connect
def _start_heartbeat(sender=None, **kwargs):  # noqa: ANN001, ANN003, ANN202
    """Beat from the consuming process, naming the queues it reads: the console
    knows which sites have a live worker without asking the broker."""
    from incidents.services.workers import Heartbeat
    from probes import sites

    queues = sorted(sender.app.amqp.queues.consume_from)
    site = sites.worker_site() or next(
        (sites.site_of_queue(q) for q in queues if sites.site_of_queue(q)), ""
    )
    heartbeat = Heartbeat(hostname=sender.hostname, queues=queues, site=site)
    heartbeat.start()
    _worker["heartbeat"] = heartbeat


@worker_shutdown.connect
def _stop_heartbeat(**kwargs):  # noqa: ANN003, ANN202
    heartbeat = _worker.pop("heartbeat", None)
    if heartbeat is not None:
        heartbeat.stop()  # its last act marks the row stopped
