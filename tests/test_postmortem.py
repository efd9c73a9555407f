"""The post-mortem a person can paste: the summary table, each run with what it
said, the timeline without repeated noise, system actors named as such; and the
timeline exports' fields, each one documented."""

from __future__ import annotations

import csv
import io
import json
import re
import tracemalloc
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.utils import timezone

from alerts import sources
from incidents import audit
from incidents.actors import Actor
from incidents.exports import EXCERPT_CHARS, EXCERPT_LINES, HELD_MAX
from incidents.models import AuditEvent, Incident, StepExecution
from incidents.services import add_note, change_status, tick_step
from tests.alerts.conftest import Hook
from tests.alerts.test_routing import am_alert, am_body, resolved

ROOT = Path(__file__).resolve().parent.parent
BASE = "https://console.yomira.test"
INTAKE = Actor.system("alert-intake")
NOTIFIER = Actor.system("notifier")
WORKER = Actor.system("worker")


@pytest.fixture(autouse=True)
def _console_address(settings):
    settings.CONSOLE_BASE_URL = BASE + "/"  # a trailing slash is not doubled
    settings.ALERT_ROUTING_PROBE = False


def export(client: Client, incident: Incident, name: str) -> str:
    response = client.get(f"/incidents/{incident.pk}/{name}")
    assert response.status_code == 200, name
    return b"".join(response.streaming_content).decode()


def cell(markdown: str, label: str) -> str:
    """The summary table's value for a label."""
    (row,) = [r for r in markdown.splitlines() if r.startswith(f"| {label} | ")]
    return row[len(f"| {label} | ") : -len(" |")]


def rows_of(markdown: str) -> list[str]:
    """The timeline table's rows."""
    table = markdown.split("## Timeline (UTC)", 1)[1].split("\n## ", 1)[0]
    return [r for r in table.splitlines() if r.startswith("| 20")]


@pytest.fixture
def alerted(yomira, django_capture_on_commit_callbacks) -> tuple[Incident, Hook]:
    """An incident that Alertmanager opened (the real intake, as the worker applies
    it), and the hook to send more."""
    source, token = sources.create(name="prod-am", kind="alertmanager", actor=INTAKE)
    hook = Hook(source, token, Client(), django_capture_on_commit_callbacks)
    applied = hook.deliver(
        am_body(am_alert("HighErrorRate", labels={"instance": "web-1"}))
    )
    assert applied.opened is not None
    return applied.opened, hook


def later(incident: Incident, minutes: float) -> None:
    """Move the incident's opening back, as if this happened `minutes` after it."""
    Incident.objects.filter(pk=incident.pk).update(
        opened_at=timezone.now() - timedelta(minutes=minutes)
    )


# --- the summary table --------------------------------------------------------------


def test_the_summary_names_the_alert_the_times_and_people_by_role(
    alerted, viewer_client, commander, responder, make_user
):
    incident, _ = alerted
    approver = make_user("abe", "Commander")
    later(incident, 10)
    change_status(incident=incident, to="acknowledged", actor=Actor.person(commander))
    step = incident.playbook.steps.get(number=1)
    tick_step(
        incident=incident,
        step=step,
        state="done",
        expected=0,
        actor=Actor.person(responder),
    )
    audit.append(
        "execution.approved",
        actor=Actor.person(approver),
        incident=incident,
        data={"step": 1, "command": "x", "reason": "", "requested_by": "rita"},
    )
    change_status(incident=incident, to="mitigated", actor=Actor.person(commander))

    text = export(viewer_client, incident, "postmortem.md")

    assert text.startswith("# Post-mortem: HighErrorRate")
    assert cell(text, "Alert").startswith(
        "HighErrorRate from prod-am, firing since 2026-11-29 06:47:57 UTC ("
    )
    assert cell(text, "Opened").endswith(" by alert-intake (system)")
    assert re.fullmatch(
        r"(9m 5\ds|10m \ds) \(at 20\d\d-.* UTC\)", cell(text, "Time to acknowledge")
    )
    assert cell(text, "Time to mitigate").startswith(("9m ", "10m "))
    assert cell(text, "Resolved") == "not yet"
    assert cell(text, "Commander") == "nobody"  # alert-opened: nobody took command
    assert cell(text, "Approvers") == "abe"
    # vera only exported: reading is not taking part.
    assert cell(text, "Responders") == "cole, rita"
    assert cell(text, "Systems") == "alert-intake (system), diagnosis (system)"

    doc = json.loads(export(viewer_client, incident, "timeline.json"))["incident"]
    assert doc["alert"]["name"] == "HighErrorRate"
    assert doc["alert"]["source"] == "prod-am"
    assert doc["alert"]["starts_at"].startswith("2026-11-29T06:47:57")
    assert 590 <= doc["time_to_acknowledge_seconds"] <= 600
    assert doc["time_to_mitigate_seconds"] >= doc["time_to_acknowledge_seconds"]


