"""Who is there to run things: the workers' heartbeats and the sweeper's last run.

Each Celery worker beats (one upsert) every WORKER_HEARTBEAT_INTERVAL seconds from a
thread of its own (started by yomira_console/celery.py when the worker is ready),
naming the queues it consumes; it marks its row stopped when it shuts down cleanly.
A worker is live while its last beat is younger than WORKER_HEARTBEAT_STALE. The
beat sweeper records each run the same way, under its own name, so /health/ready
can say whether beat is running.

Reading is cheap on purpose: the checklist asks for every runnable command, so the
answer is kept per process for WORKER_SITES_CACHE_SECONDS."""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection
from django.utils import timezone

from probes import sites as probe_sites

from ..models import WorkerHeartbeat

log = logging.getLogger(__name__)
Kind = WorkerHeartbeat.Kind
SWEEPER_NAME = "beat:sweep_stale_executions"
DEFAULT_QUEUE = "celery"  # Celery's own default; what a run with no site is sent to


def beat(
    *,
    hostname: str,
    queues: list[str],
    site: str = "",
    pid: int | None = None,
    kind: str = Kind.WORKER,
    started_at: datetime | None = None,
) -> None:
    """Record that this worker (or the sweeper) is alive now: one INSERT ... ON
    CONFLICT UPDATE, so the row is there from the first beat and never doubled."""
    now = timezone.now()
    WorkerHeartbeat.objects.bulk_create(
        [
            WorkerHeartbeat(
                hostname=hostname,
                kind=kind,
                site=site,
                queues=sorted(queues),
                pid=pid,
                started_at=started_at or now,
                beat_at=now,
                stopped_at=None,
            )
        ],
        update_conflicts=True,
        unique_fields=["hostname"],
        update_fields=["kind", "site", "queues", "pid", "beat_at", "stopped_at"]
        + (["started_at"] if started_at else []),
    )


def stopped(hostname: str) -> None:
    """A worker shut down cleanly: it is not live any more, at once (its row
    stays, so the console can say when its site was last seen)."""
    WorkerHeartbeat.objects.filter(hostname=hostname).update(stopped_at=timezone.now())


def sweeper_ran() -> None:
    """The beat sweeper's mark that it ran (see /health/ready's `beat`)."""
    beat(hostname=SWEEPER_NAME, queues=[], kind=Kind.SWEEPER, pid=os.getpid())


def stale_after() -> timedelta:
    return timedelta(seconds=settings.WORKER_HEARTBEAT_STALE)


def live(now: datetime | None = None):  # noqa: ANN201 - a QuerySet of WorkerHeartbeat
    """Workers whose last beat is recent and that have not stopped."""
    now = now or timezone.now()
    return WorkerHeartbeat.objects.filter(
        kind=Kind.WORKER, stopped_at__isnull=True, beat_at__gte=now - stale_after()
    )


def forget_old(now: datetime | None = None) -> int:
    """Rows of workers gone for WORKER_HEARTBEAT_FORGET seconds (containers get new
    hostnames: without this the table would only grow)."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.WORKER_HEARTBEAT_FORGET)
    deleted, _ = WorkerHeartbeat.objects.filter(
        kind=Kind.WORKER, beat_at__lt=cutoff
    ).delete()
    return deleted


# --- sites: is anyone there to run a site's commands? ----------------------------


@dataclass(frozen=True)
class SiteStatus:
    site: str  # "" = the default queue
    live: bool
    last_seen: datetime | None  # the latest beat of any worker of the site

    def age_words(self, now: datetime | None = None) -> str:
        if self.last_seen is None:
            return "no worker has ever reported"
        seconds = int(((now or timezone.now()) - self.last_seen).total_seconds())
        # Whole minutes: the warning is cached in the checklist's HTML, keyed by
        # this text, so it should not change every second.
        if seconds < 60:
            return "last seen under a minute ago"
        if seconds < 7200:
            return f"last seen {seconds // 60} min ago"
        return f"last seen {seconds // 3600} h ago"

    def warning(self) -> str:
        """What the checklist shows next to Run, and the refusal's reason."""
        label = f"site {self.site}" if self.site else "the default queue"
        return f"{label} has no live worker ({self.age_words()}): a run would wait"


_cache_lock = threading.Lock()
_cache: tuple[float, dict[str, tuple[bool, datetime | None]]] | None = None


def _queues_state() -> dict[str, tuple[bool, datetime | None]]:
    """{queue: (any live worker consumes it, the latest beat of any worker that
    does)}, from one small query, kept for WORKER_SITES_CACHE_SECONDS."""
    global _cache
    now_mono = time.monotonic()
    with _cache_lock:
        if (
            _cache is not None
            and now_mono - _cache[0] < settings.WORKER_SITES_CACHE_SECONDS
        ):
            return _cache[1]
    now = timezone.now()
    fresh = now - stale_after()
    state: dict[str, tuple[bool, datetime | None]] = {}
    rows = WorkerHeartbeat.objects.filter(kind=Kind.WORKER).values_list(
        "queues", "beat_at", "stopped_at"
    )
    for queues, beat_at, stopped_at in rows:
        alive = stopped_at is None and beat_at >= fresh
        last = stopped_at or beat_at
        for queue in queues or []:
            was_live, was_last = state.get(queue, (False, None))
            latest = max(last, was_last) if was_last else last
            state[queue] = (was_live or alive, latest)
    with _cache_lock:
        _cache = (now_mono, state)
    return state


def forget_cache() -> None:
    """Drop the per-process answer (tests; a worker that just beat)."""
    global _cache
    with _cache_lock:
        _cache = None


def site_status(site: str) -> SiteStatus:
    queue = probe_sites.queue_for(site) or DEFAULT_QUEUE
    is_live, last_seen = _queues_state().get(queue, (False, None))
    return SiteStatus(site, is_live, last_seen)


def sites_signature(sites: list[str]) -> str:
    """A short text that changes when any of these sites' warnings would (which are
    down, and their age in minutes): cached HTML that shows them is keyed by it."""
    parts = []
    for site in sorted(sites):
        status = site_status(site)
        if not status.live:
            parts.append(f"{site}={status.age_words()}")
    return ",".join(parts)


# --- the worker's side: a thread that beats --------------------------------------


class Heartbeat(threading.Thread):
    """Beats for one worker every WORKER_HEARTBEAT_INTERVAL seconds until stopped.
    Runs in the worker's main process (the one that consumes), with its own
    database connection; a failed beat is logged and tried again next time."""

    def __init__(self, *, hostname: str, queues: list[str], site: str) -> None:
        super().__init__(name="yomira-heartbeat", daemon=True)
        self.hostname = hostname
        self.queues = queues
        self.site = site
        self.started = timezone.now()
        self.halt = threading.Event()

    def run(self) -> None:
        try:
            while not self.halt.is_set():
                self.beat_once()
                self.halt.wait(settings.WORKER_HEARTBEAT_INTERVAL)
            self._stopped()
        finally:
            connection.close()

    def beat_once(self) -> None:
        close_old_connections()  # a connection the database dropped is replaced
        try:
            beat(
                hostname=self.hostname,
                queues=self.queues,
                site=self.site,
                pid=os.getpid(),
                started_at=self.started,
            )
        except DatabaseError as exc:
            log.warning("worker heartbeat not recorded: %s", exc)
            connection.close()

    def _stopped(self) -> None:
        try:
            stopped(self.hostname)
        except DatabaseError as exc:
            log.warning("worker stop not recorded: %s", exc)

    def stop(self, timeout: float = 5.0) -> None:
        self.halt.set()
        self.join(timeout)
