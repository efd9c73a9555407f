"""A person makes an API token in the browser, uses it from a script, reads the
API's docs page, and revokes the token: wide and phone-sized, light and dark, no
console errors, no Content-Security-Policy violations, no sideways scroll."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import expect

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


@pytest.fixture
def console(live_server, make_user):
    import_runbook(source=YOMIRA_RUNBOOK.read_bytes(), actor=IMPORTER)
    make_user("rita", "Responder")
    return live_server


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("width", [1360, 390], ids=["wide", "phone"])
def test_a_token_made_used_and_revoked_in_the_browser(browser, console, width, theme):
    page = themed_page(browser, width, 900, theme)
    errors = watch(page)
    sign_in(page, console, "rita", PASSWORD)
    page.get_by_role("link", name="API tokens").click()
    expect(page.get_by_role("heading", name="API tokens")).to_be_visible()
    page.fill("#token-name", "chatops bot")
    page.check("input[name=scope][value=write]")
    page.get_by_role("button", name="Make token").click()
    secret = page.locator(".token-made pre code").inner_text().strip()
    assert secret.startswith("yom_")
    no_sideways_scroll(page)
    assert_clean(page, errors)

    api = f"{console.url}/api/v1"
    headers = {"Authorization": f"Bearer {secret}"}
    opened = httpx.post(
        f"{api}/incidents",
        json={"playbook": "redis-down-unreachable", "title": "from a script"},
        headers=headers,
    )
    assert opened.status_code == 201, opened.text
    assert opened.json()["opened_by"] == "rita"

    page.goto(f"{api}/docs")
    expect(page.locator("#swagger-ui .title").first).to_contain_text("Yomira")
    assert_clean(page, errors)

    page.goto(f"{console.url}/account/tokens/")
    expect(page.get_by_role("cell", name="chatops bot")).to_be_visible()
    assert secret not in page.content()
    page.get_by_role("button", name="Revoke").click()
    expect(page.get_by_role("cell", name="live")).to_have_count(0)
    no_sideways_scroll(page)
    assert_clean(page, errors)
    refused = httpx.get(f"{api}/incidents", headers=headers)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthenticated"
    page.context.close()