def test_an_incident_opened_by_hand_says_so(viewer_client, incident):
    text = export(viewer_client, incident, "postmortem.md")
    assert cell(text, "Alert") == "none (opened by hand)"
    assert cell(text, "Opened").endswith(" by cole")
    assert cell(text, "Time to acknowledge") == "not acknowledged"
    assert cell(text, "Time to mitigate") == "not mitigated"
    assert cell(text, "Commander") == "cole"
    assert cell(text, "Systems") == "none"
    doc = json.loads(export(viewer_client, incident, "timeline.json"))["incident"]
    assert doc["alert"] is None and doc["time_to_acknowledge_seconds"] is None


def test_a_handover_names_every_commander_in_order(
    viewer_client, incident, commander, make_user
):
    from incidents.services import change_commander

    successor = make_user("sam", "Commander")
    change_commander(
        incident=incident, commander=successor, actor=Actor.person(commander)
    )
    text = export(viewer_client, incident, "postmortem.md")
    assert cell(text, "Commander") == "cole, then sam (now)"


# --- runs ---------------------------------------------------------------------------


def ping_run(incident: Incident, who, **fields) -> StepExecution:  # noqa: ANN001
    """A finished run of the runbook's `redis-cli ... ping` probe."""
    ping = incident.playbook.commands.get(text__contains="ping")
    values = {
        "incident": incident,
        "step": ping.step,
        "command": ping,
        "state": "succeeded",
        "requested_by": who,
        "command_text": ping.text,
        "started_at": timezone.now(),
        **fields,
    }
    return StepExecution.objects.create(**values)


def action_run(incident: Incident, who, approver, **fields) -> StepExecution:  # noqa: ANN001
    command = incident.playbook.commands.get(text__contains="maxmemory-policy")
    values = {
        "incident": incident,
        "step": command.step,
        "command": command,
        "state": "succeeded",
        "requested_by": who,
        "approved_by": approver,
        "approved_at": timezone.now(),
        "parameters": {"pid": "4242"},
        "command_text": command.text,
        "started_at": timezone.now(),
        "summary": "OK",
        **fields,
    }
    return StepExecution.objects.create(**values)


def test_an_action_shows_its_parameters_preview_approver_outcome_and_output(
    viewer_client, incident, responder, commander
):
    command = incident.playbook.commands.get(text__contains="maxmemory-policy")
    for headline in ("Changes 1 setting", "Sets maxmemory-policy to allkeys-lru"):
        audit.append(
            "execution.previewed",
            actor=Actor.person(responder),
            incident=incident,
            obj=command,
            data={"step": 4, "command": command.text, "headline": headline},
        )
    output = "\n".join(f"line {n}: evicted keys" for n in range(1, 21))
    run = action_run(incident, responder, commander, output=output)

    text = export(viewer_client, incident, "postmortem.md")

    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("   - ran "))
    head = lines[at]
    assert head.startswith('   - ran `redis-cli -u "${REDIS_URL}" config set')
    assert "with `pid=4242` by rita (approved by cole at " in head
    assert head.endswith("→ succeeded: OK")
    # The latest preview by the one who asked, before they asked.
    assert lines[at + 1] == "     - Preview: Sets maxmemory-policy to allkeys-lru"
    link = f"{BASE}/incidents/{incident.pk}/executions/{run.pk}"
    assert lines[at + 2] == f"     - Output, first lines (full output: <{link}>):"
    block = lines[at + 3 : at + 3 + EXCERPT_LINES + 2]
    assert block[0] == "       ```" and block[-1] == "       ```"
    assert block[1:-1] == [f"       line {n}: evicted keys" for n in range(1, 9)]
    assert "line 9:" not in text


