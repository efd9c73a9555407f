"""A heavy probe through the console (issue 13): its warning beside its Run, the
server refusing a run nobody confirmed (in the panel with HTMX, on the page
without), and a confirmed run recorded as such. Against this run's real Redis
(tests/stack.py sets TARGET_TEST_REDIS_URL)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import pytest
import redis
from django.test import Client

from incidents.actors import Actor
from incidents.models import AuditEvent, Command, Playbook, StepExecution
from incidents.services import RunRefused, import_runbook, open_incident, request_run
from incidents.services import execution as worker
from tests.conftest import IMPORTER, grant, signed_in

RUNBOOK = b"""# Sessions Runbook

## 1. Sessions Piling Up

**Alert:** `SessionsHigh`
**Severity:** Warning

### Diagnosis

```bash
redis-cli -u "${TEST_REDIS_URL}" KEYS 'hv-session:*'
redis-cli -u "${TEST_REDIS_URL}" ping
```

### Steps

1. **Look at one session**
   ```bash
   redis-cli -u "${TEST_REDIS_URL}" DEL hv-session:{sessionId}
   ```
"""


def target_redis_with(keys: dict[str, str]) -> Iterator[redis.Redis]:
    """This run's target Redis holding `keys` for the test, removed afterwards."""
    url = os.environ.get("TARGET_TEST_REDIS_URL")
    if not url:
        pytest.skip("run with tests/stack.py (it starts this run's Redis)")
    client = redis.Redis.from_url(url)
    client.mset(keys)
    yield client
    client.delete(*keys)


@pytest.fixture
def sessions():
    yield from target_redis_with({"hv-session:1": "a", "hv-session:2": "b"})


@pytest.fixture
def world(db, make_user, sessions, monkeypatch):
    import_runbook(source=RUNBOOK, source_name="sessions.md", actor=IMPORTER)
    playbook = Playbook.objects.current().get(number=1, title="Sessions Piling Up")
    rita = make_user("rita", "Responder")
    incident = open_incident(
        playbook=playbook, title="sessions", actor=Actor.person(rita)
    )
    # Runs are executed here, at commit, as the worker would.
    monkeypatch.setattr(
        "incidents.services.runs.dispatch",
        lambda pk, kind, task_id=None: worker.execute(pk),
    )
    commands = Command.objects.filter(playbook=playbook)
    return type(
        "World",
        (),
        {
            "rita": rita,
            "client": signed_in(rita),
            "incident": incident,
            "keys": commands.get(text__contains="KEYS"),
            "ping": commands.get(text__contains="ping"),
            "delete": commands.get(text__contains="DEL"),
        },
    )


def run_url(world, command) -> str:  # noqa: ANN001
    return f"/incidents/{world.incident.pk}/commands/{command.pk}/run"


