"""A responder signs in, finds a playbook and follows it in a real browser."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from incidents.services import import_runbook
from tests.conftest import IMPORTER, PASSWORD, YOMIRA_RUNBOOK
from tests.e2e.conftest import sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def library(live_server, make_user):
    import_runbook(source=YOMIRA_RUNBOOK.read_bytes(), actor=IMPORTER)
    make_user("rita", "Responder")
    return live_server


def test_a_responder_signs_in_and_opens_a_playbook(page, library):
    sign_in(page, library, "rita", PASSWORD)
    expect(page).to_have_url(re.compile(r"/incidents/$"))
    page.get_by_role("link", name="Playbooks").click()
    expect(page.locator("table.playbooks tbody tr")).to_have_count(12)

    page.get_by_role("link", name="Redis Down / Unreachable").click()
    expect(page).to_have_url(re.compile(r"/playbooks/redis-down-unreachable/$"))
    expect(page.locator("h1")).to_contain_text("Redis Down / Unreachable")
    expect(page.locator(".step")).to_have_count(5)
    ping = page.locator(".command").filter(has_text="ping").first
    expect(ping.locator(".kind")).to_have_text("probe")
    expect(
        page.get_by_role("heading", name="Impact when Redis is down")
    ).to_be_visible()


def test_live_search_filters_without_a_page_load(page, library):
    sign_in(page, library, "rita", PASSWORD)
    page.goto(f"{library.url}/playbooks/")
    page.evaluate("window.__marker = 'same page'")
    page.keyboard.press("/")
    page.keyboard.type("HealthCheck")
    expect(page.locator("table.playbooks tbody tr")).to_have_count(3)
    assert page.evaluate("window.__marker") == "same page"  # swapped by htmx
    expect(page).to_have_url(re.compile(r"q=HealthCheck"))


def test_a_cross_reference_opens_the_other_playbook(page, library):
    sign_in(page, library, "rita", PASSWORD)
    page.goto(f"{library.url}/playbooks/high-api-error-rate-5xx/")
    page.locator("#step-2").get_by_role("link", name="§3", exact=True).click()
    expect(page.locator("h1")).to_contain_text("PostgreSQL Down / Unreachable")


def test_a_wrong_password_is_refused(page, library):
    sign_in(page, library, "rita", "not-the-password")
    expect(page.locator(".error")).to_contain_text("did not match")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
