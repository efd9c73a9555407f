"""Working an incident in real browsers: open, tick, note, and see another
responder's changes arrive without reloading."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from incidents.services import import_runbook
from tests.conftest import IMPORTER, PASSWORD, YOMIRA_RUNBOOK
from tests.e2e.conftest import sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def console(live_server, make_user):
    import_runbook(source=YOMIRA_RUNBOOK.read_bytes(), actor=IMPORTER)
    make_user("rita", "Responder")
    make_user("cole", "Commander")
    return live_server


def test_a_responder_opens_an_incident_ticks_a_step_and_adds_a_note(page, console):
    sign_in(page, console, "rita", PASSWORD)
    page.goto(f"{console.url}/playbooks/redis-down-unreachable/")
    page.get_by_role("link", name="or name it first").click()
    # The form starts with the playbook's title; this responder names it.
    expect(page.locator("#id_title")).to_have_value("Redis Down / Unreachable")
    page.fill("#id_title", "Redis refusing connections")
    page.get_by_role("button", name="Open incident").click()
    expect(page).to_have_url(re.compile(r"/incidents/\d+/$"))
    expect(page.locator("#incident-head h1")).to_contain_text(
        "Redis refusing connections"
    )
    page.evaluate("window.__marker = 'no reload'")

    step = page.locator("#step-1")
    step.get_by_role("button", name="✓ Done").click()
    expect(page.locator("#step-1 .tick")).to_have_text("done")
    expect(page.locator("#timeline-list li").first).to_contain_text(
        "marked step 1 done"
    )
    expect(page.locator("#incident-head")).to_contain_text("1/5")

    page.keyboard.press("n")
    page.keyboard.type("PING answers PONG from the bastion")
    page.get_by_role("button", name="Add note").click()
    expect(page.locator("#timeline-list li").first).to_contain_text("PING answers PONG")
    expect(page.locator("textarea[name=text]")).to_have_value("")

    # Keyboard: j moves to the next step, d marks it done.
    page.locator("#step-1").focus()
    page.keyboard.press("j")
    page.keyboard.press("d")
    expect(page.locator("#step-2 .tick")).to_have_text("done")
    # Opened; "did not notify PagerDuty" (no channel has the runbook's name: the
    # commander sees that nobody was paged); two ticks; the note.
    expect(page.locator("#timeline-list li.event")).to_have_count(5)
    expect(page.locator("#timeline-list")).to_contain_text(
        "did not notify PagerDuty (trigger): no notification channel has this name"
    )
    assert page.evaluate("window.__marker") == "no reload"


def test_ctrl_enter_sends_a_note(page, console):
    sign_in(page, console, "cole", PASSWORD)
    page.goto(f"{console.url}/playbooks/redis-down-unreachable/")
    page.get_by_role("button", name="Open an incident now").click()
    expect(page).to_have_url(re.compile(r"/incidents/\d+/$"))
    page.evaluate("window.__marker = 'no reload'")
    note = page.locator("textarea[name=text]")
    note.fill("Failover started by the provider")
    note.press("Control+Enter")
    expect(page.locator("#timeline-list li").first).to_contain_text(
        "Failover started by the provider"
    )
    expect(page.locator("textarea[name=text]")).to_have_value("")
    assert page.evaluate("window.__marker") == "no reload"


def test_a_commander_opens_an_incident_in_one_click(page, console):
    sign_in(page, console, "cole", PASSWORD)
    page.goto(f"{console.url}/playbooks/redis-down-unreachable/")
    page.get_by_role("button", name="Open an incident now").click()
    expect(page).to_have_url(re.compile(r"/incidents/\d+/$"))
    head = page.locator("#incident-head")
    expect(head.locator("h1")).to_contain_text("Redis Down / Unreachable")
    expect(head).to_contain_text("Commander cole")
    expect(head).to_contain_text("Nextacknowledge.")


def test_another_responders_tick_appears_within_seconds(browser, console):
    rita_page = browser.new_context().new_page()
    cole_page = browser.new_context().new_page()
    sign_in(cole_page, console, "cole", PASSWORD)
    cole_page.goto(f"{console.url}/incidents/new/?playbook=disk-space-critical")
    cole_page.fill("#id_title", "Disk at 97%")
    cole_page.get_by_role("button", name="Open incident").click()
    expect(cole_page).to_have_url(re.compile(r"/incidents/\d+/$"))
    url = cole_page.url

    sign_in(rita_page, console, "rita", PASSWORD)
    rita_page.goto(url)
    rita_page.locator("#step-3 input[name=reason]").fill(
        "no partitions older than 12 months"
    )
    rita_page.locator("#step-3").get_by_role("button", name="Skip").click()
    expect(rita_page.locator("#step-3 .tick")).to_have_text("skipped")

    # Cole never reloads: polling brings the change.
    expect(cole_page.locator("#step-3 .tick")).to_have_text("skipped", timeout=8000)
    expect(cole_page.locator("#timeline-list li").first).to_contain_text(
        "skipped step 3 (Drop old partitions): no partitions older than 12 months"
    )
    cole_page.locator("#incident-head").get_by_role(
        "button", name="Mark mitigated"
    ).click()
    expect(rita_page.locator("#incident-head .status")).to_have_text(
        "mitigated", timeout=8000
    )
    rita_page.context.close()
    cole_page.context.close()


def test_a_button_just_swapped_in_is_live_at_once(page, console):
    """htmx makes swapped-in forms live in its settle step: with its default 20 ms
    settle delay, a button pressed just after its step was redrawn (a Run right after
    a poll brought the step) was sent as a plain form, a whole page load. The
    console settles at once: here Reopen is pressed in the very task that drew it."""
    sign_in(page, console, "cole", PASSWORD)
    page.goto(f"{console.url}/playbooks/redis-down-unreachable/")
    page.get_by_role("button", name="Open an incident now").click()
    expect(page).to_have_url(re.compile(r"/incidents/\d+/$"))
    page.evaluate("window.__marker = 'no reload'")
    page.evaluate(
        """() => new Promise((resolve) => {
            const steps = document.getElementById('step-1').parentNode;
            const observer = new MutationObserver(() => {
                const reopen = document.querySelector('#step-1 button[title^="Reopen"]');
                if (reopen) { observer.disconnect(); reopen.click(); resolve(); }
            });
            observer.observe(steps, {childList: true, subtree: true});
            document.querySelector('#step-1 button.done').click();
        })"""
    )
    expect(page.locator("#timeline-list li").first).to_contain_text("reopened step 1")
    expect(page.locator("#step-1 button.done")).to_be_visible()
    assert page.evaluate("window.__marker") == "no reload"