def field(form: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', form)
    assert found, f"no {name} in {form[:300]}"
    return found.group(1)


def panel(html: str, command: Command) -> str:
    start = html.index(f'id="run-{command.pk}"')
    return html[start : html.index("</form>", start)]


def test_the_importer_marks_keys_heavy_and_ping_not(world):
    assert world.keys.kind == "probe"
    assert world.keys.spec["heavy"].startswith("KEYS walks every key")
    assert "heavy" not in world.ping.spec
    assert world.delete.kind == "action" and "heavy" not in world.delete.spec


def test_the_warning_and_its_tick_stand_beside_the_run(world):
    html = world.client.get(f"/incidents/{world.incident.pk}/").content.decode()
    heavy = panel(html, world.keys)
    assert '<p class="heavy-warning"' in heavy
    assert "<strong>Heavy read:</strong> KEYS walks every key in one blocking" in heavy
    assert re.search(r'<input type="checkbox" name="confirm_heavy" value="1"', heavy)
    assert heavy.index("confirm_heavy") < heavy.index(">Run</button>")
    # A real form: it works without JavaScript.
    assert '<form method="post"' in heavy
    plain = panel(html, world.ping)
    assert "heavy" not in plain and "confirm_heavy" not in plain


def test_an_unconfirmed_heavy_run_is_refused_in_its_panel(
    world, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = world.client.post(
            run_url(world, world.keys), {"request_key": "k1"}, HTTP_HX_REQUEST="true"
        )
    assert response.status_code == 400
    body = response.content.decode()
    assert f'id="run-error-{world.keys.pk}"' in body
    assert "Heavy read: KEYS walks every key" in body
    assert "Nothing was run: tick “Run it anyway”" in body
    assert not StepExecution.objects.filter(command=world.keys).exists()
    assert not AuditEvent.objects.filter(
        incident=world.incident, verb="execution.requested"
    ).exists()


def test_without_javascript_the_form_refuses_then_runs_once_ticked(
    world, django_capture_on_commit_callbacks
):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(world.rita)
    form = panel(
        browser.get(f"/incidents/{world.incident.pk}/").content.decode(), world.keys
    )
    fields = {
        "csrfmiddlewaretoken": field(form, "csrfmiddlewaretoken"),
        "request_key": field(form, "request_key"),
    }
    refused = browser.post(run_url(world, world.keys), fields, follow=True)
    # Back to the incident's page (no 500), the message on top.
    assert [status for _, status in refused.redirect_chain] == [302]
    assert "Heavy read: KEYS walks every key" in refused.content.decode()
    assert not StepExecution.objects.filter(command=world.keys).exists()

    form = panel(refused.content.decode(), world.keys)
    fields = {
        "csrfmiddlewaretoken": field(form, "csrfmiddlewaretoken"),
        "request_key": field(form, "request_key"),
        "confirm_heavy": field(form, "confirm_heavy"),  # the tick's own value
    }
    with django_capture_on_commit_callbacks(execute=True):
        done = browser.post(run_url(world, world.keys), fields)
    assert done.status_code == 302
    assert StepExecution.objects.get(command=world.keys).state == "succeeded"


def test_a_confirmed_heavy_run_runs_and_says_it_was_confirmed(
    world, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = world.client.post(
            run_url(world, world.keys),
            {"request_key": "k3", "confirm_heavy": "1"},
            HTTP_HX_REQUEST="true",
        )
    assert response.status_code == 200
    execution = StepExecution.objects.get(command=world.keys)
    assert execution.state == "succeeded", execution.summary
    assert "hv-session:1" in execution.output and "hv-session:2" in execution.output
    assert execution.reason == f"Heavy read, confirmed: {world.keys.spec['heavy']}"
    event = AuditEvent.objects.get(incident=world.incident, verb="execution.requested")
    assert event.data["heavy_confirmed"] == world.keys.spec["heavy"]


@pytest.mark.parametrize("value", ["", "0", "on", "yes"])
def test_only_the_ticks_own_value_confirms(world, value):
    response = world.client.post(
        run_url(world, world.keys),
        {"request_key": f"v{value}", "confirm_heavy": value},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 400
    assert not StepExecution.objects.filter(command=world.keys).exists()


def test_a_light_probe_needs_no_confirmation_and_records_none(
    world, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = world.client.post(
            run_url(world, world.ping), {"request_key": "k4"}, HTTP_HX_REQUEST="true"
        )
    assert response.status_code == 200
    execution = StepExecution.objects.get(command=world.ping)
    assert (execution.state, execution.reason) == ("succeeded", "")
    event = AuditEvent.objects.get(incident=world.incident, verb="execution.requested")
    assert "heavy_confirmed" not in event.data


def test_the_service_refuses_too_not_only_the_view(world):
    with pytest.raises(RunRefused, match="Heavy read: KEYS walks every key"):
        request_run(
            incident=world.incident,
            command=world.keys,
            params={},
            actor=Actor.person(world.rita),
        )
    result = request_run(
        incident=world.incident,
        command=world.keys,
        params={},
        actor=Actor.person(world.rita),
        confirm_heavy=True,
    )
    assert result.created


def test_an_action_keeps_its_word_and_preview_untouched(world, make_user):
    cole = make_user("cole", "Commander")
    grant(cole, "run_actions", playbooks=[world.incident.playbook])
    response = signed_in(cole).post(
        run_url(world, world.delete),
        {"request_key": "k5", "confirm_heavy": "1", "param-sessionId": "1"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 400
    assert "Type “del” to confirm this action." in response.content.decode()
