"""`/metrics`: the console's figures for Prometheus (README, "Metrics").

Most are read from the database when Prometheus scrapes, by `ConsoleCollector`:
a row is the truth whichever process, container or restart wrote it, so every
web process answers the same. A fixed number of aggregate queries per scrape
(one per table), however many rows there are. What only a process sees (audit
append latency, the sweeper's passes: incidents/metrics.py) comes from
prometheus-client, added up over every process when PROMETHEUS_MULTIPROC_DIR
is set.

Only a Prometheus holding METRICS_TOKEN may read it: the figures are not secret,
but the sources' and channels' names are the console's own business. No token
configured: 404, metrics are off. A session does not open it."""

from __future__ import annotations

import hmac
import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import datetime

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import REGISTRY, CollectorRegistry, multiprocess
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.utils import floatToGoString

from alerts import sources
from alerts.models import Receipt
from incidents import metrics as process_metrics  # noqa: F401 - defines them first
from incidents.actors import client_ip
from incidents.models import Command, Incident, StepExecution, WorkerHeartbeat
from incidents.services.workers import SWEEPER_NAME
from notify.models import Notification

from . import health

log = logging.getLogger(__name__)
State = StepExecution.State

# Seconds. Queue wait: a click to a worker's claim is well under a second when
# all is well; minutes mean no worker (the sweeper gives up at STALE_QUEUED_AFTER).
QUEUE_WAIT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
# Run time: a probe is a second or two; RUN_TIME_LIMIT caps a run at minutes.
RUN_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
# The states a run passes through; the rest are terminal (counted once, for ever).
IN_FLIGHT = (State.QUEUED, State.AWAITING_APPROVAL, State.RUNNING)
NO_SEVERITY = "none"  # a playbook without a severity: an empty label is no label


# --- the database's figures --------------------------------------------------------


def _executions_sql() -> str:
    """One pass over the runs of runnable commands (ticks have no command), grouped
    by executor, kind and state: the totals, both latency histograms (a bucket is
    `count(*) FILTER (WHERE seconds <= le)`, cumulative by construction) and the
    oldest run still in each in-flight state."""
    # A run approved late waited from its approval, as the sweeper counts it.
    # Clamped at 0 (started_at is the worker's clock, created_at the web's), and
    # NULL until it happened: greatest() alone would turn NULL into 0. date_part,
    # not extract: a float, where extract's numeric made the scan 20% slower.
    waited = (
        "CASE WHEN e.started_at IS NOT NULL THEN greatest(date_part('epoch', "
        "e.started_at - coalesce(e.approved_at, e.created_at)), 0) END"
    )
    ran = (
        "CASE WHEN e.finished_at IS NOT NULL AND e.started_at IS NOT NULL THEN "
        "greatest(date_part('epoch', e.finished_at - e.started_at), 0) END"
    )
    wait_buckets = ", ".join(
        f"count(*) FILTER (WHERE t.waited <= {le})" for le in QUEUE_WAIT_BUCKETS
    )
    run_buckets = ", ".join(
        f"count(*) FILTER (WHERE t.ran <= {le})" for le in RUN_BUCKETS
    )
    return f"""
        SELECT c.executor, c.kind, e.state, count(*),
               count(t.waited), coalesce(sum(t.waited), 0), {wait_buckets},
               count(t.ran), coalesce(sum(t.ran), 0), {run_buckets},
               min(coalesce(e.approved_at, e.created_at))
                   FILTER (WHERE e.state = %(queued)s),
               min(e.created_at) FILTER (WHERE e.state = %(awaiting)s),
               min(e.started_at) FILTER (WHERE e.state = %(running)s)
        FROM {StepExecution._meta.db_table} e
        JOIN {Command._meta.db_table} c ON c.id = e.command_id
        CROSS JOIN LATERAL (
            SELECT {waited} AS waited, {ran} AS ran
        ) t
        GROUP BY c.executor, c.kind, e.state
    """


def _histogram(
    name: str, documentation: str, bounds: tuple[float, ...], rows: dict
) -> HistogramMetricFamily:
    """rows: {(executor, kind): [count, sum, bucket counts...]}, summed over states."""
    family = HistogramMetricFamily(name, documentation, labels=["executor", "kind"])
    for labels, (count, total, *buckets) in sorted(rows.items()):
        family.add_metric(
            list(labels),
            [(floatToGoString(le), n) for le, n in zip(bounds, buckets, strict=True)]
            + [("+Inf", count)],
            sum_value=total,
        )
    return family


def _add(into: list[float], values: Iterable[float]) -> None:
    for i, value in enumerate(values):
        into[i] += float(value)


