"""Four eyes in two browsers: one commander asks, another approves, the action runs,
and both see it; no page breaks the Content-Security-Policy."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from incidents.models import Playbook
from incidents.services import import_runbook
from tests.conftest import IMPORTER, PASSWORD, YOMIRA_RUNBOOK, grant
from tests.e2e.conftest import sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("worker")]  # fmt: skip


def watch_csp(page, violations: list) -> None:  # noqa: ANN001
    page.on(
        "console",
        lambda msg: (
            "Content Security Policy" in msg.text and violations.append(msg.text)
        ),
    )


def test_one_asks_another_approves_and_both_see_the_result(
    browser, live_server, make_user
):
    import_runbook(source=YOMIRA_RUNBOOK.read_bytes(), actor=IMPORTER)
    disk = Playbook.objects.current().get(number=9)
    grant(make_user("cole", "Commander"), "run_actions", playbooks=[disk])
    grant(make_user("abe", "Commander"), "approve_actions", playbooks=[disk])
    violations: list[str] = []
    cole = browser.new_context().new_page()
    abe = browser.new_context().new_page()
    watch_csp(cole, violations)
    watch_csp(abe, violations)

    sign_in(cole, live_server, "cole", PASSWORD)
    cole.goto(f"{live_server.url}/incidents/new/?playbook=disk-space-critical")
    cole.fill("#id_title", "Disk at 96%")
    cole.get_by_role("button", name="Open incident").click()
    expect(cole).to_have_url(re.compile(r"/incidents/\d+/$"))
    url = cole.url

    step = cole.locator("#step-3")
    step.get_by_role("button", name="Preview action").click()
    expect(step.locator(".preview")).to_contain_text("No preview possible")
    expect(step.locator(".preview")).to_contain_text("analytics.pageview_2025_01")
    step.get_by_placeholder("type “drop”").fill("drop")
    step.get_by_role("button", name="Ask for approval").click()
    expect(cole.locator("#step-3 .execution .run-state").first).to_have_text(
        "Awaiting approval"
    )
    expect(
        cole.locator("#step-3").get_by_role("button", name="Approve and run")
    ).to_have_count(0)

    sign_in(abe, live_server, "abe", PASSWORD)
    abe.goto(f"{live_server.url}/approvals/")
    expect(abe.locator("table")).to_contain_text(
        "DROP TABLE IF EXISTS analytics.pageview_2025_01"
    )
    abe.goto(url)
    abe.locator("#step-3").get_by_role("button", name="Approve and run").click()
    expect(abe.locator("#step-3 .execution .run-state").first).to_have_text(
        "Succeeded", timeout=10_000
    )

    # Cole never reloads: the poller brings the approval and the result.
    first = cole.locator("#step-3 .execution").first
    expect(first.locator(".run-state")).to_have_text("Succeeded", timeout=10_000)
    expect(first).to_contain_text("approved by abe")
    expect(cole.locator("#timeline-list")).to_contain_text(
        "approved `DROP TABLE IF EXISTS"
    )
    assert violations == []
    cole.context.close()
    abe.context.close()
