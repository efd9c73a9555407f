"""The README's screenshots of the checklist, the library and the preview, taken
from a real console with a real worker and target database. Only with
YOMIRA_SCREENSHOTS=1 (`YOMIRA_SCREENSHOTS=1 make test PYTEST_ARGS=tests/integration/
test_readme_screens.py`): the behaviour they show is checked by the layout, pid
picker and approvals browser tests; this only draws it."""

from __future__ import annotations

import os
import re

import pytest
from playwright.sync_api import Browser, Page, expect

from incidents.services import import_runbook
from tests.conftest import IMPORTER, PASSWORD, ROOT, YOMIRA_RUNBOOK, grant
from tests.e2e.conftest import sign_in
from tests.integration.test_pid_picker_browser import LongQuery

SHOTS = ROOT / "docs" / "screenshots"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("worker"),
    pytest.mark.skipif(
        os.environ.get("YOMIRA_SCREENSHOTS") != "1",
        reason="draws the README's screenshots only with YOMIRA_SCREENSHOTS=1",
    ),
]


def screen(browser: Browser, width: int, height: int, theme: str) -> Page:
    context = browser.new_context(viewport={"width": width, "height": height})
    context.add_init_script(f"localStorage.setItem('yomira-theme', '{theme}');")
    page = context.new_page()
    page.set_default_timeout(15_000)
    return page


def shot(page: Page, name: str, **options: object) -> None:
    # caret="initial": hiding the caret puts inline styles on inputs (CSP).
    page.screenshot(path=str(SHOTS / f"{name}.png"), caret="initial", **options)


def test_readme_screenshots(browser, live_server, make_user, seeded_target):
    import_runbook(source=YOMIRA_RUNBOOK.read_bytes(), actor=IMPORTER)
    cole = make_user("cole", "Commander")
    grant(cole, "run_actions")
    stuck = LongQuery(seeded_target)
    stuck.wait_until_old(seeded_target)

    laptop = screen(browser, 1360, 900, "light")
    sign_in(laptop, live_server, "cole", PASSWORD)
    laptop.goto(f"{live_server.url}/playbooks/")
    shot(laptop, "playbooks-light")
    laptop.goto(f"{live_server.url}/playbooks/db-connection-pool-exhausted/")
    dark = screen(browser, 1360, 900, "dark")
    sign_in(dark, live_server, "cole", PASSWORD)
    dark.goto(f"{live_server.url}/playbooks/crawler-stuck-jobs/")
    shot(dark, "playbook-dark")

    # One click opens the incident; step 1 and step 2 run; the pid is picked.
    dark.goto(f"{live_server.url}/playbooks/db-connection-pool-exhausted/")
    dark.get_by_role("button", name="Open an incident now").click()
    expect(dark).to_have_url(re.compile(r"/incidents/\d+/$"))
    incident_url = dark.url
    for number in (1, 2):
        step = dark.locator(f"#step-{number}")
        step.locator("button.run-probe").first.click()
        expect(step.locator(".execution .run-state").first).to_have_text("Succeeded")
    dark.evaluate("window.scrollTo(0, 0)")
    shot(dark, "checklist-dark")

    row = dark.locator("#step-2 table.result-table tbody tr", has_text="stuck report")
    row.locator("td").first.locator("summary").click()
    dark.locator("#step-2").screenshot(
        path=str(SHOTS / "pid-picker-dark.png"), caret="initial"
    )
    row.get_by_role("button", name="terminate").click()
    preview = dark.locator(".preview").first
    expect(preview).to_contain_text(f"backend {stuck.pid}")
    preview.scroll_into_view_if_needed()
    dark.mouse.wheel(0, -120)
    shot(dark, "preview-dark")

    phone = screen(browser, 390, 844, "light")
    sign_in(phone, live_server, "cole", PASSWORD)
    phone.goto(incident_url)
    shot(phone, "checklist-phone-light")
    phone.goto(f"{live_server.url}/incidents/")
    laptop.goto(f"{live_server.url}/incidents/")
    shot(laptop, "incidents-light")
    stuck.conn.cancel()
