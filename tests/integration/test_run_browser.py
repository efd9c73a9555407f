"""In a real browser: open an incident for "Redis Down", run `redis-cli ping`, see
PONG; an action asks for its confirmation word."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from incidents.services import import_runbook
from tests.conftest import IMPORTER, PASSWORD, YOMIRA_RUNBOOK, grant
from tests.e2e.conftest import sign_in

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("worker", "target_redis"),
]


@pytest.fixture
def console(live_server, make_user):  # noqa: ANN001, ANN201
    import_runbook(source=YOMIRA_RUNBOOK.read_bytes(), actor=IMPORTER)
    make_user("rita", "Responder")
    grant(make_user("cole", "Commander"), "run_actions")
    return live_server


def open_redis_incident(page, console, user: str) -> None:  # noqa: ANN001
    sign_in(page, console, user, PASSWORD)
    page.goto(f"{console.url}/incidents/new/?playbook=redis-down-unreachable")
    page.fill("#id_title", "Redis down")
    page.get_by_role("button", name="Open incident").click()
    expect(page).to_have_url(re.compile(r"/incidents/\d+/$"))


def test_a_responder_runs_redis_cli_ping_and_sees_pong(page, console):
    open_redis_incident(page, console, "rita")
    step = page.locator("#step-1")
    step.get_by_role("button", name="Run", exact=True).click()
    result = step.locator(".execution").first
    expect(result.locator(".run-state")).to_have_text("Succeeded", timeout=10_000)
    expect(result.locator(".execution-summary")).to_have_text("PING: PONG")
    expect(page.locator("#timeline-list li").first).to_contain_text(
        "succeeded: PING: PONG"
    )
    # Actions are not a responder's: no Run button on CONFIG SET.
    expect(page.locator("#step-4 .run-panel")).to_contain_text(
        "need a grant you do not have"
    )


def test_a_commander_must_type_the_word_to_run_an_action(page, console, target_redis):
    open_redis_incident(page, console, "cole")
    panel = page.locator("#step-4 .run-panel")
    panel.get_by_role("button", name="Preview action").click()
    expect(panel.locator(".preview")).to_contain_text(
        "Will send to Redis: config set maxmemory-policy"
    )
    panel.get_by_placeholder("type “config”").fill("yes")
    panel.get_by_role("button", name="Run action").click()
    # The refusal is said in the panel that caused it, and the preview stays.
    expect(panel.locator(".run-error .error")).to_contain_text(
        "Type “config” to confirm"
    )
    expect(panel.locator(".preview")).to_contain_text("Will send to Redis")
    expect(page.locator("#steps > li")).to_have_count(5)
    panel = page.locator("#step-4 .run-panel")
    panel.get_by_placeholder("type “config”").fill("config")
    panel.get_by_role("button", name="Run action").click()
    expect(panel.locator(".run-state").first).to_have_text("Succeeded", timeout=10_000)
    assert (
        target_redis.config_get("maxmemory-policy")["maxmemory-policy"] == "allkeys-lru"
    )