def test_the_preview_shown_is_the_one_the_requester_confirmed(
    viewer_client, incident, responder, commander
):
    """The run's event names its preview's nonce: that preview's headline is
    shown, not a later preview of the same command by the same person."""
    command = incident.playbook.commands.get(text__contains="maxmemory-policy")
    for headline, nonce in (("Confirmed blast radius", "n-1"), ("A later look", "n-2")):
        audit.append(
            "execution.previewed",
            actor=Actor.person(responder),
            incident=incident,
            obj=command,
            data={
                "headline": headline,
                "facts": [f"backend 4242: seen by {nonce}"],
                audit.PREVIEW_NONCE_KEY: nonce,
            },
        )
    run = action_run(incident, responder, commander)
    audit.append(
        "execution.requested",
        actor=Actor.person(responder),
        incident=incident,
        obj=run,
        data={"command": command.text, audit.PREVIEW_NONCE_KEY: "n-1"},
    )

    text = export(viewer_client, incident, "postmortem.md")

    lines = text.splitlines()
    at = lines.index("     - Preview: Confirmed blast radius")
    assert lines[at + 1] == "       - backend 4242: seen by n-1"  # what it would kill
    assert "     - Preview: A later look" not in lines


def test_an_action_nobody_previewed_says_so_and_a_rejection_is_not_an_approval(
    viewer_client, incident, responder, commander
):
    action_run(
        incident,
        responder,
        commander,
        state="rejected",
        summary="Rejected by cole: not during peak",
        output="",
    )
    text = export(viewer_client, incident, "postmortem.md")
    assert not any(r.startswith("   - ran ") for r in text.splitlines())
    head = next(r for r in text.splitlines() if r.startswith("   - asked to run "))
    assert "(rejected by cole at " in head and "approved by" not in text
    assert "→ rejected: Rejected by cole: not during peak" in head
    assert "     - Preview: none recorded" in text
    assert "full output" not in text  # nothing printed, nothing to link


def test_a_probe_result_is_a_short_excerpt_and_a_link(
    viewer_client, incident, commander
):
    run = ping_run(incident, commander, summary="PONG", output="PONG " * 400)
    text = export(viewer_client, incident, "postmortem.md")
    lines = text.splitlines()
    at = next(i for i, r in enumerate(lines) if r.startswith("   - ran `redis-cli"))
    assert "Preview" not in lines[at + 1]  # probes change nothing: no preview
    assert lines[at + 1].endswith(f"/executions/{run.pk}>):")
    shown = lines[at + 3]
    assert shown.startswith("       PONG") and len(shown) == 7 + EXCERPT_CHARS


def test_the_output_link_opens_the_run_for_those_who_may_see_it(
    viewer_client, nobody_client, incident, commander
):
    ping_run(incident, commander, output="\n".join(f"row {n}" for n in range(1, 31)))
    text = export(viewer_client, incident, "postmortem.md")
    (link,) = re.findall(r"full output: <([^>]+)>", text)
    assert link.startswith(BASE + "/incidents/")
    path = urlsplit(link).path

    page = viewer_client.get(path)
    assert page.status_code == 200 and "<!doctype html>" in page.content.decode()
    assert "row 30" in page.content.decode()  # the whole output, not the excerpt
    assert nobody_client.get(path).status_code == 403
    anonymous = Client().get(path)
    assert anonymous.status_code == 302 and "/login" in anonymous["Location"]


