"""An answer whose asking element was redrawn while its request was in flight.

The live poller redraws steps and replaces itself with every answer, so a tick's
form, a Run, a picker, or the poller itself can be detached when its answer
arrives. htmx then finds none of the answer's out-of-band targets (it looks them
up from the detached element) and logs oobErrorNoTarget; a tick's answer is lost
until the next poll. Both races are forced here by holding the request in the
browser until the element is gone (the CI run that caught it lost the race by
chance)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, Route, expect

from incidents.services import import_runbook
from tests.conftest import IMPORTER, PASSWORD, YOMIRA_RUNBOOK
from tests.e2e.conftest import sign_in, watch

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def incident_page(page: Page, live_server, make_user) -> Page:  # noqa: ANN001
    import_runbook(source=YOMIRA_RUNBOOK.read_bytes(), actor=IMPORTER)
    make_user("rita", "Responder")
    sign_in(page, live_server, "rita", PASSWORD)
    page.goto(f"{live_server.url}/incidents/new/?playbook=redis-down-unreachable")
    page.fill("#id_title", "Redis slow")
    page.get_by_role("button", name="Open incident").click()
    expect(page).to_have_url(re.compile(r"/incidents/\d+/$"))
    return page


def hold(page: Page, pattern: str) -> list[Route]:
    """The first request matching `pattern` waits in the browser until released;
    the rest go through."""
    held: list[Route] = []
    first = [True]

    def keep(route: Route) -> None:
        if first[0]:
            first[0] = False
            held.append(route)
        else:
            route.continue_()

    page.route(re.compile(pattern), keep)
    return held


def wait_for(page: Page, held: list[Route]) -> Route:
    for _ in range(200):
        if held:
            return held.pop(0)
        page.wait_for_timeout(50)
    raise AssertionError("the request was never sent")


# What a poll that redraws the step does to the element that asked.
REDRAW_STEP_ONE = """() => {
  const step = document.getElementById("step-1");
  step.replaceWith(step.cloneNode(true));
}"""


def test_a_tick_whose_step_was_redrawn_in_flight_still_lands(incident_page: Page):
    page = incident_page
    errors = watch(page)
    held = hold(page, r"/steps/1/tick$")
    step = page.locator("#step-1")
    step.get_by_role("button", name="✓ Done").click(no_wait_after=True)
    tick = wait_for(page, held)
    page.evaluate(REDRAW_STEP_ONE)
    tick.continue_()
    # The answer is swapped against the document: the step and the timeline
    # show the tick now, not at the next poll.
    expect(page.locator("#step-1 .tick")).to_have_text("done")
    expect(page.locator("#timeline-list li").first).to_contain_text("done")
    assert errors == []


def test_a_poll_answered_after_an_action_replaced_the_poller_is_dropped(
    incident_page: Page,
):
    page = incident_page
    errors = watch(page)
    held = hold(page, r"/changes(\?|$)")
    poll = wait_for(page, held)
    # A note's answer carries a fresh poller: the one that asked is detached.
    old_poller = page.locator("#poller").element_handle()
    page.fill("textarea[name=text]", "seen from the edge")
    page.get_by_role("button", name="Add note").click()
    expect(page.locator("#timeline-list li").first).to_contain_text(
        "seen from the edge"
    )
    assert not old_poller.evaluate("e => e.isConnected")
    poll.continue_()
    # The stale answer is dropped (its successor asks with the newer cursor),
    # and the page keeps polling.
    page.wait_for_timeout(500)
    with page.expect_response(re.compile(r"/changes(\?|$)"), timeout=10_000):
        pass
    expect(page.locator("#timeline-list li").first).to_contain_text(
        "seen from the edge"
    )
    assert errors == []
