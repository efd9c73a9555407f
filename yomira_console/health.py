"""`/health/ready`: the console's own readiness, part by part, as JSON.

Anonymous on purpose: load balancers and docker-compose ask it. So it says only
states, counts and ages, never a host, a user or an error's text (which names
them). Each part is `ok`, `degraded` or `down`, with a reason:

- database, broker: required. Either down -> HTTP 503 and status "down".
- workers (a recent heartbeat per queue), beat (the sweeper ran recently), intake
  (alert receipts waiting), notifications (messages waiting): the console still
  serves and records without them, so at worst they make the answer "degraded",
  still HTTP 200 (a load balancer keeps sending people to a console whose
  workers are gone: its pages and checklists work, and it says what is wrong).

Never hangs: the database's parts run on one thread and the broker's on
another, each given HEALTH_CHECK_TIMEOUT seconds; a part that does not answer in
time is down. The top-level `database` and `broker` keys keep their old meaning
(the part's status, "ok" when fine) for the scripts that read them."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Count, Min, Q
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

OK, DEGRADED, DOWN = "ok", "degraded", "down"
REQUIRED = ("database", "broker")
PARTS = ("database", "broker", "workers", "beat", "intake", "notifications")
# A backlog this many times older than its "stale" bound is not slow but stopped.
STOPPED_FACTOR = 10

Check = dict[str, Any]  # {"status": ..., "reason": ..., counts and ages}


def _check(status: str, reason: str = "", **facts: Any) -> Check:
    return {"status": status, "reason": reason, **facts}


def _age(now: datetime, then: datetime | None) -> float | None:
    return None if then is None else round(max((now - then).total_seconds(), 0.0), 1)


def _error(exc: BaseException) -> str:
    """An exception as a reason: its class only (its text may name hosts, users)."""
    return type(exc).__name__


# --- the database's parts (one thread, one connection) ---------------------------


def database() -> Check:
    with connection.cursor() as cursor:
        # A server that accepts but does not answer must not hold the check.
        timeout_ms = int(settings.HEALTH_CHECK_TIMEOUT * 1000)
        cursor.execute(
            "SELECT set_config('statement_timeout', %s, false)", [str(timeout_ms)]
        )
        cursor.execute("SELECT 1")
    return _check(OK)


# (queues it reads, live now, its latest sign of life)
WorkerRow = tuple[list[str], bool, datetime]


def workers(now: datetime) -> Check:
    """The workers' heartbeats, judged by judge_workers."""
    from incidents.models import WorkerHeartbeat
    from incidents.services.workers import stale_after
    from probes import sites

    fresh = now - stale_after()
    rows = [
        (queues or [], stopped is None and beat_at >= fresh, stopped or beat_at)
        for queues, beat_at, stopped in WorkerHeartbeat.objects.filter(
            kind=WorkerHeartbeat.Kind.WORKER
        ).values_list("queues", "beat_at", "stopped_at")
    ]
    try:
        configured: list[str] | None = sorted(set(sites.site_map().values()))
    except sites.SiteConfigError:
        configured = None
    return judge_workers(rows, now, configured)


def judge_workers(
    rows: list[WorkerRow], now: datetime, configured: list[str] | None
) -> Check:
    """Live workers per queue. Down: none at all. Degraded: a queue commands are
    sent to (the default one, or a configured site's) has none, or the site
    settings cannot be read (`configured` None)."""
    from incidents.services.workers import DEFAULT_QUEUE
    from probes import sites

    live_count = sum(alive for _, alive, _ in rows)
    expected = {"": DEFAULT_QUEUE} | {s: sites.queue_for(s) for s in configured or []}
    by_site = {}
    missing = []
    for site, queue in expected.items():
        mine = [(alive, last) for queues, alive, last in rows if queue in queues]
        live_here = any(alive for alive, _ in mine)
        by_site[site or "default"] = {
            "live": live_here,
            "last_seen_s": _age(now, max(last for _, last in mine)) if mine else None,
        }
        if not live_here:
            missing.append(f"site {site}" if site else "the default queue")
    facts = {"live": live_count, "stale": len(rows) - live_count, "sites": by_site}
    if live_count == 0:
        return _check(DOWN, "no worker has sent a heartbeat recently", **facts)
    if configured is None:
        return _check(DEGRADED, "the site settings cannot be read", **facts)
    if missing:
        return _check(DEGRADED, f"no live worker for {', '.join(missing)}", **facts)
    return _check(OK, **facts)


