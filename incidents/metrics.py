"""Figures only a process can see, for `/metrics` (yomira_console/metrics.py).

Everything the database can answer is counted there, at scrape time. What is left
is measured where it happens: how long an audit append takes, and what each
sweeper pass did. Several processes observe them (gunicorn's workers, Celery's
pool), so under PROMETHEUS_MULTIPROC_DIR prometheus-client keeps each process's
values in a file of that directory and the scrape adds them up.

This module sits low in incidents (next to the runbook parser) and imports only
prometheus-client, so that audit and the services may observe into it."""

from __future__ import annotations

import glob
import os
import socket

from prometheus_client import Counter, Histogram, values

# The directory's files are named `<type>_<identity>.db`. prometheus-client names
# them by pid alone, but docker-compose's web and worker containers share the
# directory and each has its own pid 1, 7, 8...: two processes would write one
# file. The host name (a container's id) makes the names distinct. No "_" in it:
# the collector splits file names on "_".
HOST = socket.gethostname().replace("_", "-")


def process_identity(pid: int | None = None) -> str:
    """This process's (or `pid`'s, on this host) part of its files' names."""
    return f"{HOST}-{os.getpid() if pid is None else pid}"


def files_left_by_dead_processes(directory: str) -> list[str]:
    """The files of this host's processes that are not running any more: what a
    web start-up clears. Another host's (container's) files, and those of this
    host's live processes (a Celery worker beside gunicorn), are still written."""
    left = []
    for path in glob.glob(os.path.join(glob.escape(directory), f"*_{HOST}-*.db")):
        pid = path.rsplit("-", 1)[1].removesuffix(".db")
        if pid.isdigit() and not _running(int(pid)):
            left.append(path)
    return left


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # no signal sent: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # Before any metric below exists: each value is created from this class.
    values.ValueClass = values.MultiProcessValue(process_identity)


# Up to the append lock's wait: a slow append is usually one waiting for another
# transaction that holds it, and every audited action waits with it.
AUDIT_APPEND_SECONDS = Histogram(
    "yomira_audit_append_seconds",
    "Time to append one audit event (lock wait and insert), in seconds.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)

SWEEPER_RUNS = Counter(
    "yomira_sweeper_runs",
    "Sweeper passes finished (celery beat asks for one every 30 s).",
)
# What a pass did, one label value per kind of repair (see services/sweeper.py).
SWEEPER_SWEPT = Counter(
    "yomira_sweeper_swept",
    "Executions the sweeper acted on, by what it did.",
    ["action"],
)
STALE_ENDED = "stale_ended"  # left running by a dead worker: failed/outcome_unknown
RESENT = "resent"  # a queued probe no worker picked up, sent once more
NEVER_CLAIMED = "dispatch_failed"  # queued too long: ended dispatch_failed
APPROVAL_EXPIRED = "approval_expired"  # nobody approved it in time
SWEEPER_ACTIONS = (STALE_ENDED, RESENT, NEVER_CLAIMED, APPROVAL_EXPIRED)
for _action in SWEEPER_ACTIONS:
    SWEEPER_SWEPT.labels(_action)  # present at 0 from the start, for rate()
