"""Post-mortem Markdown, timeline JSON and CSV: contents, streaming, auditing."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.http import StreamingHttpResponse

from incidents.actors import Actor
from incidents.services import add_note, change_status, tick_step


@pytest.fixture
def worked(incident, responder, commander):
    steps = {s.number: s for s in incident.playbook.steps.all()}
    change_status(incident=incident, to="acknowledged", actor=Actor.person(commander))
    tick_step(
        incident=incident,
        step=steps[1],
        state="done",
        expected=0,
        actor=Actor.person(responder),
    )
    add_note(
        incident=incident,
        text="PONG | but slow = 900ms",
        step=steps[1],
        actor=Actor.person(responder),
    )
    tick_step(
        incident=incident,
        step=steps[3],
        state="skipped",
        expected=0,
        actor=Actor.person(commander),
        reason="managed Redis, no restart",
    )
    add_note(
        incident=incident,
        text='=HYPERLINK("http://evil")',
        actor=Actor.person(responder),
    )
    change_status(incident=incident, to="resolved", actor=Actor.person(commander))
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
    assert "| Severity | critical |" in text
    assert "opened from §4 Redis Down / Unreachable (runbook revision 1) |" in text
    assert "| Commander | cole |" in text and "| Responders | rita |" in text
    assert "| Resolved | 20" in text and "| Duration | " in text
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
        "actor_kind",
        "drill",
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


HOSTILE_TEXTS = [
    "<script>alert('note')</script>",
    '<img src=x onerror="alert(1)">',
    "[click me](javascript:alert(document.cookie))",
    "[sneaky](JaVaScRiPt:alert(1)) and ![img](data:text/html;base64,PHNjcmlwdD4=)",
    "<javascript:alert(2)> and <a href='javascript:alert(3)'>a</a>",
    "`code` then </code><script>alert(4)</script>",
    "[ok](https://status.example.com/a_b) fine",
]


def rendered(markdown: str) -> str:
    """The post-mortem as a Markdown viewer shows it (raw HTML allowed, as in many)."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").enable("table").render(markdown)


def test_user_text_in_the_postmortem_cannot_carry_html_or_script_links(
    viewer_client, incident, responder, commander
):
    from incidents.models import Incident

    Incident.objects.filter(pk=incident.pk).update(title="<script>t()</script>")
    step = incident.playbook.steps.get(number=3)
    for text in HOSTILE_TEXTS:
        add_note(incident=incident, text=text, step=step, actor=Actor.person(responder))
    tick_step(
        incident=incident,
        step=step,
        state="skipped",
        expected=0,
        actor=Actor.person(commander),
        reason="<img src=y onerror=alert(5)> [r](javascript:alert(6))",
    )
    text = body(viewer_client.get(f"/incidents/{incident.pk}/postmortem.md"))
    html = rendered(text).lower()
    assert "<script" not in html and "<img" not in html and "<a href='java" not in html
    assert 'href="javascript:' not in html and 'src="data:' not in html
    assert 'href="data:' not in html
    # Still readable: the words are there, shown as text...
    assert "&lt;script&gt;alert('note')&lt;/script&gt;" in html.replace("&#x27;", "'")
    assert "click me" in html and "onerror" in html
    # ...and a plain https link stays a link.
    assert 'href="https://status.example.com/a_b"' in html