def beat(now: datetime) -> Check:
    """Down when the sweeper (every 30 s from celery beat) has not finished a run
    for HEALTH_BEAT_STALE seconds (about three runs)."""
    from incidents.models import WorkerHeartbeat
    from incidents.services.workers import SWEEPER_NAME

    last = (
        WorkerHeartbeat.objects.filter(hostname=SWEEPER_NAME)
        .values_list("beat_at", flat=True)
        .first()
    )
    facts = {"last_sweep_age_s": _age(now, last)}
    if last is None:
        return _check(
            DOWN, "the sweeper has never run (is celery beat running?)", **facts
        )
    if (now - last).total_seconds() > settings.HEALTH_BEAT_STALE:
        return _check(DOWN, "the sweeper has not run recently", **facts)
    return _check(OK, **facts)


def _backlog(
    count: int, oldest_age: float | None, stale_after: float, what: str
) -> Check:
    facts = {"count": count, "oldest_age_s": oldest_age}
    if not count or oldest_age is None or oldest_age <= stale_after:
        return _check(OK, **facts)
    if oldest_age > STOPPED_FACTOR * stale_after:
        return _check(
            DOWN, f"{what} waiting far too long: nothing is processing them", **facts
        )
    return _check(DEGRADED, f"{what} waiting longer than {int(stale_after)} s", **facts)


def intake(now: datetime) -> Check:
    """Alert receipts stored but not yet applied (the partial index on pending)."""
    from alerts.models import Receipt

    found = Receipt.objects.filter(state=Receipt.State.PENDING).aggregate(
        count=Count("id"), oldest=Min("received_at")
    )
    return _backlog(
        found["count"],
        _age(now, found["oldest"]),
        settings.ALERT_RECEIPT_STALE_AFTER,
        "alert receipts",
    )


def notifications(now: datetime) -> Check:
    """Messages due and not sent: queued (since they were due) and sending (since
    a worker claimed them)."""
    from notify.models import Notification

    State = Notification.State
    found = Notification.objects.filter(
        Q(state=State.QUEUED) | Q(state=State.SENDING)
    ).aggregate(
        queued=Count("id", filter=Q(state=State.QUEUED)),
        sending=Count("id", filter=Q(state=State.SENDING)),
        oldest_due=Min(
            Coalesce("next_attempt_at", "created_at"), filter=Q(state=State.QUEUED)
        ),
        oldest_claim=Min("claimed_at", filter=Q(state=State.SENDING)),
    )
    # A retry scheduled for later is not late yet.
    due = [t for t in (found["oldest_due"], found["oldest_claim"]) if t and t <= now]
    result = _backlog(
        found["queued"] + found["sending"],
        _age(now, min(due)) if due else None,
        settings.NOTIFY_STALE_AFTER,
        "notifications",
    )
    result["queued"] = found["queued"]
    result["sending"] = found["sending"]
    return result


def database_parts(check: Callable[[], Check] | None = None) -> dict[str, Check]:
    """The database (`check`, `database` unless a test gives a failing one) and
    what is read from it, on the calling thread's connection (closed afterwards:
    this runs on a thread of its own)."""
    try:
        parts = {"database": (check or database)()}
        now = timezone.now()
        for name, check in (
            ("workers", workers),
            ("beat", beat),
            ("intake", intake),
            ("notifications", notifications),
        ):
            try:
                parts[name] = check(now)
            except Exception as exc:  # noqa: BLE001 - one part failing is its answer
                parts[name] = _check(DEGRADED, f"not checked ({_error(exc)})")
        return parts
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        return {
            "database": _check(DOWN, f"the database did not answer ({_error(exc)})")
        }
    finally:
        connection.close()


