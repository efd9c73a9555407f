"""An Admin grants and revokes one person's right to run a playbook's actions from
its access page, in a real browser: wide and phone-sized, light and dark, with and
without JavaScript; no console errors, no Content-Security-Policy violations."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from incidents import access
from incidents.models import AuditEvent, Playbook
from incidents.services import import_runbook
from tests.conftest import IMPORTER, PASSWORD, YOMIRA_RUNBOOK
from tests.e2e.conftest import no_sideways_scroll, sign_in, watch

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ACCESS = "/playbooks/db-connection-pool-exhausted/access/"
# The page background of each theme (console.css --bg).
BACKGROUNDS = {"light": "rgb(246, 247, 249)", "dark": "rgb(15, 17, 21)"}


@pytest.fixture
def library(live_server, make_user):
    import_runbook(source=YOMIRA_RUNBOOK.read_bytes(), actor=IMPORTER)
    make_user("ada", "Admin")
    make_user("cole", "Commander")
    return live_server


def choose_theme(page: Page, theme: str) -> None:
    """With the top bar's own toggle (console.js stores it; theme.js applies it
    before the next page paints)."""
    toggle = page.locator("[data-theme-toggle]")
    if page.locator("html").get_attribute("data-theme") != theme:
        toggle.click()
    if page.locator("html").get_attribute("data-theme") != theme:
        toggle.click()
    page.reload()
    expect(page.locator("html")).to_have_attribute("data-theme", theme)
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == BACKGROUNDS[theme]


def cole_may_run_actions() -> bool:
    from django.contrib.auth import get_user_model

    cole = get_user_model().objects.get(username="cole")
    pool = Playbook.objects.current().get(number=5)
    return access.can_on_playbook(cole, access.RUN_ACTIONS, pool)


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("width", [1360, 390], ids=["wide", "phone"])
def test_an_admin_grants_and_revokes_in_place(page, library, width, theme):
    page.set_viewport_size({"width": width, "height": 900})
    problems = watch(page)
    # The audit log is append-only: earlier tests' records stay.
    start = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first()
    sign_in(page, library, "ada", PASSWORD)
    page.goto(library.url + ACCESS)
    choose_theme(page, theme)
    page.evaluate("window.__marker = 'same page'")

    row = page.locator("tr", has=page.get_by_role("cell", name="cole", exact=True))
    row.get_by_role("button", name="Grant cole the right to run actions").click()
    revoke = row.get_by_role("button", name="Revoke cole's grant to run actions")
    expect(revoke).to_be_visible()
    expect(page.locator("#flash")).to_contain_text(
        "cole may now run actions on §5 DB Connection Pool Exhausted"
    )
    assert cole_may_run_actions()
    # Swapped by htmx, the new button has the focus the old one had.
    assert page.evaluate("window.__marker") == "same page"
    expect(revoke).to_be_focused()
    box = revoke.bounding_box()
    assert box is not None and box["x"] + box["width"] <= width
    no_sideways_scroll(page)

    revoke.click()
    expect(
        row.get_by_role("button", name="Grant cole the right to run actions")
    ).to_be_visible()
    expect(page.locator("#flash")).to_contain_text("taken back")
    assert not cole_may_run_actions()
    # Ada's own rights come from her role: said, and nothing to revoke.
    ada = page.locator("tr", has=page.get_by_role("cell", name="ada", exact=True))
    expect(ada).to_contain_text("role Admin")
    expect(ada.get_by_role("button")).to_have_count(0)
    no_sideways_scroll(page)

    changes = AuditEvent.objects.filter(
        verb="grant.changed", actor_name="ada", seq__gt=start or 0
    )
    assert [e.data["action"] for e in changes.order_by("seq")] == ["add", "remove"]
    assert problems == []


def test_without_javascript_a_grant_comes_back_to_the_page(browser, library):
    context = browser.new_context(
        viewport={"width": 390, "height": 900}, java_script_enabled=False
    )
    try:
        page = context.new_page()
        page.set_default_timeout(10_000)
        sign_in(page, library, "ada", PASSWORD)
        page.goto(library.url + ACCESS)
        page.get_by_role("button", name="Grant cole the right to run actions").click()
        expect(page).to_have_url(re.compile(r"/access/#person-\d+$"))
        expect(page.locator(".messages")).to_contain_text("cole may now run actions")
        expect(
            page.get_by_role("button", name="Revoke cole's grant to run actions")
        ).to_be_visible()
        assert cole_may_run_actions()
    finally:
        context.close()


def test_a_commander_sees_who_may_act_but_no_grant_buttons(page, library):
    problems = watch(page)
    sign_in(page, library, "cole", PASSWORD)
    page.goto(library.url + ACCESS)
    expect(page.locator("table.access tbody tr")).to_have_count(2)
    expect(page.locator("table.access").get_by_role("button")).to_have_count(0)
    assert problems == []
