"""The pid picker end to end, against the real target database: a query that has
run for more than 30 s is found by step 2 of "DB Connection Pool Exhausted",
"terminate" is picked from its row, previewed, approved by a second person and run;
the backend is gone and the post-mortem names the pid. Then the tables at 1360 px
and 390 px, light and dark, with no console error and no CSP violation; and a pid
that is not a backend is said to be nothing to act on, with no Run."""

from __future__ import annotations

import re
import threading
import time

import psycopg
import pytest
from playwright.sync_api import Page, expect

from incidents.models import Command, Playbook, StepExecution
from incidents.services import import_runbook
from tests.conftest import ARTIFACTS, IMPORTER, PASSWORD, YOMIRA_RUNBOOK, grant
from tests.e2e.conftest import sign_in

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("worker"),
]

# Step 2 lists queries running for more than 30 seconds.
OLD_ENOUGH = 31


class LongQuery:
    """A backend of the target database stuck in `pg_sleep` (until terminated)."""

    def __init__(self, url: str) -> None:
        self.conn = psycopg.connect(url, autocommit=True)
        self.pid = self.conn.info.backend_pid
        self.ended: list[str] = []
        self.thread = threading.Thread(target=self._sleep, daemon=True)
        self.thread.start()

    def _sleep(self) -> None:
        try:
            self.conn.execute("SELECT pg_sleep(600) /* stuck report */")
        except psycopg.Error as exc:
            self.ended.append(type(exc).__name__)

    def wait_until_old(self, url: str) -> None:
        """Until pg_stat_activity says it has run longer than step 2's 30 s."""
        with psycopg.connect(url, autocommit=True) as watcher:
            for _ in range(600):
                old = watcher.execute(
                    "SELECT now() - query_start > make_interval(secs => %s) "
                    "FROM pg_stat_activity WHERE pid = %s",
                    [OLD_ENOUGH, self.pid],
                ).fetchone()
                if old and old[0]:
                    return
                time.sleep(0.1)
        raise AssertionError(f"backend {self.pid} never ran {OLD_ENOUGH} s")

    def close(self) -> None:
        self.conn.close()


def alive(url: str, pid: int) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid])
        return found.fetchone() is not None


def watch(page: Page, problems: list[str]) -> None:
    page.on(
        "console",
        lambda msg: msg.type == "error" and problems.append(msg.text),
    )
    page.on("pageerror", lambda exc: problems.append(f"pageerror: {exc}"))


@pytest.fixture
def pool_world(live_server, make_user, target_env):  # noqa: ANN001, ANN201
    import_runbook(source=YOMIRA_RUNBOOK.read_bytes(), actor=IMPORTER)
    pool = Playbook.objects.current().get(number=5)
    grant(make_user("cole", "Commander"), "run_actions", playbooks=[pool])
    grant(make_user("abe", "Commander"), "approve_actions", playbooks=[pool])
    terminate = Command.objects.get(
        playbook=pool, text__startswith="SELECT pg_terminate_backend"
    )
    assert terminate.requires_approval
    return pool, terminate


def open_pool_incident(page: Page, live_server) -> str:  # noqa: ANN001
    sign_in(page, live_server, "cole", PASSWORD)
    page.goto(f"{live_server.url}/incidents/new/?playbook=db-connection-pool-exhausted")
    page.fill("#id_title", "Pool exhausted")
    page.get_by_role("button", name="Open incident").click()
    expect(page).to_have_url(re.compile(r"/incidents/\d+/$"))
    return page.url


