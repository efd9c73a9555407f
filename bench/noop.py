"""The benchmark's baseline task: a real Celery task that does nothing but insert one
row, so the probe round trip can be read as a ratio to what the broker, the worker
and one write cost on the same machine in the same run (bench/run.py). The
benchmark's worker imports it (`celery worker -I bench.noop`); production's does not.
"""

from __future__ import annotations

from celery import shared_task
from django.db import connection

NOOP_TASK = "bench.noop"
TABLE = "bench_noop"


def create_table() -> None:
    """The row the task writes, with the database's clock as it is stored (the probe's
    finished_at is stamped in the same statement that stores its result, too)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {TABLE} (marker bigint PRIMARY KEY, "
            "stored_at timestamptz NOT NULL DEFAULT clock_timestamp())"
        )
        cursor.execute(f"TRUNCATE {TABLE}")


@shared_task(name=NOOP_TASK, ignore_result=True)
def noop(marker: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {TABLE} (marker) VALUES (%s)", [marker])
