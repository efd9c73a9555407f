"""gunicorn's hooks for /metrics in multiprocess mode (README, "Metrics").

gunicorn reads ./gunicorn.conf.py by itself (the image's working directory is
/app); the Dockerfile's command line gives the rest of its settings. Both hooks do
nothing unless PROMETHEUS_MULTIPROC_DIR is set.

Importing incidents.metrics creates this process's (the master's) metric files,
which nothing writes to: harmless (their values stay 0). Unset, nothing is
imported."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gunicorn.arbiter import Arbiter
    from gunicorn.workers.base import Worker


def on_starting(server: Arbiter) -> None:
    """Before the first worker: remove what this host's processes that are gone
    left there (prometheus-client needs the directory cleared at start-up: a new
    process reusing an old pid would carry on from the old one's figures, and a
    dead one's live gauges would still count). Other containers' files, and this
    host's running processes' (a Celery worker beside gunicorn), stay."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return
    os.makedirs(directory, exist_ok=True)
    from incidents.metrics import files_left_by_dead_processes  # (see above)

    for path in files_left_by_dead_processes(directory):
        os.remove(path)


def child_exit(server: Arbiter, worker: Worker) -> None:
    """A worker ended: its live gauges (if any) must not count any more."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    from prometheus_client import multiprocess

    from incidents.metrics import process_identity

    multiprocess.mark_process_dead(process_identity(worker.pid))
