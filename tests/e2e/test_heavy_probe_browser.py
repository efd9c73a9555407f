"""A heavy probe in a real browser: its warning stands beside its Run, a Run
without the tick is refused in place (the panel says why, nothing runs), and once
ticked it runs (against this run's Redis, executed at commit as a worker would)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from incidents.actors import Actor
from incidents.models import AuditEvent, Command, Playbook, StepExecution
from incidents.services import execution as worker
from incidents.services import import_runbook, open_incident
from tests.conftest import IMPORTER, PASSWORD
from tests.e2e.conftest import sign_in, watch
from tests.probes.test_heavy_runs import RUNBOOK, target_redis_with

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def sessions():
    yield from target_redis_with({"hv-session:browser": "a"})


def test_a_heavy_probe_is_refused_until_confirmed_then_runs(
    page, live_server, make_user, sessions, monkeypatch
):
    monkeypatch.setattr(
        "incidents.services.runs.dispatch",
        lambda pk, kind, task_id=None: worker.execute(pk),
    )
    import_runbook(source=RUNBOOK, source_name="sessions.md", actor=IMPORTER)
    playbook = Playbook.objects.current().get(title="Sessions Piling Up")
    rita = make_user("rita", "Responder")
    incident = open_incident(
        playbook=playbook, title="sessions", actor=Actor.person(rita)
    )
    keys = Command.objects.get(playbook=playbook, text__contains="KEYS")
    ping = Command.objects.get(playbook=playbook, text__contains="ping")

    errors = watch(page, provoked=re.compile(r"\b400\b"))
    sign_in(page, live_server, "rita", PASSWORD)
    page.goto(f"{live_server.url}/incidents/{incident.pk}/")
    heavy = page.locator(f"#run-{keys.pk}")
    warning = heavy.locator(".heavy-warning")
    expect(warning).to_be_visible()
    expect(warning).to_contain_text("Heavy read: KEYS walks every key")
    tick = heavy.get_by_label("Run it anyway")
    expect(tick).to_be_visible()
    expect(tick).not_to_be_checked()
    # The light probe beside it has neither.
    expect(page.locator(f"#run-{ping.pk} .heavy-warning")).to_have_count(0)
    expect(page.locator(f"#run-{ping.pk} input[name=confirm_heavy]")).to_have_count(0)

    heavy.get_by_role("button", name="Run", exact=True).click()
    refusal = page.locator(f"#run-error-{keys.pk}")
    expect(refusal).to_contain_text("Heavy read: KEYS walks every key")
    expect(refusal).to_contain_text("tick “Run it anyway”")
    expect(page).to_have_url(re.compile(rf"/incidents/{incident.pk}/$"))  # in place
    expect(tick).to_be_focused()  # console.js: the tick is what to do next
    assert not StepExecution.objects.filter(command=keys).exists()

    heavy = page.locator(f"#run-{keys.pk}")
    heavy.get_by_label("Run it anyway").check()
    heavy.get_by_role("button", name="Run", exact=True).click()
    run = page.locator(f"#run-{keys.pk} .execution").first
    expect(run.locator(".run-state")).to_have_text("Succeeded")
    expect(run).to_contain_text("hv-session:browser")
    execution = StepExecution.objects.get(command=keys)
    assert execution.state == "succeeded"
    event = AuditEvent.objects.get(incident=incident, verb="execution.requested")
    assert event.data["heavy_confirmed"].startswith("KEYS walks every key")
    assert errors == []
