"""An Admin uploads a changed runbook in a real browser, reads what it would change,
confirms, and an incident already open keeps the revision it started with. With
YOMIRA_SCREENSHOTS=1 the README's screenshot of the review is written
(docs/screenshots/runbook-import-diff.png)."""

from __future__ import annotations

import os
import re

import pytest
from django.contrib.auth.models import Group
from guardian.shortcuts import assign_perm
from playwright.sync_api import expect

from incidents.models import Playbook, Runbook
from incidents.services import import_runbook
from tests.conftest import IMPORTER, PASSWORD, ROOT, YOMIRA_RUNBOOK
from tests.e2e.conftest import no_sideways_scroll, sign_in, watch
from tests.test_runbook_diff import SECURITY, changed_yomira

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SHOT = ROOT / "docs" / "screenshots" / "runbook-import-diff.png"
WRITE = os.environ.get("YOMIRA_SCREENSHOTS") == "1"


@pytest.fixture
def library(live_server, make_user):
    import_runbook(
        source=YOMIRA_RUNBOOK.read_bytes(), source_name="yomira.md", actor=IMPORTER
    )
    make_user("ada", "Admin")
    # Grants on revision 1: one on a playbook the change keeps, one on the one it drops.
    pool = Playbook.objects.current().get(slug="db-connection-pool-exhausted")
    token = Playbook.objects.current().get(slug=SECURITY)
    assign_perm("incidents.run_actions", make_user("gina", "Commander"), pool)
    assign_perm(
        "incidents.approve_actions", Group.objects.create(name="Security"), token
    )
    return live_server


@pytest.fixture
def changed_file(tmp_path):
    path = tmp_path / "yomira.md"
    path.write_text(changed_yomira())
    return path


def test_an_admin_uploads_reviews_and_confirms_and_open_incidents_keep_theirs(
    page, library, changed_file
):
    problems = watch(page)
    sign_in(page, library, "ada", PASSWORD)

    # An incident opened on revision 1, before the upload.
    page.goto(f"{library.url}/incidents/new/")
    page.fill("#id_title", "Redis refusing connections")
    page.select_option("#id_playbook", "redis-down-unreachable")
    page.get_by_role("button", name="Open incident").click()
    expect(page).to_have_url(re.compile(r"/incidents/\d+/$"))
    incident_url = page.url
    expect(page.locator(".following")).to_contain_text("runbook revision 1")
    expect(page.locator("#step-3 .step-head")).to_contain_text("Restart Redis")

    page.goto(f"{library.url}/playbooks/")
    page.get_by_role("link", name="Import runbook").click()
    expect(page).to_have_url(f"{library.url}/runbooks/import/")
    page.set_input_files("#id_files", str(changed_file))
    page.get_by_role("button", name="Upload and review").click()

    expect(page.locator("h1")).to_contain_text("Review the import")
    expect(page.locator("main")).to_contain_text(
        "Against the current revision 1, the import makes revision 2"
    )
    redis = page.locator("#changed-redis-down-unreachable")
    expect(redis).to_contain_text(
        "Step 3 changed: Restart Redis → Restart Redis, last resort"
    )
    expect(redis).to_contain_text("Step 6 added: Write down")
    expect(redis.locator(".diff-rebound")).to_contain_text("probe redis → manual")
    expect(page.locator("#changed-db-connection-pool-exhausted")).to_contain_text(
        "Step 5 removed: Tune pool size"
    )
    expect(page.locator("main")).to_contain_text(
        "1 open incident follows revision 1. It keeps that revision"
    )
    grants = page.locator("section", has=page.get_by_role("heading", name="grants"))
    expect(grants).to_contain_text(
        f"Group Security: approve_actions on {SECURITY} — not carried over"
    )
    expect(grants).to_contain_text(
        "Person gina: run_actions on db-connection-pool-exhausted"
    )
    assert Runbook.objects.count() == 1  # nothing imported before the Confirm
    if WRITE:
        SHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOT), full_page=True)

    page.get_by_role("button", name="Import as revision 2").click()
    expect(page).to_have_url(f"{library.url}/playbooks/")
    expect(page.locator(".messages")).to_contain_text(
        "Imported 'Runbook — Yomira Incident Playbooks' as revision 2."
    )
    expect(page.locator("main")).to_contain_text("revision 2, imported")
    expect(page.get_by_role("link", name="Cache Stampede")).to_be_visible()

    # The open incident still follows revision 1, steps as they were.
    page.goto(incident_url)
    expect(page.locator(".following")).to_contain_text("runbook revision 1")
    expect(page.locator("#step-3 .step-head")).not_to_contain_text("last resort")
    expect(page.locator("#step-6")).to_have_count(0)
    # The library's playbook is the new revision.
    page.goto(f"{library.url}/playbooks/redis-down-unreachable/")
    expect(page.locator("#step-3")).to_contain_text("Restart Redis, last resort")
    expect(page.locator("#step-6")).to_contain_text("Write down")
    assert problems == []


def test_on_a_phone_without_javascript_the_upload_and_its_refusals_fit(
    browser, library, changed_file, tmp_path
):
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, java_script_enabled=False
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        sign_in(page, library, "ada", PASSWORD)
        page.goto(f"{library.url}/runbooks/import/")
        no_sideways_scroll(page)

        broken = tmp_path / "notes.md"
        broken.write_bytes(b"# Notes\n\n\xff broken\n")
        page.set_input_files("#id_files", str(broken))
        page.get_by_role("button", name="Upload and review").click()
        expect(page.get_by_role("alert")).to_contain_text(
            "notes.md:3: this is not UTF-8 Markdown text"
        )
        no_sideways_scroll(page)

        page.set_input_files("#id_files", str(changed_file))
        page.get_by_role("button", name="Upload and review").click()
        expect(page.locator("#changed-redis-down-unreachable")).to_be_visible()
        no_sideways_scroll(page)
        confirm = page.get_by_role("button", name="Import as revision 2")
        box = confirm.bounding_box()
        assert box is not None and box["x"] + box["width"] <= 390
        confirm.click()
        expect(page.locator(".messages")).to_contain_text("as revision 2.")
        assert Runbook.objects.get(is_current=True).revision == 2
    finally:
        context.close()


def test_an_upload_over_the_limit_is_refused_in_the_form(page, library, tmp_path):
    """Refused from its Content-Length, before the body is read: the browser still
    shows the form with the reason (not a reset connection)."""
    big = tmp_path / "big.md"
    big.write_bytes(b"# Big\n" + b"x" * (12 * 2**20))
    sign_in(page, library, "ada", PASSWORD)
    page.goto(f"{library.url}/runbooks/import/")
    page.set_input_files("#id_files", str(big))
    page.get_by_role("button", name="Upload and review").click()
    expect(page.get_by_role("alert")).to_contain_text(
        "The upload is 12.0 MB; at most 10.0 MB fit. Nothing was imported."
    )
    assert Runbook.objects.count() == 1
