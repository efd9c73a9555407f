"""Helpers for the browser tests (the browser fixtures live in tests/conftest.py)."""

from __future__ import annotations

from playwright.sync_api import Page


def sign_in(page: Page, live_server, username: str, password: str) -> None:  # noqa: ANN001
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