def execution_families(now: datetime) -> Iterator[Metric]:
    totals = CounterMetricFamily(
        "yomira_executions",
        "Runs that ended, by executor, command kind and final state.",
        labels=["executor", "kind", "state"],
    )
    failures = CounterMetricFamily(
        "yomira_dispatch_failures",
        "Runs never handed to a worker (state dispatch_failed): the task queue "
        "refused them or no worker claimed them in time.",
        labels=["executor", "kind"],
    )
    in_flight = GaugeMetricFamily(
        "yomira_executions_in_flight",
        "Runs queued, awaiting approval or running now.",
        labels=["executor", "kind", "state"],
    )
    waits: dict[tuple[str, str], list[float]] = defaultdict(
        lambda: [0.0] * (2 + len(QUEUE_WAIT_BUCKETS))
    )
    runs: dict[tuple[str, str], list[float]] = defaultdict(
        lambda: [0.0] * (2 + len(RUN_BUCKETS))
    )
    oldest: dict[str, datetime | None] = dict.fromkeys(IN_FLIGHT)
    with connection.cursor() as cursor:
        cursor.execute(
            _executions_sql(),
            {
                "queued": State.QUEUED,
                "awaiting": State.AWAITING_APPROVAL,
                "running": State.RUNNING,
            },
        )
        rows = cursor.fetchall()
    w, r = 2 + len(QUEUE_WAIT_BUCKETS), 2 + len(RUN_BUCKETS)
    awaiting_approval = 0
    for executor, kind, state, count, *rest in rows:
        labels = (executor, kind)
        _add(waits[labels], rest[:w])
        _add(runs[labels], rest[w : w + r])
        queued_since, awaiting_since, running_since = rest[w + r :]
        for name, since in (
            (State.QUEUED, queued_since),
            (State.AWAITING_APPROVAL, awaiting_since),
            (State.RUNNING, running_since),
        ):
            if since is not None and (oldest[name] is None or since < oldest[name]):
                oldest[name] = since
        if state in IN_FLIGHT:
            in_flight.add_metric([executor, kind, state], count)
            if state == State.AWAITING_APPROVAL:
                awaiting_approval += count
        elif state in StepExecution.TERMINAL:  # a tick is no run, whatever it names
            totals.add_metric([executor, kind, state], count)
        if state == State.DISPATCH_FAILED:
            failures.add_metric([executor, kind], count)
    yield from (totals, failures, in_flight)
    yield _histogram(
        "yomira_execution_queue_wait_seconds",
        "From queued (or approved) to running: how long a run waited for a worker.",
        QUEUE_WAIT_BUCKETS,
        waits,
    )
    yield _histogram(
        "yomira_execution_run_seconds",
        "From running to finished: how long a run took on its worker.",
        RUN_BUCKETS,
        runs,
    )
    ages = GaugeMetricFamily(
        "yomira_executions_oldest_seconds",
        "Age of the oldest run in each in-flight state (0 when there is none): "
        "stuck runs.",
        labels=["state"],
    )
    approvals = GaugeMetricFamily(
        "yomira_approvals_waiting",
        "Runs waiting for a second person's approval.",
        value=awaiting_approval,
    )
    for state, since in oldest.items():
        age = max((now - since).total_seconds(), 0.0) if since else 0.0
        ages.add_metric([state], age)
    yield from (ages, approvals)


def incident_families() -> Iterator[Metric]:
    """Not resolved, drills left out: a practice incident must not look like an
    outage to a rule that pages someone."""
    family = GaugeMetricFamily(
        "yomira_incidents_open",
        "Incidents not resolved (drills excluded), by severity and status.",
        labels=["severity", "status"],
    )
    rows = (
        Incident.objects.exclude(status=Incident.Status.RESOLVED)
        .filter(drill=False)
        .order_by()
        .values_list("severity", "status")
        .annotate(n=Count("id"))
    )
    for severity, status, n in rows:
        family.add_metric([severity or NO_SEVERITY, status], n)
    yield family


def receipt_families() -> Iterator[Metric]:
    receipts = CounterMetricFamily(
        "yomira_alert_receipts",
        "Webhook requests received and stored, by source and outcome "
        "(processed, invalid, failed).",
        labels=["source", "outcome"],
    )
    pending = 0
    rows = (
        Receipt.objects.order_by()
        .values_list("source__name", "state")
        .annotate(n=Count("id"))
    )
    for source, state, n in sorted(rows):
        if state == Receipt.State.PENDING:
            pending += n
        else:
            receipts.add_metric([source, state], n)
    yield receipts
    yield GaugeMetricFamily(
        "yomira_alert_receipts_pending",
        "Receipts stored and not yet applied.",
        value=pending,
    )


