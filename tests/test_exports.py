"""Post-mortem Markdown, timeline JSON and CSV: contents, streaming, auditing."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.http import StreamingHttpResponse

from incidents.services import add_note, change_status, tick_step


@pytest.fixture
def worked(incident, responder, commander):
    steps = {s.number: s for s in incident.playbook.steps.all()}
    change_status(incident=incident, to="acknowledged", by=commander)
    tick_step(incident=incident, step=steps[1], state="done", expected=0, by=responder)
    add_note(
        incident=incident, text="PONG | but slow = 900ms", step=steps[1], by=responder
    )
    tick_step(
        incident=incident,
        step=steps[3],
        state="skipped",
        expected=0,
        by=commander,
        reason="managed Redis, no restart",
    )
    add_note(incident=incident, text='=HYPERLINK("http://evil")', by=responder)
    change_status(incident=incident, to="resolved", by=commander)
    incident.refresh_from_db()
    return incident


def body(response) -> str:  # noqa: ANN001
    assert isinstance(response, StreamingHttpResponse)
    return b"".join(response.streaming_content).decode()


def test_the_postmortem_holds_the_whole_story(viewer_client, worked):
    response = viewer_client.get(f"/incidents/{worked.pk}/postmortem.md")
    assert response["Content-Type"] == "text/markdown; charset=utf-8"
    assert (
        f'filename="incident-{worked.pk}-postmortem.md"'
        in response["Content-Disposition"]
    )
    text = body(response)
    assert text.startswith("# Post-mortem: Redis is refusing connections\n")
    assert "- **Severity:** critical" in text
    assert "from §4 Redis Down / Unreachable (runbook revision 1)" in text
    assert "- **Commander:** cole" in text
    assert "- **People involved:** cole, rita" in text
    assert "- **Resolved:** " in text and "- **Duration:** " in text
    assert "## Impact\n\nFrom the playbook" in text and "Rate limiting disabled" in text
    assert "| Time (UTC) | Who | What |" in text
    assert "| rita | marked step 1 done (Verify) |" in text
    assert "| cole | changed the status from acknowledged to resolved |" in text
    assert (
        "noted on step 1: PONG \\| but slow = 900ms |" in text
    )  # the pipe cannot end a cell
    assert "1. **Verify** — done by rita at " in text
    assert "3. **Restart Redis** — skipped by cole at " in text
    assert ": managed Redis, no restart" in text
    assert "2. **Check memory** — not done" in text
    assert "## Notes\n\n- " in text and "(step 1): PONG" in text
    assert "## Follow-ups\n\n- [ ] " in text
    assert "exported the" not in text  # exports are audited, not part of the story


def test_the_json_timeline_is_complete_and_parseable(viewer_client, worked):
    response = viewer_client.get(f"/incidents/{worked.pk}/timeline.json")
    doc = json.loads(body(response))
    assert doc["incident"]["status"] == "resolved"
    assert doc["incident"]["playbook"] == {
        "number": 4,
        "title": "Redis Down / Unreachable",
        "slug": "redis-down-unreachable",
        "runbook_revision": 1,
    }
    verbs = [e["verb"] for e in doc["events"]]
    assert verbs == [
        "incident.opened",
        "incident.status_changed",
        "step.done",
        "note.added",
        "step.skipped",
        "note.added",
        "incident.status_changed",
        "incident.exported",
    ]
    assert [e["seq"] for e in doc["events"]] == sorted(e["seq"] for e in doc["events"])
    step_done = doc["events"][2]
    assert (step_done["actor"], step_done["step"]) == ("rita", 1)
    assert step_done["time"].endswith("Z")


def test_the_csv_timeline_has_a_row_per_event_and_defuses_formulas(
    viewer_client, worked
):
    rows = list(
        csv.reader(
            io.StringIO(body(viewer_client.get(f"/incidents/{worked.pk}/timeline.csv")))
        )
    )
    assert rows[0] == [
        "seq",
        "time_utc",
        "actor",
        "verb",
        "step",
        "description",
        "data",
    ]
    assert len(rows) == 1 + worked.events.count()
    notes = [r for r in rows if r[3] == "note.added"]
    assert notes[0][5] == "noted on step 1: PONG | but slow = 900ms"
    assert notes[1][5].startswith("noted: =HYPERLINK")  # starts with "noted", not "="
    assert json.loads(notes[0][6]) == {"text": "PONG | but slow = 900ms", "step": 1}


def test_exports_are_audited(viewer_client, viewer, worked):
    for name in ("postmortem.md", "timeline.json", "timeline.csv"):
        body(viewer_client.get(f"/incidents/{worked.pk}/{name}"))
    exported = worked.events.filter(verb="incident.exported")
    assert [e.data["format"] for e in exported] == [
        "postmortem.md",
        "timeline.json",
        "timeline.csv",
    ]
    assert {e.actor_id for e in exported} == {viewer.pk}


def test_an_ongoing_incident_says_so(viewer_client, incident):
    text = body(viewer_client.get(f"/incidents/{incident.pk}/postmortem.md"))
    assert "so far (still open)" in text and "_No notes were taken._" in text


def test_the_postmortem_says_which_commands_ran_and_what_they_said(
    viewer_client, incident, commander
):
    from incidents.models import StepExecution

    ping = incident.playbook.commands.get(text__contains="ping")
    StepExecution.objects.create(
        incident=incident,
        step=ping.step,
        command=ping,
        state="succeeded",
        requested_by=commander,
        command_text=ping.text,
        summary="PING: PONG",
    )
    text = body(viewer_client.get(f"/incidents/{incident.pk}/postmortem.md"))
    assert '   - ran `redis-cli -u "${REDIS_URL}" ping` by cole at ' in text
    assert "→ succeeded: PING: PONG" in text