def test_runs_name_the_runbook_text_not_the_rewritten_host(
    viewer_client, incident, commander
):
    sent = "redis-cli -u redis://10.0.0.5:6379 ping"  # as an older console stored it
    run = ping_run(incident, commander, command_text=sent, summary="PONG")
    for verb, actor in (
        ("execution.requested", Actor.person(commander)),
        ("execution.succeeded", WORKER),
    ):
        audit.append(
            verb,
            actor=actor,
            incident=incident,
            obj=run,
            data={"step": 1, "kind": "probe", "command": sent, "summary": "PONG"},
        )
    text = export(viewer_client, incident, "postmortem.md")
    assert "10.0.0.5" not in text
    asked = next(r for r in rows_of(text) if "asked to run" in r)
    assert '`redis-cli -u "${REDIS_URL}" ping`' in asked
    done = next(r for r in rows_of(text) if "succeeded" in r)
    assert done.split(" | ")[1] == "worker (system)"


def test_a_diagnosis_run_was_asked_by_the_system(yomira, viewer_client):
    from incidents.models import Command
    from incidents.services import open_incident

    probe = Command.objects.filter(
        playbook__runbook=yomira, step__isnull=True, kind=Command.Kind.PROBE
    ).first()
    assert probe is not None, "the bundled runbook has Diagnosis probes"
    incident = open_incident(playbook=probe.playbook, title="t", actor=INTAKE)
    StepExecution.objects.create(
        incident=incident,
        command=probe,
        state="succeeded",
        requested_as="diagnosis",
        command_text=probe.text,
        summary="3 rows",
    )
    text = export(viewer_client, incident, "postmortem.md")
    diagnosis = text.split("Diagnosis commands run:", 1)[1]
    assert " by diagnosis (system) at " in diagnosis


# --- the timeline without the noise -------------------------------------------------


def notified(incident: Incident, status: int = 200) -> None:
    audit.append(
        "notification.sent",
        actor=NOTIFIER,
        incident=incident,
        data={"channel": "slack-ops", "event": "opened", "status_code": status},
    )


def test_repeated_notifications_are_one_row_with_a_count(
    viewer_client, incident, commander
):
    notified(incident)
    audit.append(
        "permission.denied",
        actor=Actor.person(commander),
        incident=incident,
        data={"permission": "x", "method": "GET", "path": "/p"},
    )
    notified(incident)
    notified(incident)
    notified(incident, status=500)  # a different answer is news
    change_status(incident=incident, to="acknowledged", actor=Actor.person(commander))
    notified(incident)  # after the story moved on: a row of its own

    rows = rows_of(export(viewer_client, incident, "postmortem.md"))
    sent = [r for r in rows if "notified slack-ops" in r]
    assert len(sent) == 3
    assert "answered 200 (3 times, the last at 20" in sent[0]
    assert "answered 500 |" in sent[1] and "times" not in sent[2]
    assert sent[0].split(" | ")[1] == "notifier (system)"
    times = [r.split(" | ")[0] for r in rows]
    assert times == sorted(times)  # still in order
    ack = next(i for i, r in enumerate(rows) if "to acknowledged" in r)
    assert rows.index(sent[1]) < ack < rows.index(sent[2])


def test_a_flapping_alert_is_one_row_per_alert(alerted, viewer_client):
    incident, hook = alerted
    group = incident.alert_groups.get()
    web1 = am_alert("HighErrorRate", labels={"instance": "web-1"})
    for n in range(3):
        hook.deliver(am_body(resolved(web1), group_key=group.group_key))
        again = {**web1, "startsAt": f"2026-11-29T07:1{n + 1}:00Z"}
        hook.deliver(am_body(again, group_key=group.group_key))
        web1 = again
    rows = rows_of(export(viewer_client, incident, "postmortem.md"))
    firing = [r for r in rows if "alert HighErrorRate firing" in r]
    assert len(firing) == 1 and "(4 times, the last at " in firing[0]
    assert firing[0].split(" | ")[1] == "alert-intake (system)"
    assert len([r for r in rows if "resolved at" in r]) == 1
    (flapped,) = [r for r in rows if "fired again" in r]
    assert "(flap 3) (3 times, the last at " in flapped  # the latest count
    doc = json.loads(export(viewer_client, incident, "timeline.json"))
    assert [e["verb"] for e in doc["events"]].count("alert.firing") == 4  # all kept