def test_terminate_picked_from_step_two_is_approved_run_and_in_the_postmortem(
    browser, live_server, pool_world, target_database
):
    _, terminate = pool_world
    victim = LongQuery(target_database)
    problems: list[str] = []
    cole = browser.new_context(viewport={"width": 1360, "height": 900}).new_page()
    abe = browser.new_context(viewport={"width": 1360, "height": 900}).new_page()
    watch(cole, problems)
    watch(abe, problems)
    try:
        url = open_pool_incident(cole, live_server)
        victim.wait_until_old(target_database)

        step = cole.locator("#step-2")
        step.get_by_role("button", name="Run", exact=True).click()
        table = step.locator(".execution").first.locator("table.result-table")
        expect(table).to_be_visible(timeout=10_000)
        expect(table.locator("thead th").first).to_have_text(re.compile("pid"))
        row = table.locator("tbody tr", has_text="stuck report")
        expect(row).to_have_count(1)
        pid_cell = row.locator("td").first
        expect(pid_cell).to_have_class(re.compile(r"\bnum\b"))
        pid_cell.locator("summary").click()
        expect(pid_cell.get_by_role("button", name="cancel")).to_be_visible()
        ARTIFACTS.mkdir(exist_ok=True)
        # caret="initial": hiding the caret styles every input, which the next
        # swap would then copy under the CSP (a violation of the test's making).
        step.screenshot(path=str(ARTIFACTS / "results-pid-picker.png"), caret="initial")
        pid_cell.get_by_role("button", name="terminate").click()

        # The preview opens in step 3's terminate panel, with this pid filled in.
        panel = cole.locator(f"#run-{terminate.pk}")
        preview = panel.locator(".preview")
        expect(preview).to_contain_text(f"backend {victim.pid}: user postgres, active")
        expect(panel.locator(".param")).to_have_text(f"pid = {victim.pid}")
        panel.get_by_placeholder("type “terminate”").fill("terminate")
        panel.get_by_role("button", name="Ask for approval").click()
        expect(panel.locator(".execution .run-state").first).to_have_text(
            "Awaiting approval"
        )

        sign_in(abe, live_server, "abe", PASSWORD)
        abe.goto(url)
        abe.locator(f"#run-{terminate.pk}").get_by_role(
            "button", name="Approve and run"
        ).click()
        first = cole.locator(f"#run-{terminate.pk} .execution").first
        expect(first.locator(".run-state")).to_have_text("Succeeded", timeout=15_000)
        expect(first).to_contain_text("approved by abe")
        expect(first.locator("table.result-table")).to_contain_text("true")

        run = StepExecution.objects.get(command=terminate)
        assert run.parameters == {"pid": str(victim.pid)}
        assert run.approved_by.username == "abe"
        victim.thread.join(10)
        assert victim.ended and not alive(target_database, victim.pid)

        answer = cole.request.get(f"{url}postmortem.md")
        assert answer.ok
        named = [ln for ln in answer.text().splitlines() if f"pid={victim.pid}" in ln]
        assert named and "pg_terminate_backend" in named[0], answer.text()
        assert problems == [], problems
    finally:
        victim.close()
        cole.context.close()
        abe.context.close()


@pytest.mark.parametrize("width", [1360, 390])
@pytest.mark.parametrize("theme", ["light", "dark"])
def test_result_tables_fit_both_widths_and_themes_and_nothing_is_offered_no_run(
    browser, live_server, pool_world, target_database, width, theme
):
    _, terminate = pool_world
    problems: list[str] = []
    page = browser.new_context(viewport={"width": width, "height": 900}).new_page()
    watch(page, problems)
    try:
        url = open_pool_incident(page, live_server)
        # The theme as the toggle leaves it (static/js/theme.js reads it first).
        page.evaluate(f"localStorage.setItem('yomira-theme', '{theme}')")
        page.goto(url)
        expect(page.locator("html")).to_have_attribute("data-theme", theme)

        step = page.locator("#step-1")
        step.get_by_role("button", name="Run", exact=True).click()
        table = step.locator(".execution").first.locator("table.result-table")
        expect(table).to_be_visible(timeout=10_000)
        # Sortable: the header becomes a button; a number column is right-aligned.
        count = table.locator("thead th").first
        expect(count).to_have_class("num")
        count.get_by_role("button").click()
        expect(count).to_have_attribute("aria-sort", "ascending")
        assert (
            table.locator("tbody td").first.evaluate(
                "e => getComputedStyle(e).textAlign"
            )
            == "right"
        )
        scroll = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert scroll <= 0, f"page scrolls sideways by {scroll}px at {width}px"

        # A pid no backend has: the preview says so and offers no Run.
        panel = page.locator(f"#run-{terminate.pk}")
        panel.get_by_placeholder("pid").fill("99999999")
        panel.get_by_role("button", name="Preview action").click()
        expect(panel.locator(".nothing-to-act-on")).to_contain_text(
            "Nothing to act on: no backend has pid 99999999"
        )
        expect(panel.get_by_role("button", name="Ask for approval")).to_have_count(0)
        expect(panel.get_by_role("button", name="Run action")).to_have_count(0)
        expect(panel.get_by_role("button", name="Preview again")).to_be_visible()
        ARTIFACTS.mkdir(exist_ok=True)
        for name, shown in (("table", step), ("nothing", panel)):
            shown.screenshot(
                path=str(ARTIFACTS / f"results-{name}-{width}-{theme}.png")
            )
        assert problems == [], problems
    finally:
        page.context.close()
