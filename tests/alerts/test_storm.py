"""An alert storm: 1,000 alerts in 50 groups posted by 8 concurrent clients to the
live server, Alertmanager-shaped (each notification lists the group's alerts so far,
so a group receives several receipts, some of them at once from two clients, one
of them twice, as a retry), applied by a real worker with three processes racing.

Exactly one incident per group, every alert stored once, every receipt processed,
and Diagnosis held to its per-minute budget: the incidents past it say so."""

from __future__ import annotations

import json
import queue
import random
import threading
from collections import Counter
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone

from alerts import sources
from alerts.models import Alert, AlertGroup, Receipt
from alerts.payloads import label_fingerprint
from incidents import services
from incidents.actors import Actor
from incidents.models import AuditEvent, Incident
from tests.conftest import IMPORTER, YOMIRA_RUNBOOK

from . import live

pytestmark = pytest.mark.django_db(transaction=True)

GROUPS = 50
PER_GROUP = 20
BATCHES = 4  # receipts per group: 5, 10, 15 then 20 alerts
CLIENTS = 8
# The worker's DIAGNOSIS_PER_MINUTE. HighLatency's playbook (§2) has two Diagnosis
# probes, so 50 incidents want 100: the budget lets 10 through.
CAP = 10
STORM_GUARD = "alert storm guard"


@pytest.fixture(scope="module")
def storm_worker(django_db_setup, django_db_blocker):  # noqa: ANN001, ANN201
    # The probes' targets point where nobody listens: configured (so Diagnosis
    # wants to run them), failing at once when they run.
    env = {
        "DIAGNOSIS_PER_MINUTE": str(CAP),
        "TARGET_REDIS_URL": live.closed_url("redis"),
        "TARGET_DATABASE_URL": live.closed_url("postgres"),
    }
    with django_db_blocker.unblock():
        process = live.start_worker("alerts-storm", concurrency=3, env=env)
    yield process
    live.stop_worker(process)


def notification(group: int, count: int, starts) -> dict:  # noqa: ANN001
    service = f"svc-{group:02d}"
    alerts = []
    for number in range(count):
        labels = {
            "alertname": "HighLatency",
            "service": service,
            "instance": f"{service}-{number:02d}",
            "severity": "warning",
        }
        alerts.append(
            {
                "status": "firing",
                "labels": labels,
                "annotations": {"summary": f"p99 latency high on {service}"},
                "startsAt": live.iso(starts + timedelta(seconds=number)),
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "",
                "fingerprint": label_fingerprint(labels),
            }
        )
    return {
        "version": "4",
        "receiver": "console",
        "status": "firing",
        "groupKey": f'{{}}:{{alertname="HighLatency", service="{service}"}}',
        "groupLabels": {"alertname": "HighLatency", "service": service},
        "commonLabels": {"alertname": "HighLatency", "service": service},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example:9093",
        "truncatedAlerts": 0,
        "alerts": alerts,
    }


def storm_bodies() -> list[bytes]:
    starts = timezone.now() - timedelta(minutes=5)
    bodies = []
    for group in range(GROUPS):
        for batch in range(1, BATCHES + 1):
            count = PER_GROUP * batch // BATCHES
            bodies.append(json.dumps(notification(group, count, starts)).encode())
        if group % 5 == 0:  # a retry: the group's last notification twice
            bodies.append(bodies[-1])
    # Shuffled, and taken from one queue by eight clients at once: a group's
    # receipts arrive out of order and often together.
    random.Random(20261129).shuffle(bodies)
    return bodies


def post_all(url: str, token: str, bodies: list[bytes]) -> list[int]:
    """POST every body from CLIENTS threads; returns the receipt ids (each 202)."""
    work: queue.Queue[bytes] = queue.Queue()
    for body in bodies:
        work.put(body)
    receipts: list[int] = []
    failures: list[str] = []
    start = threading.Barrier(CLIENTS)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def client() -> None:
        with httpx.Client(timeout=60, headers=headers) as http:
            start.wait()
            while True:
                try:
                    body = work.get_nowait()
                except queue.Empty:
                    return
                try:
                    response = http.post(url, content=body)
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                    continue
                if response.status_code != 202:
                    failures.append(f"{response.status_code}: {response.text[:200]}")
                    continue
                receipts.append(response.json()["receipt"])

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, f"{len(failures)} posts refused, first: {failures[0]}"
    return receipts


