"""Two people at once: one consistent result, never an error page; the audit
chain stays linear."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from incidents import audit
from incidents.actors import Actor
from incidents.models import AuditEvent, StepExecution
from tests.conftest import signed_in

pytestmark = pytest.mark.django_db(transaction=True)


def run_together(*jobs):  # noqa: ANN002, ANN201
    """Start every job at the same instant; return their results."""
    barrier = threading.Barrier(len(jobs))
    results: list = [None] * len(jobs)

    def runner(i, job):  # noqa: ANN001, ANN202
        try:
            barrier.wait()
            results[i] = job()
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=runner, args=(i, j)) for i, j in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def test_two_people_ticking_one_step_at_once_get_one_result(
    incident, responder, commander
):
    url = f"/incidents/{incident.pk}/steps/1/tick"
    clients = [signed_in(responder), signed_in(commander)]

    def ticker(client, state, reason=""):  # noqa: ANN001, ANN202
        def job():  # noqa: ANN202
            return client.post(
                url,
                {"state": state, "expected": 0, "reason": reason},
                HTTP_HX_REQUEST="true",
            )

        return job

    first, second = run_together(
        ticker(clients[0], "done"), ticker(clients[1], "skipped", "n/a")
    )
    assert [r.status_code for r in (first, second)] == [200, 200], (first, second)
    executions = list(StepExecution.objects.filter(incident=incident))
    assert len(executions) == 1
    loser = second if executions[0].requested_by == responder else first
    assert "your change was not applied" in loser.content.decode()


def test_many_simultaneous_double_clicks_still_make_one_tick(incident, responder):
    url = f"/incidents/{incident.pk}/steps/2/tick"
    clients = [signed_in(responder) for _ in range(6)]
    jobs = [
        lambda c=c: c.post(
            url, {"state": "done", "expected": 0}, HTTP_HX_REQUEST="true"
        )
        for c in clients
    ]
    responses = run_together(*jobs)
    assert all(r.status_code == 200 for r in responses), responses
    assert StepExecution.objects.filter(incident=incident, step__number=2).count() == 1


def test_concurrent_appends_keep_the_chain_linear(db):
    start = (
        AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    )

    def appender(n):  # noqa: ANN001, ANN202
        def job():  # noqa: ANN202
            for i in range(10):
                audit.append(
                    "test.concurrent", actor=Actor.system(f"t{n}"), data={"i": i}
                )

        return job

    results = run_together(*[appender(n) for n in range(8)])
    assert results == [None] * 8
    seqs = list(AuditEvent.objects.filter(seq__gt=start).values_list("seq", flat=True))
    assert seqs == list(range(start + 1, start + 81))
    assert audit.verify().ok