def test_many_kinds_of_noise_stay_in_order_and_all_appear(
    viewer_client, incident, commander
):
    for n in range(HELD_MAX + 5):
        audit.append(
            "notification.failed",
            actor=NOTIFIER,
            incident=incident,
            data={"channel": f"hook-{n}", "event": "opened", "error": "refused"},
        )
    rows = rows_of(export(viewer_client, incident, "postmortem.md"))
    failed = [r for r in rows if "could not notify" in r]
    assert [r.split("could not notify ")[1].split(" ")[0] for r in failed] == [
        f"hook-{n}" for n in range(HELD_MAX + 5)
    ]


# --- system actors in the timeline exports ------------------------------------------


def test_the_timeline_exports_say_what_kind_of_actor_acted(
    alerted, viewer_client, responder
):
    incident, _ = alerted
    add_note(incident=incident, text="looking", actor=Actor.person(responder))
    doc = json.loads(export(viewer_client, incident, "timeline.json"))
    kinds = {(e["actor"], e["actor_kind"]) for e in doc["events"]}
    assert ("alert-intake", "system") in kinds and ("rita", "person") in kinds
    table = export(viewer_client, incident, "timeline.csv")
    rows = list(csv.DictReader(io.StringIO(table)))
    assert {(r["actor"], r["actor_kind"]) for r in rows} >= {
        ("alert-intake", "system"),
        ("rita", "person"),
    }


# --- streamed: memory flat ----------------------------------------------------------


def add_events(incident: Incident, count: int) -> None:
    """Append `count` chained events quickly (bulk, the MACs audit.append would
    write): alert updates, notifications and notes, as a long incident has."""
    last = AuditEvent.objects.order_by("-seq").values_list("seq", "mac").first()
    seq, prev = last
    batch = []
    for n in range(count):
        seq += 1
        verb, actor, data = [
            ("notification.sent", "notifier", {"channel": "ops", "status_code": 200}),
            ("note.added", "", {"text": f"observation {n}: queue depth 1234"}),
            ("alert.firing", "alert-intake", {"alert": f"A{n}", "fingerprint": n}),
        ][n % 3]
        fields = {
            "seq": seq,
            "created_at": timezone.now(),
            "actor_id": None,
            "actor_name": actor,
            "verb": verb,
            "incident_id": incident.pk,
            "object_type": "",
            "object_id": "",
            "data": data,
            "ip": None,
            "prev_mac": prev,
        }
        prev = audit.compute_mac(**fields)
        batch.append(AuditEvent(mac=prev, **fields))
        if len(batch) == 2000:
            AuditEvent.objects.bulk_create(batch)
            batch = []
    AuditEvent.objects.bulk_create(batch)
    audit.anchor(seq, prev)


def peak_memory(client: Client, incident: Incident, name: str) -> int:
    tracemalloc.start()
    try:
        response = client.get(f"/incidents/{incident.pk}/{name}")
        for _ in response.streaming_content:
            pass
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_exports_are_streamed_in_flat_memory(
    viewer_client, yomira, commander, monkeypatch
):
    from incidents import exports
    from incidents.services import open_incident

    # Events are fetched this many at a time: both incidents hold many times more
    # (the real chunk, 2,000, would need far bigger incidents and minutes).
    monkeypatch.setattr(exports, "CHUNK", 50)
    playbook = yomira.playbooks.get(number=4)
    small, big = (
        open_incident(playbook=playbook, title=title, actor=Actor.person(commander))
        for title in ("small", "big")
    )
    add_events(small, 500)
    add_events(big, 2_000)
    for name in ("postmortem.md", "timeline.json", "timeline.csv"):
        export(viewer_client, small, name)  # first use: imports, caches
        ratio = peak_memory(viewer_client, big, name) / peak_memory(
            viewer_client, small, name
        )
        # Four times the events, not four times the memory (a list would be).
        assert ratio < 1.5, f"{name}: {ratio:.1f}x the memory for 4x the events"


