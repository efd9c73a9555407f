"""Helpers for the browser tests (the browser fixtures live in tests/conftest.py)."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, ConsoleMessage, Page


def sign_in(page: Page, live_server, username: str, password: str) -> None:  # noqa: ANN001
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")


# Every CSP refusal, with where it came from (console messages alone lose it).
WATCH_CSP = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__csp.push(e.violatedDirective + " " + e.sourceFile + ":" + e.lineNumber);
});
"""


def themed_page(browser: Browser, width: int, height: int, theme: str) -> Page:
    """A page of its own context at this size, in this theme (as the top bar's
    toggle stores it), recording CSP violations in window.__csp."""
    context = browser.new_context(viewport={"width": width, "height": height})
    context.add_init_script(f"localStorage.setItem('yomira-theme', '{theme}');")
    context.add_init_script(WATCH_CSP)
    page = context.new_page()
    page.set_default_timeout(10_000)
    return page


def watch(page: Page, provoked: re.Pattern[str] | None = None) -> list[str]:
    """Console errors and uncaught exceptions, but for the refusals a test
    provokes on purpose (the browser and htmx log their status)."""
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error" and not (provoked and provoked.search(message.text)):
            errors.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return errors


def no_sideways_scroll(page: Page) -> None:
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{page.url} scrolls sideways by {overflow}px"


def assert_clean(page: Page, errors: list[str]) -> None:
    """No CSP violation on this page and no console error so far."""
    assert page.evaluate("window.__csp") == []
    assert errors == []
