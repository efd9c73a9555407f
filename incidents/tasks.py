"""Celery tasks: each takes a primary key (or nothing) and calls one function.

Probes are read-only, so a redelivery after a lost worker is fine: acks late.
Actions run at most once: acknowledged on receipt, never retried by Celery; the
conditional claim makes any duplicate delivery a no-op either way."""

from celery import shared_task
from celery.signals import task_prerun
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import connections

from .services import execution, runs, sweeper, workers


@task_prerun.connect
def forget_content_types(**kwargs: object) -> None:
    """The test suite truncates and recreates content types between tests, which a
    long-lived worker would otherwise remember by their old ids (production never
    renumbers them, so this is off unless the tests turn it on)."""
    if settings.WORKER_FORGETS_CONTENT_TYPES:
        ContentType.objects.clear_cache()


@task_prerun.connect
def check_database_connections(**kwargs: object) -> None:
    """The worker keeps its database connections from task to task
    (CELERY_DB_REUSE_MAX). As Django does before each request: drop one that
    broke or outlived CONN_MAX_AGE, and have the next query check the connection
    first (CONN_HEALTH_CHECKS), so a restarted database costs one reconnect, not
    a failed task. (An eager task inside a transaction is left alone.)"""
    for conn in connections.all(initialized_only=True):
        if not conn.in_atomic_block:
            conn.close_if_unusable_or_obsolete()


@shared_task(
    name=runs.RUN_PROBE_TASK,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def run_probe(execution_id: int) -> str | None:
    return execution.execute(execution_id)


@shared_task(
    name=runs.RUN_ACTION_TASK, acks_late=False, ignore_result=True, max_retries=0
)
def run_action(execution_id: int) -> str | None:
    return execution.execute(execution_id)


@shared_task(ignore_result=True)
def sweep_stale_executions() -> int:
    swept = sweeper.sweep()
    # After the sweep: /health/ready's `beat` says the sweeper ran and finished.
    workers.sweeper_ran()
    workers.forget_old()
    return swept
