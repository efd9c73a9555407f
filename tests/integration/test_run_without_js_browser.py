"""In a real browser with JavaScript off: the Run and Preview forms are plain forms
that carry their CSRF token (the checklist they live in is cached, shared HTML),
so a probe runs and an action is previewed, confirmed and run."""

# `console` is a fixture imported by name; tests naming it is not a redefinition.
# ruff: noqa: F811

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, expect

from incidents.models import StepExecution
from tests.conftest import PASSWORD
from tests.e2e.conftest import sign_in

from .test_run_browser import console  # noqa: F401 - a fixture

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("worker", "target_redis"),
]


def test_run_and_confirm_an_action_without_javascript(
    browser: Browser, console, target_redis
):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(10_000)
    sign_in(page, console, "cole", PASSWORD)
    page.goto(f"{console.url}/incidents/new/?playbook=redis-down-unreachable")
    page.fill("#id_title", "Redis down, no JS")
    page.get_by_role("button", name="Open incident").click()
    expect(page).to_have_url(re.compile(r"/incidents/\d+/$"))
    incident_url = page.url

    page.locator("#step-1").get_by_role("button", name="Run", exact=True).click()
    expect(page).to_have_url(re.compile(r"/incidents/\d+/(#step-1)?$"))
    assert "CSRF" not in page.content()
    assert StepExecution.objects.filter(command__text__contains="ping").count() == 1

    page.goto(incident_url)
    page.locator("#step-4").get_by_role("button", name="Preview action").click()
    expect(page.locator(".preview")).to_contain_text(
        "Will send to Redis: config set maxmemory-policy"
    )
    page.get_by_placeholder("type “config”").fill("config")
    page.get_by_role("button", name="Run action").click()
    expect(page).to_have_url(re.compile(r"/incidents/\d+/(#step-4)?$"))
    run = StepExecution.objects.get(command__text__contains="config set")
    assert run.requested_by.username == "cole"
    context.close()
