"""The checklist at 3 a.m., on a laptop and on a phone, in both themes (issue 11
points 3-7): find the playbook by its alert, see what confirms it first, keep the
header's status buttons in reach while scrolling, never scroll sideways, and read
a refusal where it happened with what was typed still there."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect

from incidents.services import import_runbook
from tests.conftest import IMPORTER, PASSWORD, YOMIRA_RUNBOOK
from tests.e2e.conftest import (
    assert_clean,
    no_sideways_scroll,
    sign_in,
    themed_page,
    watch,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SCREENS = {"laptop": (1360, 900), "phone": (390, 844)}

# The refusals these tests provoke on purpose (a 400 answer is logged by the
# browser and by htmx); anything else on the console is a defect.
PROVOKED = re.compile(r"status of 400|Error Code 400")


@pytest.fixture
def console(live_server, make_user):
    import_runbook(source=YOMIRA_RUNBOOK.read_bytes(), actor=IMPORTER)
    make_user("cole", "Commander")
    return live_server


@pytest.fixture(
    params=[(s, t) for s in SCREENS for t in ("light", "dark")],
    ids=lambda p: "-".join(p),
)
def screen(
    request: pytest.FixtureRequest, browser: Browser
) -> tuple[Page, list[str], str]:
    size, theme = request.param
    page = themed_page(browser, *SCREENS[size], theme)
    yield page, watch(page, PROVOKED), theme
    page.context.close()


def test_the_incident_page_works_on_any_screen_in_both_themes(screen, console):
    page, errors, theme = screen
    sign_in(page, console, "cole", PASSWORD)
    assert page.evaluate("document.documentElement.dataset.theme") == theme

    # Point 3: the playbook field narrows as one types the alert's name.
    page.goto(f"{console.url}/incidents/new/")
    no_sideways_scroll(page)
    page.fill("[data-filter-options]", "DBPool")
    expect(page.locator("#id_playbook")).to_have_value("db-connection-pool-exhausted")
    page.fill("[data-filter-options]", "no such alert anywhere")
    expect(page.locator("#id_playbook-none")).to_be_visible()
    page.fill("[data-filter-options]", "pool")
    # A pasted trace id: one long word must wrap, not widen the page.
    page.fill("#id_title", "API waits for database connections " + "T" * 110)
    page.get_by_role("button", name="Open incident").click()
    expect(page).to_have_url(re.compile(r"/incidents/\d+/$"))
    no_sideways_scroll(page)

    # Point 4: what confirms the playbook (its Symptoms) comes before the steps.
    context = page.locator("#context")
    expect(context).to_have_attribute("open", "")
    expect(context).to_contain_text("db_pool_wait_seconds")
    assert page.evaluate(
        "Boolean(document.getElementById('context').compareDocumentPosition("
        "document.getElementById('steps')) & Node.DOCUMENT_POSITION_FOLLOWING)"
    )

    # Point 7: a refused note says so in the note form, the text kept, the rest
    # of the page (the flash at the top) untouched.
    note = page.locator("textarea[name=text]")
    note.evaluate("t => { t.removeAttribute('required'); t.value = '   '; }")
    page.get_by_role("button", name="Add note").click()
    expect(page.locator("#note-error")).to_contain_text("A note needs some text")
    expect(note).to_have_value("   ")
    expect(page.locator("#flash")).to_be_empty()

    # A refused status change says so in the header, next to its buttons.
    page.locator("input[name=status][value=acknowledged]").evaluate(
        "i => { i.value = 'sideways'; }"
    )
    page.get_by_role("button", name="Mark acknowledged").click()
    expect(page.locator("#incident-head .head-error")).to_have_text("Choose a status.")
    expect(page.locator("#flash")).to_be_empty()
    expect(page.locator("#note-error")).to_be_empty()  # any other answer clears it

    # Point 5: scrolled into the work, the header is compact, still on screen,
    # and its status buttons still reachable.
    page.evaluate("window.scrollTo(0, 0)")
    expect(page.locator(".checklist-page")).not_to_have_class(re.compile(r"scrolled"))
    full = page.locator("#incident-head").bounding_box()["height"]
    page.locator("#step-4").scroll_into_view_if_needed()
    page.mouse.wheel(0, 600)
    expect(page.locator(".checklist-page")).to_have_class(re.compile(r"\bscrolled\b"))
    head = page.locator("#incident-head").bounding_box()
    assert head["height"] < full
    assert 0 <= head["y"] < 80
    acknowledge = page.get_by_role("button", name="Mark acknowledged")
    expect(acknowledge).to_be_in_viewport()
    no_sideways_scroll(page)
    acknowledge.click()
    expect(page.locator("#incident-head .next-move")).to_contain_text("mitigate")
    # ... and the symptoms fold away once acknowledged.
    expect(context).not_to_have_attribute("open", "")

    # j/k: the step moved to is not hidden under the sticky header.
    page.locator("#step-1").focus()
    for _ in range(3):
        page.keyboard.press("j")
    step = page.locator("#step-4")
    expect(step).to_be_focused()
    header_bottom = page.evaluate(
        "document.getElementById('incident-head').getBoundingClientRect().bottom"
    )
    assert step.bounding_box()["y"] >= header_bottom - 1

    assert_clean(page, errors)

    # Point 6: the other pages a responder uses fit the screen too. (A poll in
    # flight when the checklist is left may log that its target is gone: that
    # is the test leaving mid-request, so the slate is wiped after leaving.)
    page.goto(f"{console.url}/playbooks/")
    errors.clear()
    for path in ("/playbooks/", "/incidents/", "/approvals/", "/alerts/"):
        page.goto(f"{console.url}{path}")
        no_sideways_scroll(page)
        assert_clean(page, errors)


def test_a_refused_skip_keeps_its_reason(commander_client, incident):
    """A skip refused by the server (here: a stale 'expected' that is not a
    number) comes back in the step with the reason the person typed."""
    response = commander_client.post(
        f"/incidents/{incident.pk}/steps/1/tick",
        {"state": "skipped", "reason": "bastion is down", "expected": "x"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 400
    html = response.content.decode()
    step = html[html.index('id="step-1"') :]
    assert 'value="bastion is down"' in step[: step.index("</li>")]
