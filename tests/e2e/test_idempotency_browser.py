"""One-time keys in a real browser: a double click adds one note, and the next
note (same page, no reload) is a new note, because each answer hands the form a
fresh key."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from incidents.models import Incident
from incidents.services import import_runbook
from tests.conftest import IMPORTER, PASSWORD, YOMIRA_RUNBOOK
from tests.e2e.conftest import sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def console(live_server, make_user):
    import_runbook(source=YOMIRA_RUNBOOK.read_bytes(), actor=IMPORTER)
    make_user("rita", "Responder")
    return live_server


def test_a_double_clicked_note_is_one_note_and_the_next_is_another(page, console):
    sign_in(page, console, "rita", PASSWORD)
    page.goto(f"{console.url}/incidents/new/?playbook=redis-down-unreachable")
    page.fill("#id_title", "Redis slow")
    page.get_by_role("button", name="Open incident").dblclick()
    expect(page).to_have_url(re.compile(r"/incidents/\d+/$"))
    # Incidents are flushed between these tests; the audit log is not (so its
    # events are counted for this incident only).
    (incident,) = Incident.objects.filter(title="Redis slow")
    assert incident.events.filter(verb="incident.opened").count() == 1

    first_key = page.locator("#note-request-key").get_attribute("value")
    page.fill("textarea[name=text]", "first observation")
    page.get_by_role("button", name="Add note").dblclick()
    expect(page.locator("#timeline-list li").first).to_contain_text("first observation")
    expect(page.locator("#note-request-key")).not_to_have_value(first_key)

    page.fill("textarea[name=text]", "second observation")
    page.get_by_role("button", name="Add note").click()
    expect(page.locator("#timeline-list li").first).to_contain_text(
        "second observation"
    )
    texts = list(
        incident.events.filter(verb="note.added").values_list("data__text", flat=True)
    )
    assert texts == ["first observation", "second observation"]