# --- the README documents every exported field --------------------------------------


def exported_fields(client: Client, incident: Incident) -> set[str]:
    """Every field name timeline.json and timeline.csv write: JSON as dotted paths
    (`incident.playbook.slug`, `events[].actor_kind`; an event's `data` is its own
    record, documented by verb), CSV columns by name."""
    doc = json.loads(export(client, incident, "timeline.json"))

    def paths(value: dict, prefix: str) -> set[str]:
        found = set()
        for key, inner in value.items():
            found.add(prefix + key)
            if isinstance(inner, dict) and key != "data":
                found |= paths(inner, f"{prefix}{key}.")
        return found

    # The top-level keys too (`drill`), then what is inside incident and events.
    names = set(doc) | paths(doc["incident"], "incident.")
    for event in doc["events"]:
        names |= paths(event, "events[].")
    header = next(csv.reader(io.StringIO(export(client, incident, "timeline.csv"))))
    return names | set(header)


def readme_export_fields() -> set[str]:
    """The names in the first column of the tables under the README's Exports
    heading (as `code`)."""
    readme = (ROOT / "README.md").read_text()
    match = re.search(
        r"^(#+) [^\n]*Exports[^\n]*\n(.*?)(?=^\1 |\Z)", readme, re.M | re.S
    )
    assert match, "README.md has no Exports section"
    return {
        name
        for row in match.group(2).splitlines()
        if row.startswith("| `")
        for name in re.findall(r"`([^`]+)`", row.split("|")[1])
    }


def test_the_readme_documents_every_exported_field(alerted, viewer_client):
    incident, _ = alerted
    missing = exported_fields(viewer_client, incident) - readme_export_fields()
    assert not missing, f"README's Exports section does not name: {sorted(missing)}"


def test_the_field_list_the_readme_check_reads_is_complete(alerted, viewer_client):
    """The README check above compares against what the exports really write."""
    incident, _ = alerted
    fields = exported_fields(viewer_client, incident)
    assert {
        "incident.alert.fingerprint",
        "incident.playbook.runbook_revision",
        "incident.time_to_mitigate_seconds",
        "events[].actor_kind",
        "events[].data",
        "actor_kind",
        "time_utc",
    } <= fields
    assert "events[].data.origin" not in fields


# --- what a target or a sender wrote stays text -------------------------------------


def test_alerts_previews_and_output_cannot_carry_html_or_script_links(
    yomira, viewer_client, responder, commander
):
    from incidents.services import open_incident
    from tests.test_exports import rendered

    hostile = "<img src=x onerror=alert(1)> [x](javascript:alert(2))"
    playbook = yomira.playbooks.get(number=4)
    incident = open_incident(
        playbook=playbook,
        title="t",
        actor=INTAKE,
        origin={"source": hostile, "alert": hostile, "fingerprint": "f"},
    )
    command = playbook.commands.get(text__contains="maxmemory-policy")
    audit.append(
        "execution.previewed",
        actor=Actor.person(responder),
        incident=incident,
        obj=command,
        data={"step": 4, "command": command.text, "headline": hostile},
    )
    action_run(
        incident,
        responder,
        commander,
        output="```\n</pre><script>alert(3)</script>\n````\n" + hostile,
    )
    text = export(viewer_client, incident, "postmortem.md")
    html = rendered(text).lower()
    assert "<script" not in html and "<img" not in html
    assert 'href="javascript:' not in html
    assert "&lt;script&gt;alert(3)&lt;/script&gt;" in html  # shown, as code
    assert "onerror=alert(1)" in html  # the words are there, as text