def notification_families() -> Iterator[Metric]:
    State = Notification.State
    waiting_states = (State.QUEUED, State.SENDING)
    sends = CounterMetricFamily(
        "yomira_notifications",
        "Notifications that reached an outcome (sent, failed, suppressed, drill), "
        "by channel and its kind.",
        labels=["channel", "channel_kind", "outcome"],
    )
    waiting = dict.fromkeys(waiting_states, 0)
    rows = (
        Notification.objects.order_by()
        .values_list("channel__name", "channel__kind", "state")
        .annotate(n=Count("id"))
    )
    for channel, kind, state, n in sorted(rows):
        if state in waiting:
            waiting[state] += n
        else:
            sends.add_metric([channel, kind, state], n)
    yield sends
    family = GaugeMetricFamily(
        "yomira_notifications_waiting",
        "Notifications queued or being sent now.",
        labels=["state"],
    )
    for state, n in waiting.items():
        family.add_metric([state], n)
    yield family


def worker_families(now: datetime) -> Iterator[Metric]:
    """What /health/ready reads: the heartbeats, judged the same way."""
    check = health.workers(now)
    yield GaugeMetricFamily(
        "yomira_workers_live",
        "Celery workers with a recent heartbeat.",
        value=check["live"],
    )
    sites = GaugeMetricFamily(
        "yomira_site_worker_live",
        "1 when a queue commands are sent to (the default one, each configured "
        "site's) has a live worker, else 0.",
        labels=["site"],
    )
    for site, facts in sorted(check["sites"].items()):
        sites.add_metric([site], 1 if facts["live"] else 0)
    yield sites
    last_sweep = (
        WorkerHeartbeat.objects.filter(hostname=SWEEPER_NAME)
        .values_list("beat_at", flat=True)
        .first()
    )
    if last_sweep is not None:  # absent until beat's first sweep: absent() says so
        yield GaugeMetricFamily(
            "yomira_sweeper_last_run_timestamp_seconds",
            "When the sweeper last finished a pass (Unix time).",
            value=last_sweep.timestamp(),
        )


class ConsoleCollector:
    """The database's figures, read at each scrape. A database that does not
    answer makes `yomira_database_up` 0 and leaves its families out, so the
    scrape still says what is wrong instead of failing (up == 0 means the
    console itself is not answering)."""

    def describe(self) -> list[Metric]:
        return []  # nothing read when registered: only at a scrape

    def collect(self) -> Iterator[Metric]:
        now = timezone.now()
        families: list[Metric] = []
        try:
            families.extend(execution_families(now))
            families.extend(incident_families())
            families.extend(receipt_families())
            families.extend(notification_families())
            families.extend(worker_families(now))
            database_up = 1
        except DatabaseError as exc:
            log.warning("metrics: the database did not answer (%s)", type(exc).__name__)
            families = []
            database_up = 0
        yield GaugeMetricFamily(
            "yomira_database_up", "1 when the database answered.", value=database_up
        )
        broker_up = health.broker_status()["status"] == health.OK
        yield GaugeMetricFamily(
            "yomira_broker_up",
            "1 when the task queue's broker answered (as /health/ready asks).",
            value=1 if broker_up else 0,
        )
        yield from families


class _ThisProcess:
    """The default registry's families (this process's own metrics), without
    registering the console's collector there for good."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


def registry(multiproc_dir: str = "") -> CollectorRegistry:
    """What a scrape reads: the database's figures, plus the in-process ones of
    every process writing to `multiproc_dir` (or of this process alone)."""
    found = CollectorRegistry()
    if multiproc_dir:
        multiprocess.MultiProcessCollector(found, path=multiproc_dir)
    else:
        found.register(_ThisProcess())
    found.register(ConsoleCollector())
    return found


# --- the view ----------------------------------------------------------------------


def presented_token(request: HttpRequest) -> str:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def _denied(request: HttpRequest, why: str) -> HttpResponse:
    """401, audited like a webhook's refusal (and within the same per-address
    budget, so a flood is logged and counted, not written to the audit log)."""
    ip = client_ip(request)
    try:
        if not sources.audit_denial(request, "metrics.scrape", why):
            log.warning("metrics denial from %s not audited (over the budget)", ip)
    except DatabaseError:
        # Refusing does not need the database; the refusal is still logged.
        log.warning("metrics denial from %s not audited (database error)", ip)
    response = HttpResponse(
        "Unauthorized: send METRICS_TOKEN as a Bearer token.\n",
        status=401,
        content_type="text/plain",
    )
    response["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return response


@never_cache
@require_GET
def scrape(request: HttpRequest) -> HttpResponse:
    wanted = settings.METRICS_TOKEN
    if not wanted:
        return HttpResponse(
            "metrics are off: set METRICS_TOKEN\n",
            status=404,
            content_type="text/plain",
        )
    token = presented_token(request)
    if not token:
        return _denied(request, "no token")
    # Bytes: compare_digest refuses a str with non-ASCII characters (a 500).
    if not hmac.compare_digest(token.encode(), wanted.encode()):
        return _denied(request, "a wrong token")
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    body = encoder(registry(settings.METRICS_MULTIPROC_DIR))
    return HttpResponse(body, content_type=content_type)
