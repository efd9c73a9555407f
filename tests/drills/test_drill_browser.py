"""A drill in a real browser, against the real simulated stack and a real worker: a
Commander starts "Crawler jobs running for hours" on /drills/, follows the drill
to its DRILL incident, runs the playbook's reset-stuck action (preview, typed
word), and sees the drill healed with its scorecard. The drills pages are clean
on a phone and a laptop in both themes (no sideways scroll, no CSP refusal, no
console error)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from playwright.sync_api import Page, expect

from drills.models import Drill
from incidents.models import Command
from probes.commands import confirm_word
from tests.conftest import PASSWORD, ROOT, grant
from tests.drills.conftest import restore
from tests.e2e.conftest import (
    assert_clean,
    no_sideways_scroll,
    sign_in,
    themed_page,
    watch,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("worker_at_rest"),
]
RESET_STUCK = (
    "curl -X POST https://api.yomira.app/api/v1/admin/crawler/jobs/reset-stuck"
)
# Set to a folder to keep the README's screenshots (a drill running, its scorecard).
SHOTS = os.environ.get("DRILL_SCREENSHOTS")


@pytest.fixture
def console(live_server, sandbox_on, yomira, make_user):  # noqa: ANN001, ANN201
    make_user("cole", "Commander")
    grant(Group.objects.get(name="Commander"), "run_actions")
    yield live_server, sandbox_on
    restore(sandbox_on)


def shot(page: Page, name: str, *, full: bool = True) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(Path(SHOTS) / name), full_page=full)


def test_a_commander_runs_a_drill_to_its_scorecard(browser, console):
    server, _stack = console
    page = themed_page(browser, 1360, 900, "light")
    errors = watch(page)
    sign_in(page, server, "cole", PASSWORD)
    page.goto(f"{server.url}/drills/")
    assert_clean(page, errors)
    shot(page, "drills-list.png", full=False)
    card = page.locator("#scenario-crawler-stuck")
    card.get_by_role("button", name="Start drill").click()

    expect(page).to_have_url(re.compile(r"/drills/\d+/$"))
    expect(page.locator(".drill-state").first).to_have_text("Running")
    drill = Drill.objects.get()
    page.get_by_role("link", name=re.compile(r"^Incident #")).click()
    expect(page).to_have_url(re.compile(rf"/incidents/{drill.incident_id}/$"))
    expect(page.locator("#incident-head .drill-badge").first).to_be_visible()

    page.get_by_role("button", name="Mark acknowledged").click()
    expect(page.locator("#incident-head")).to_contain_text("acknowledged")
    logs = Command.objects.get(
        playbook=drill.incident.playbook, text__startswith="SELECT log.level"
    )
    page.locator(f"#run-{logs.pk}").get_by_role("button", name="Run").click()
    expect(page.locator(f"#run-{logs.pk} .run-state").first).to_have_text(
        "Succeeded", timeout=30_000
    )
    command = Command.objects.get(
        playbook=drill.incident.playbook, text__startswith=RESET_STUCK
    )
    panel = page.locator(f"#run-{command.pk}")
    panel.get_by_role("button", name="Preview action").click()
    word = confirm_word(command)
    panel.get_by_placeholder(f"type “{word}”").fill(word)
    panel.get_by_role("button", name="Run action").click()
    expect(page.locator(f"#run-{command.pk} .run-state").first).to_have_text(
        "Succeeded", timeout=30_000
    )
    assert_clean(page, errors)
    # Last on this page: a screenshot leaves style="" on inputs, which htmx's
    # next swap copies (a CSP report that is the screenshot's, not the page's).
    shot(page, "drill-incident.png", full=False)

    # The worker checks the drill once the run has finished: healed.
    page.goto(f"{server.url}{drill.get_absolute_url()}")
    for _ in range(60):
        if page.locator(".drill-state").first.inner_text() == "Healed":
            break
        page.wait_for_timeout(500)
        page.reload()
    expect(page.locator(".drill-state").first).to_have_text("Healed")
    expect(page.locator(".health-checks")).to_contain_text("healthy")
    expect(page.locator("table.scorecard")).to_contain_text("to mitigation (healthy)")
    expect(page.locator(".drill-steps").first).to_contain_text("curl -X POST")
    acknowledged = page.locator("table.scorecard tbody tr").first.locator("td").first
    expect(acknowledged).not_to_have_text("—")
    assert "SELECT log.level" in page.locator(".scorecard-first-probe").inner_text()
    shot(page, "drill-scorecard.png")
    assert_clean(page, errors)
    page.context.close()


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("width", [390, 1360])
def test_the_drill_pages_fit_a_phone_and_both_themes(browser, console, theme, width):
    server, _stack = console
    page = themed_page(browser, width, 900, theme)
    errors = watch(page)
    sign_in(page, server, "cole", PASSWORD)
    page.goto(f"{server.url}/drills/")
    expect(page.get_by_role("button", name="Start drill")).to_have_count(12)
    no_sideways_scroll(page)
    assert_clean(page, errors)
    shot(page, f"drills-list-{width}-{theme}.png")
    drill = Drill.objects.create(
        scenario="crawler-stuck",
        title="Crawler jobs running for hours, with a long title that must wrap",
        playbook_number=6,
    )
    page.goto(f"{server.url}{drill.get_absolute_url()}")
    expect(page.locator("table.scorecard")).to_be_visible()
    no_sideways_scroll(page)
    assert_clean(page, errors)
    shot(page, f"drill-{width}-{theme}.png")
    page.context.close()


# The line the lead adds at the end of templates/incidents/partials/command.html
# (inside its outer <div>); until then this test draws a copy that has it.
SIMULATE_INCLUDE = (
    '{% if incident.drill and command.kind == "manual" %}'
    '{% include "drills/partials/simulate.html" %}{% endif %}'
)


@pytest.fixture
def checklist_with_simulate(settings, tmp_path):  # noqa: ANN001, ANN201
    source = ROOT / "templates" / "incidents" / "partials" / "command.html"
    text = source.read_text()
    if "drills/partials/simulate.html" not in text:
        head, _, tail = text.rpartition("</div>")
        text = head + SIMULATE_INCLUDE + "\n</div>" + tail
        copy = tmp_path / "incidents" / "partials" / "command.html"
        copy.parent.mkdir(parents=True)
        copy.write_text(text)
        settings.TEMPLATES = [
            {
                **settings.TEMPLATES[0],
                "DIRS": [tmp_path, *settings.TEMPLATES[0]["DIRS"]],
            }
        ]


@pytest.mark.usefixtures("checklist_with_simulate")
def test_simulate_a_manual_step_from_the_checklist(browser, console):
    server, stack = console
    page = themed_page(browser, 390, 844, "dark")
    errors = watch(page)
    sign_in(page, server, "cole", PASSWORD)
    page.goto(f"{server.url}/drills/")
    page.locator("#scenario-redis-stopped").get_by_role(
        "button", name="Start drill"
    ).click()
    expect(page).to_have_url(re.compile(r"/drills/\d+/$"))
    assert not stack.part("redis").running()
    drill = Drill.objects.get()
    page.goto(f"{server.url}{drill.incident.get_absolute_url()}")
    restart = Command.objects.get(
        playbook=drill.incident.playbook,
        text__startswith="docker compose restart redis",
    )
    form = page.locator(f"#command-{restart.pk} .simulate-form")
    expect(form).to_contain_text("restarted the Redis container")
    # Only the mapped manual command offers it.
    expect(page.locator(".simulate-form")).to_have_count(1)
    form.get_by_role("button", name="Simulate").click()
    expect(page.locator("#timeline-list")).to_contain_text("simulated", timeout=10_000)
    assert stack.part("redis").running()
    no_sideways_scroll(page)
    assert_clean(page, errors)
    # The worker's check after the simulated step heals the drill.
    for _ in range(60):
        drill.refresh_from_db()
        if drill.state != Drill.State.RUNNING:
            break
        page.wait_for_timeout(250)
    assert drill.state == Drill.State.HEALED, drill.last_check
    page.context.close()