def test_an_alert_storm(storm_worker, live_server):  # noqa: ANN001
    services.import_runbook(source=YOMIRA_RUNBOOK.read_bytes(), actor=IMPORTER)
    source, token = sources.create(
        name="storm",
        kind="alertmanager",
        actor=Actor.system("test"),
        rate_limit_per_minute=100_000,
    )
    mark = live.audit_mark()
    ours = AuditEvent.objects.filter(seq__gt=mark)
    bodies = storm_bodies()
    receipts = post_all(f"{live_server.url}/hooks/alertmanager/storm", token, bodies)
    assert len(set(receipts)) == len(bodies) == GROUPS * BATCHES + GROUPS // 5

    def done() -> bool:
        pending = Receipt.objects.exclude(state=Receipt.State.PROCESSED).count()
        started = ours.filter(verb="diagnosis.started").count()
        return not pending and started >= GROUPS

    live.wait_until(
        done,
        f"all {len(bodies)} receipts processed and {GROUPS} Diagnoses started",
        seconds=240,
    )
    assert Receipt.objects.count() == len(bodies)
    assert Receipt.objects.filter(state=Receipt.State.PROCESSED).count() == len(bodies)

    # One incident per group, none twice.
    assert AlertGroup.objects.count() == GROUPS
    assert Incident.objects.count() == GROUPS
    incidents = list(AlertGroup.objects.values_list("incident_id", flat=True))
    assert None not in incidents and len(set(incidents)) == GROUPS
    assert set(Incident.objects.values_list("playbook__number", flat=True)) == {2}
    assert ours.filter(verb="incident.opened").count() == GROUPS
    assert not AlertGroup.objects.filter(flaps__gt=0).exists()

    # Every alert stored once, in its own group, and told once on its incident.
    assert Alert.objects.count() == GROUPS * PER_GROUP
    assert Alert.objects.filter(status="firing").count() == GROUPS * PER_GROUP
    per_group = Counter(
        Alert.objects.values_list("group__group_labels__service", flat=True)
    )
    assert set(per_group.values()) == {PER_GROUP} and len(per_group) == GROUPS
    firing = Counter(
        ours.filter(verb="alert.firing").values_list("incident_id", flat=True)
    )
    assert firing == dict.fromkeys(incidents, PER_GROUP)

    # Diagnosis within its budget; the incidents past it say why. The budget
    # counts every Diagnosis probe queued in the last minute, this test's or not.
    diagnosis = AuditEvent.objects.filter(
        verb="execution.requested", actor_name="diagnosis"
    )
    requested = list(ours.filter(pk__in=diagnosis).values_list("created_at", flat=True))
    earlier = list(
        diagnosis.filter(
            seq__lte=mark,
            created_at__gte=min(requested or [timezone.now()]) - timedelta(minutes=1),
        ).values_list("created_at", flat=True)
    )
    if not earlier:
        assert requested, "Diagnosis queued no probe at all"
    for when in requested:  # any minute's worth, however long the storm took
        window = [
            t for t in requested + earlier if when - timedelta(minutes=1) <= t <= when
        ]
        assert len(window) <= CAP, (len(window), CAP)
    started = list(ours.filter(verb="diagnosis.started"))
    assert sorted(e.incident_id for e in started) == sorted(incidents)
    span = max(e.created_at for e in started) - min(e.created_at for e in started)
    if span < timedelta(minutes=1):  # the usual case: the whole storm in a minute
        assert len(requested) <= CAP
    assert sum(e.data["queued"] for e in started) == len(requested)
    guarded = [
        e
        for e in started
        if any(STORM_GUARD in skip["why"] for skip in e.data["skipped"])
    ]
    for event in started:
        if event.data["queued"] < event.data["probes"]:
            assert event in guarded, event.data
    assert len(guarded) >= GROUPS - CAP // 2