def test_an_approved_run_is_stamped_when_it_ran_with_the_values_it_used(
    viewer_client, incident, responder, commander
):
    from datetime import timedelta

    from django.utils import timezone

    from incidents.models import StepExecution

    command = incident.playbook.commands.get(text__contains="ping")
    early = timezone.now() - timedelta(hours=1)
    approved = StepExecution.objects.create(
        incident=incident,
        step=command.step,
        command=command,
        state="succeeded",
        requested_by=responder,
        approved_by=commander,
        approved_at=early + timedelta(minutes=20),
        parameters={"pid": "4242"},
        # Stored by an older console: the host as rewritten, not the runbook's.
        command_text="redis-cli -u redis://10.0.0.5:6379 ping",
        created_at=early,
        started_at=early + timedelta(minutes=21),
        finished_at=early + timedelta(minutes=22),
        summary="PONG",
    )
    quick = StepExecution.objects.create(
        incident=incident,
        step=command.step,
        command=command,
        state="succeeded",
        requested_by=commander,
        command_text=command.text,
        created_at=early + timedelta(minutes=10),
        started_at=early + timedelta(minutes=10),
        summary="PONG",
    )
    text = body(viewer_client.get(f"/incidents/{incident.pk}/postmortem.md"))
    from incidents.exports import utc

    ran = utc(approved.started_at)
    line = next(row for row in text.splitlines() if "approved by cole" in row)
    assert f"at {ran}" in line and utc(approved.created_at) not in line
    assert "pid=4242" in line or "pid = 4242" in line
    assert "10.0.0.5" not in text and "${REDIS_URL}" in line
    runs = [row for row in text.splitlines() if row.startswith("   - ran")]
    assert (
        runs.index(line)
        > [i for i, r in enumerate(runs) if utc(quick.started_at) in r][0]
    )


def test_a_multiline_command_is_shown_whole(viewer_client, incident, commander):
    from incidents.models import Command, StepExecution

    command = Command.objects.filter(playbook=incident.playbook).first()
    Command.objects.filter(pk=command.pk).update(
        text="redis-cli CONFIG SET maxmemory-policy allkeys-lru \\\n  && echo `done`"
    )
    command.refresh_from_db()
    StepExecution.objects.create(
        incident=incident,
        step=command.step,
        command=command,
        state="succeeded",
        requested_by=commander,
        command_text=command.text,
    )
    text = body(viewer_client.get(f"/incidents/{incident.pk}/postmortem.md"))
    assert "redis-cli CONFIG SET maxmemory-policy allkeys-lru \\" in text
    assert "  && echo `done`" in text
    html = rendered(text)
    assert "&amp;&amp; echo `done`" in html  # inside the code block, as written


def test_repeated_previews_are_one_line_and_the_worker_is_not_a_person(
    viewer_client, incident, responder
):
    from incidents import audit

    for _ in range(3):
        audit.append(
            "execution.previewed",
            actor=Actor.person(responder),
            incident=incident,
            data={
                "step": 3,
                "command": "redis-cli FLUSHALL",
                "headline": "Deletes all",
            },
        )
    audit.append(
        "execution.succeeded",
        actor=Actor.system("worker"),
        incident=incident,
        data={"step": 3, "command": "redis-cli ping", "summary": "PONG"},
    )
    text = body(viewer_client.get(f"/incidents/{incident.pk}/postmortem.md"))
    previews = [row for row in text.splitlines() if "previewed" in row]
    assert len(previews) == 1 and "(3 times" in previews[0]
    assert "| Commander | cole |" in text and "| Responders | rita |" in text
    assert "| Systems | worker (system) |" in text


@pytest.mark.parametrize("name", ["=HYPERLINK(1)", "+cmd", "-2+3", "@SUM(1)"])
def test_every_csv_cell_a_spreadsheet_would_run_is_defused(
    viewer_client, incident, make_user, name
):
    from incidents import audit

    who = make_user(name, "Responder")
    audit.append(
        "note.added", actor=Actor.person(who), incident=incident, data={"text": name}
    )
    rows = list(
        csv.reader(
            io.StringIO(
                body(viewer_client.get(f"/incidents/{incident.pk}/timeline.csv"))
            )
        )
    )
    mine = next(r for r in rows if r[3] == "note.added")
    assert mine[2] == "'" + name  # the actor cell starts with a quote, not a formula
    assert not any(cell[:1] in "=+-@\t\r" for row in rows for cell in row if cell)


def test_the_postmortem_timeline_keeps_a_multiline_command_whole(
    viewer_client, incident, responder
):
    from incidents import audit

    audit.append(
        "execution.requested",
        actor=Actor.person(responder),
        incident=incident,
        data={"step": 2, "kind": "action", "command": "first line \\\n  second line"},
    )
    text = body(viewer_client.get(f"/incidents/{incident.pk}/postmortem.md"))
    row = next(r for r in text.splitlines() if "asked to run action" in r)
    assert "`first line \\ second line`" in row
