"""DRILL in a real browser: the badge on the incident header and in the list,
readable (its own colours, contrast checked as drawn) on a laptop and a phone in
both themes, the list's drill filter working through htmx, and no console error
or sideways scroll anywhere."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect

from incidents.actors import Actor
from incidents.models import Playbook
from incidents.services import import_runbook, open_incident
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

# WCAG contrast of an element's text against its own background, as drawn.
CONTRAST = """
(el) => {
  const rgb = (v) => v.match(/[\\d.]+/g).slice(0, 3).map(Number);
  const lum = (c) => {
    const [r, g, b] = c.map((x) => {
      x /= 255;
      return x <= 0.03928 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const style = getComputedStyle(el);
  const [a, b] = [lum(rgb(style.color)), lum(rgb(style.backgroundColor))];
  return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
}
"""


@pytest.fixture
def console(live_server, make_user):
    import_runbook(source=YOMIRA_RUNBOOK.read_bytes(), actor=IMPORTER)
    cole = make_user("cole", "Commander")
    playbook = Playbook.objects.current().get(number=4)
    real = open_incident(
        playbook=playbook, title="Real Redis outage", actor=Actor.person(cole)
    )
    drill = open_incident(
        playbook=playbook,
        title="Practice Redis outage",
        actor=Actor.person(cole),
        drill=True,
    )
    return live_server, real, drill


@pytest.fixture(
    params=[(s, t) for s in SCREENS for t in ("light", "dark")],
    ids=lambda p: "-".join(p),
)
def screen(request: pytest.FixtureRequest, browser: Browser):
    size, theme = request.param
    page = themed_page(browser, *SCREENS[size], theme)
    yield page, watch(page), theme, SCREENS[size][0]
    page.context.close()


def readable(page: Page, selector: str, width: int) -> None:
    badge = page.locator(selector).first
    expect(badge).to_be_visible()
    expect(badge).to_have_text("DRILL")
    assert badge.evaluate(CONTRAST) >= 7, "the DRILL badge is hard to read"
    box = badge.bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= width


def test_drill_badge_on_header_and_list_on_any_screen_in_both_themes(screen, console):
    page, errors, theme, width = screen
    live, real, drill = console
    sign_in(page, live, "cole", PASSWORD)
    assert page.evaluate("document.documentElement.dataset.theme") == theme

    page.goto(f"{live.url}/incidents/{drill.pk}/")
    readable(page, "#incident-head .badges .drill-badge", width)
    expect(page.locator("#incident-head")).to_have_class(
        "incident-head status-bar-open is-drill"
    )
    expect(page.locator("#timeline-list .event .drill-badge").first).to_be_visible()
    no_sideways_scroll(page)
    assert_clean(page, errors)

    page.goto(f"{live.url}/incidents/{real.pk}/")
    expect(page.locator("#incident-head h1")).to_contain_text("Real Redis outage")
    expect(page.locator(".drill-badge")).to_have_count(0)
    assert_clean(page, errors)

    page.goto(f"{live.url}/incidents/")
    rows = page.locator("#results tbody tr")
    expect(rows).to_have_count(2)
    drill_row = rows.filter(has_text="Practice Redis outage")
    readable(page, "#results tbody tr .drill-badge", width)
    expect(drill_row.locator(".drill-badge")).to_have_count(1)
    expect(
        rows.filter(has_text="Real Redis outage").locator(".drill-badge")
    ).to_have_count(0)
    no_sideways_scroll(page)

    # The filter answers in place (htmx) and keeps the choice in the address.
    page.select_option("select[name=drill]", "yes")
    expect(page).to_have_url(
        f"{live.url}/incidents/?status=&severity=&playbook=&drill=yes"
    )
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Practice Redis outage")
    page.select_option("select[name=drill]", "no")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Real Redis outage")
    no_sideways_scroll(page)
    assert_clean(page, errors)
