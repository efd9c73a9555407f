"""A real Alertmanager (Debian's 0.25) delivering to the console's webhook on a live
server, with the receipts applied by a real Celery worker: one incident per group,
alerts joining it, repeats changing nothing, per-alert resolution and "source
resolved", and a flap coming back to the same incident (reopened when a person had
resolved it). Alertmanager is driven through its API v2, as Prometheus drives it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from alerts import sources
from alerts.models import Alert, AlertGroup, Receipt
from incidents import services
from incidents.actors import Actor
from incidents.models import AuditEvent, Incident
from tests.conftest import IMPORTER, YOMIRA_RUNBOOK

from . import live

pytestmark = [
    pytest.mark.skipif(
        not Path(live.ALERTMANAGER).exists(),
        reason=f"Debian's prometheus-alertmanager is not installed at "
        f"{live.ALERTMANAGER} (make test installs it when it may: "
        "apt-get install -y --no-install-recommends prometheus-alertmanager)",
    ),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture(scope="module")
def intake_worker(django_db_setup, django_db_blocker):  # noqa: ANN001, ANN201
    with django_db_blocker.unblock():
        process = live.start_worker("alerts-live", concurrency=2)
    yield process
    live.stop_worker(process)


@pytest.fixture
def console(intake_worker, live_server):  # noqa: ANN001, ANN201
    services.import_runbook(source=YOMIRA_RUNBOOK.read_bytes(), actor=IMPORTER)
    source, token = sources.create(
        name="am-live", kind="alertmanager", actor=Actor.system("test")
    )
    return live_server, source, token


@pytest.fixture
def alertmanager(console):  # noqa: ANN001, ANN201
    server, source, token = console
    manager = live.Alertmanager(
        live.alertmanager_config(
            webhook=f"{server.url}/hooks/alertmanager/{source.name}",
            token=token,
            group_wait="1s",
            group_interval="1s",
            repeat_interval="3s",
        )
    )
    try:
        yield manager
    finally:
        manager.stop()


def settled() -> int:
    """The number of receipts, once every one is processed (else 0)."""
    receipts = Receipt.objects.count()
    pending = Receipt.objects.exclude(state=Receipt.State.PROCESSED).count()
    return receipts if receipts and not pending else 0


def verbs(incident: Incident) -> list[str]:
    return list(incident.events.order_by("seq").values_list("verb", flat=True))


def the_incident() -> Incident:
    return live.wait_until(
        lambda: Incident.objects.first(), "Alertmanager's first notification opens"
    )


def alert_status(alert_labels: dict) -> dict[str, str]:
    return {
        a.labels["instance"]: a.status
        for a in Alert.objects.filter(name=alert_labels["alertname"])
    }


def test_a_group_through_a_real_alertmanager(alertmanager):
    mark = live.audit_mark()
    t0 = timezone.now() - timedelta(seconds=30)
    a = live.alert(starts=t0, service="api", instance="a")
    b = live.alert(starts=t0 + timedelta(seconds=5), service="api", instance="b")

    # Fire: one incident on §1, opened by the intake, Diagnosis started.
    alertmanager.post(a)
    incident = the_incident()
    assert incident.playbook.number == 1, incident.playbook
    opened = incident.events.get(verb="incident.opened")
    assert opened.actor_name == "alert-intake"
    group = AlertGroup.objects.get()
    assert (group.incident_id, group.rule) == (incident.pk, "alertname")
    live.wait_until(
        lambda: "diagnosis.started" in verbs(incident), "diagnosis.started on it"
    )

    # A second alert with the same group labels joins the same incident.
    alertmanager.post(b)
    live.wait_until(lambda: Alert.objects.count() == 2, "the second alert is stored")
    assert Incident.objects.count() == 1
    assert set(Alert.objects.values_list("group", flat=True)) == {group.pk}
    assert alert_status(a["labels"]) == {"a": "firing", "b": "firing"}

    # A repeat notification (repeat_interval 3 s) changes nothing.
    seen = live.wait_until(settled, "the receipts so far are processed")
    live.wait_until(
        lambda: settled() > seen, "a repeat notification arrives and is processed"
    )
    assert Incident.objects.count() == 1
    assert Alert.objects.count() == 2
    assert verbs(incident).count("alert.firing") == 2

    # Resolve one, then the other: per-alert status, then "source resolved".
    alertmanager.post({**a, "endsAt": live.iso(timezone.now() - timedelta(seconds=1))})
    live.wait_until(
        lambda: alert_status(a["labels"]) == {"a": "resolved", "b": "firing"},
        "alert a resolved, b still firing",
    )
    assert "alert.source_resolved" not in verbs(incident)
    alertmanager.post({**b, "endsAt": live.iso(timezone.now() - timedelta(seconds=1))})
    live.wait_until(
        lambda: "alert.source_resolved" in verbs(incident),
        "an alert.source_resolved event on the incident",
    )
    assert alert_status(a["labels"]) == {"a": "resolved", "b": "resolved"}
    incident.refresh_from_db()
    assert incident.status == Incident.Status.OPEN  # a person resolves it
    group.refresh_from_db()
    assert not group.firing and group.flaps == 0

    # Flap: the same labels fire again (a new startsAt): the same incident.
    alertmanager.post(live.alert(starts=timezone.now(), service="api", instance="a"))
    live.wait_until(
        lambda: AlertGroup.objects.get().flaps == 1, "the group counts a flap"
    )
    assert Incident.objects.count() == 1
    assert AlertGroup.objects.get().incident_id == incident.pk
    assert Alert.objects.filter(status="firing").count() == 1
    assert Alert.objects.count() == 3  # a new occurrence of a's label set
    assert "alert.flapped" in verbs(incident)
    incident.refresh_from_db()
    assert incident.status == Incident.Status.OPEN
    ours = AuditEvent.objects.filter(seq__gt=mark)
    assert ours.filter(verb="incident.opened").count() == 1


def test_a_flap_reopens_the_incident_a_person_resolved(alertmanager, commander):
    t0 = timezone.now() - timedelta(seconds=30)
    a = live.alert(starts=t0, service="web", instance="a")
    alertmanager.post(a)
    incident = the_incident()
    alertmanager.post({**a, "endsAt": live.iso(timezone.now() - timedelta(seconds=1))})
    live.wait_until(
        lambda: "alert.source_resolved" in verbs(incident), "the source resolves"
    )
    services.change_status(
        incident=incident, to=Incident.Status.RESOLVED, actor=Actor.person(commander)
    )

    alertmanager.post(live.alert(starts=timezone.now(), service="web", instance="a"))

    def reopened() -> bool:
        incident.refresh_from_db()
        return incident.status == Incident.Status.OPEN

    live.wait_until(reopened, "the resolved incident is reopened by the flap")
    group = AlertGroup.objects.get()
    assert group.flaps == 1 and group.firing
    assert group.incident_id == incident.pk
    assert Incident.objects.count() == 1
    reopen = incident.events.filter(verb="alert.flapped").get()
    assert reopen.data == {"flaps": 1, "reopened": True}
    assert Alert.objects.count() == 2