def broker() -> Check:
    from yomira_console.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=0, timeout=settings.HEALTH_CHECK_TIMEOUT)
    return _check(OK)


def broker_part(check: Callable[[], Check] | None = None) -> dict[str, Check]:
    try:
        return {"broker": (check or broker)()}
    except Exception as exc:  # noqa: BLE001
        return {"broker": _check(DOWN, f"the broker did not answer ({_error(exc)})")}


# --- running them: never longer than the timeout ----------------------------------

# One thread each, reused: a part that hangs holds only its own thread, and the
# requests behind it time out (and say so) instead of piling up threads.
_pools: dict[str, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def _submit(name: str, fn: Callable[[], dict[str, Check]]) -> Future:
    with _pools_lock:
        pool = _pools.get(name)
        if pool is None:
            pool = _pools[name] = ThreadPoolExecutor(
                1, thread_name_prefix=f"health-{name}"
            )
    return pool.submit(fn)


def broker_status() -> Check:
    """The broker's part alone, within HEALTH_CHECK_TIMEOUT, on the same thread
    as /health/ready's (/metrics asks it at every scrape: yomira_broker_up)."""
    timeout = settings.HEALTH_CHECK_TIMEOUT
    try:
        return _submit("broker", broker_part).result(timeout)["broker"]
    except FutureTimeout:
        return _check(DOWN, f"no answer within {timeout:g} s")


def collect(
    database_fn: Callable[[], dict[str, Check]] = database_parts,
    broker_fn: Callable[[], dict[str, Check]] = broker_part,
) -> dict[str, Check]:
    """Every part's check, each within HEALTH_CHECK_TIMEOUT (they run side by
    side). The functions are parameters so a test can give a failing one."""
    timeout = settings.HEALTH_CHECK_TIMEOUT
    futures = {
        "database": _submit("database", database_fn),
        "broker": _submit("broker", broker_fn),
    }
    deadline = time.monotonic() + timeout
    parts: dict[str, Check] = {}
    for name, future in futures.items():
        try:
            parts.update(future.result(max(deadline - time.monotonic(), 0.0)))
        except FutureTimeout:
            parts[name] = _check(DOWN, f"no answer within {timeout:g} s")
        except Exception as exc:  # noqa: BLE001
            parts[name] = _check(DOWN, f"not checked ({_error(exc)})")
    if parts["database"]["status"] == DOWN:
        for name in ("workers", "beat", "intake", "notifications"):
            parts[name] = _check(DEGRADED, "not checked: the database is down")
    return {name: parts[name] for name in PARTS}


def summary(parts: dict[str, Check]) -> tuple[str, int]:
    """The overall status and HTTP code: down (503) when a required part is down,
    degraded (200) when any other part is not ok, else ok (200)."""
    if any(parts[name]["status"] == DOWN for name in REQUIRED):
        return DOWN, 503
    if any(part["status"] != OK for part in parts.values()):
        return DEGRADED, 200
    return OK, 200


@never_cache
@require_GET
def ready(request: HttpRequest) -> JsonResponse:
    started = time.monotonic()
    parts = collect()
    status, code = summary(parts)
    body = {
        "status": status,
        **{name: part["status"] for name, part in parts.items()},
        "checks": parts,
        "elapsed_ms": round((time.monotonic() - started) * 1000, 1),
    }
    return JsonResponse(body, status=code)


@require_GET
def live(request: HttpRequest) -> HttpResponse:
    """Liveness: the process answers. Also the benchmarks' trivial baseline view."""
    return HttpResponse("ok", content_type="text/plain")
