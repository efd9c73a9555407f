"""Drills are marked DRILL everywhere and never reach a real channel: the flag is
fixed when the incident opens (by hand, or by a drill alert source through the
normal intake), shown on every page and export, and a drill's notifications go
to the drill sink while a real incident's arrive, on real local HTTP and SMTP
servers."""

from __future__ import annotations

import csv
import io
import json

import pytest
from celery import current_app
from django.test import Client

from alerts import intake, sources, triage
from alerts.models import AlertGroup
from incidents.actors import Actor
from incidents.models import AuditEvent, Incident, Playbook
from incidents.services import open_incident
from notify.models import Channel, Notification
from tests.alerts.conftest import Hook, fixture_body
from tests.notify.conftest import Mailbox, free_port

FIRING = "01_am_firing_single.json"  # HighErrorRate: §1 by its alert name
SLACK_PATH = "/services/T0DRILL/B0DRILL/drillCanary0123456789"
PD_PATH = "/v2/enqueue"


def open_(commander, *, drill: bool, number: int = 4, title: str = "Redis down"):
    return open_incident(
        playbook=Playbook.objects.current().get(number=number),
        title=title,
        actor=Actor.person(commander),
        drill=drill,
    )


def export(client: Client, incident: Incident, name: str) -> str:
    response = client.get(f"/incidents/{incident.pk}/{name}")
    assert response.status_code == 200, name
    return b"".join(response.streaming_content).decode()


@pytest.fixture
def drill_source(yomira, django_capture_on_commit_callbacks) -> Hook:
    source, token = sources.create(
        name="drill-am", kind="alertmanager", actor=Actor.system("test"), drill=True
    )
    return Hook(source, token, Client(), django_capture_on_commit_callbacks)


@pytest.fixture
def real_source(yomira, django_capture_on_commit_callbacks) -> Hook:
    source, token = sources.create(
        name="prod-am", kind="alertmanager", actor=Actor.system("test")
    )
    return Hook(source, token, Client(), django_capture_on_commit_callbacks)


@pytest.fixture(autouse=True)
def _sources_read_afresh():
    sources.forget_cached()
    yield
    sources.forget_cached()


# --- the flag: set once, when the incident opens ------------------------------------


def test_an_incident_is_real_unless_opened_as_a_drill(yomira, commander):
    real = open_(commander, drill=False)
    drill = open_(commander, drill=True)
    assert (real.drill, drill.drill) == (False, True)
    opened = dict(
        AuditEvent.objects.filter(verb="incident.opened").values_list(
            "incident_id", "data__drill"
        )
    )
    assert opened == {real.pk: False, drill.pk: True}
    assert Incident.objects.filter(drill=True).get() == drill


def test_the_flag_is_not_a_field_anyone_edits_after_opening():
    assert Incident._meta.get_field("drill").editable is False
    assert Incident._meta.get_field("drill").db_index is True


def test_a_drill_source_opens_a_drill_incident(drill_source, settings):
    settings.ALERT_ROUTING_PROBE = False
    applied = drill_source.deliver(fixture_body(FIRING))
    assert applied.opened is not None and applied.opened.drill is True
    assert applied.opened.playbook.number == 1  # routed as any alert would be


def test_a_real_source_never_opens_a_drill(real_source, settings):
    settings.ALERT_ROUTING_PROBE = False
    body = fixture_body(FIRING)
    # A label cannot make it a drill: the source decides, not the payload.
    body["alerts"][0]["labels"]["drill"] = "true"
    body["commonLabels"]["drill"] = "true"
    applied = real_source.deliver(body)
    assert applied.opened is not None and applied.opened.drill is False
    assert applied.opened.playbook.number == 1


def test_a_drill_sources_alert_picked_in_triage_is_a_drill(
    drill_source, real_source, commander, settings
):
    settings.ALERT_ROUTING_PROBE = False
    body = fixture_body(FIRING)
    body["alerts"][0]["labels"]["alertname"] = "NothingRoutesThis"
    body["commonLabels"]["alertname"] = "NothingRoutesThis"
    for hook in (drill_source, real_source):
        assert hook.deliver(body).opened is None  # waits in triage
    playbook = Playbook.objects.current().get(number=4)
    picked = {
        group.source.name: triage.pick(
            group=group, playbook=playbook, actor=Actor.person(commander)
        ).drill
        for group in AlertGroup.objects.select_related("source")
    }
    assert picked == {"drill-am": True, "prod-am": False}


def test_the_admin_lists_and_audits_a_sources_drill_flag(drill_source):
    from alerts.admin import AlertSourceAdmin

    assert "drill" in AlertSourceAdmin.list_display
    created = AuditEvent.objects.get(verb="alert_source.created", data__name="drill-am")
    assert created.data["drill"] is True


# --- the drill sink: real servers, nothing arrives ----------------------------------


@pytest.fixture
def smtp():
    mailbox = Mailbox()
    from aiosmtpd.controller import Controller

    mailbox.port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=mailbox.port)
    controller.start()
    yield mailbox
    controller.stop()


@pytest.fixture
def channels(db, yomira, settings, httpserver, smtp, monkeypatch):
    """Slack and PagerDuty on a local HTTP server, email on a local SMTP server,
    sending on, Celery eager: whatever is sent really arrives."""
    settings.NOTIFY_SEND = True
    settings.NOTIFY_PAGERDUTY_URL = httpserver.url_for(PD_PATH)
    settings.CONSOLE_BASE_URL = "https://console.yomira.test"
    settings.NOTIFY_DIAGNOSIS_WAIT_SECONDS = 0
    settings.NOTIFY_TIMEOUT = 5
    settings.NOTIFY_CONNECT_TIMEOUT = 1
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.DEFAULT_FROM_EMAIL = "console@yomira.test"
    monkeypatch.setenv("SLACK_WEBHOOK_URL", httpserver.url_for(SLACK_PATH))
    monkeypatch.setenv("PAGERDUTY_ROUTING_KEY", "R0UTINGKEYdrill0123456789abcdef")
    httpserver.expect_request(SLACK_PATH).respond_with_data("ok")
    httpserver.expect_request(PD_PATH).respond_with_json({"status": "success"})
    Channel.objects.create(name="Slack", kind="slack", secret_env="SLACK_WEBHOOK_URL")
    Channel.objects.create(
        name="PagerDuty", kind="pagerduty", secret_env="PAGERDUTY_ROUTING_KEY"
    )
    Channel.objects.create(name="Oncall mail", kind="email", recipients="oc@y.test")
    for playbook in Playbook.objects.current().filter(number__in=[1, 4]):
        playbook.escalation = ["Slack", "PagerDuty", "Oncall mail"]
        playbook.save(update_fields=["escalation"])
    conf = current_app.conf
    saved = conf.task_always_eager
    conf.task_always_eager = True
    yield smtp
    conf.task_always_eager = saved


def arrived(httpserver, smtp) -> list[str]:
    return [request.path for request, _ in httpserver.log] + [
        f"mail to {', '.join(m.rcpt_tos)}" for m in smtp.messages
    ]


def test_a_real_incidents_messages_arrive(
    channels, httpserver, commander, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        incident = open_(commander, drill=False)
    assert sorted(arrived(httpserver, channels)) == sorted(
        [SLACK_PATH, PD_PATH, "mail to oc@y.test"]
    )
    states = set(incident.notifications.values_list("state", flat=True))
    assert states == {Notification.State.SENT}
    mail = channels.messages[0].content.decode()
    assert "[DRILL]" not in mail


@pytest.mark.parametrize("send", [True, False])
def test_a_drills_messages_never_leave_the_console(
    channels, httpserver, commander, django_capture_on_commit_callbacks, settings, send
):
    settings.NOTIFY_SEND = send
    with django_capture_on_commit_callbacks(execute=True):
        incident = open_(commander, drill=True, title="Practice: Redis down")
    assert arrived(httpserver, channels) == []
    rows = list(incident.notifications.select_related("channel"))
    assert {row.channel.name for row in rows} == {"Slack", "PagerDuty", "Oncall mail"}
    for row in rows:
        assert row.state == Notification.State.DRILL
        assert row.get_state_display() == "Drill — not sent"
        assert row.answer.startswith("[DRILL] ")
        assert "Practice: Redis down" in row.answer
        assert row.sent_at is None and row.attempts == 0
    events = AuditEvent.objects.filter(incident=incident, verb="notification.drill")
    assert events.count() == 3
    assert all(e.data["text"].startswith("[DRILL]") for e in events)
    assert not AuditEvent.objects.filter(
        incident=incident, verb__in=["notification.sent", "notification.suppressed"]
    ).exists()


def test_a_drills_status_changes_and_escalation_stay_in_the_sink(
    channels, httpserver, commander, django_capture_on_commit_callbacks
):
    from incidents.services import change_status
    from notify import services

    with django_capture_on_commit_callbacks(execute=True):
        incident = open_(commander, drill=True)
    with django_capture_on_commit_callbacks(execute=True):
        change_status(
            incident=incident, to="acknowledged", actor=Actor.person(commander)
        )
    with django_capture_on_commit_callbacks(execute=True):
        services.queue(incident=incident, event="escalate", level=1)
    assert arrived(httpserver, channels) == []
    events = set(incident.notifications.values_list("event", "state"))
    assert ("acknowledge", "drill") in events and ("escalate", "drill") in events
    assert {state for _, state in events} == {"drill"}


def test_a_drill_sources_alert_reaches_no_channel_end_to_end(
    channels, httpserver, drill_source, settings, django_capture_on_commit_callbacks
):
    settings.ALERT_ROUTING_PROBE = False
    with django_capture_on_commit_callbacks(execute=False):
        response = drill_source.post(fixture_body(FIRING))
    assert response.status_code == 202
    with django_capture_on_commit_callbacks(execute=True):
        applied = intake.process(response.json()["receipt"])
    incident = applied.opened
    assert incident.drill and incident.playbook.number == 1
    assert arrived(httpserver, channels) == []
    assert set(incident.notifications.values_list("state", flat=True)) == {"drill"}


# --- DRILL shown ---------------------------------------------------------------------


@pytest.fixture
def both(yomira, commander) -> tuple[Incident, Incident]:
    return (
        open_(commander, drill=False, title="Real trouble"),
        open_(commander, drill=True, title="Practice trouble"),
    )


def test_the_header_and_every_timeline_entry_say_drill(both, viewer_client):
    real, drill = both
    page = viewer_client.get(drill.get_absolute_url()).content.decode()
    assert "incident-head status-bar-open is-drill" in page
    head = page.split('id="incident-head"', 1)[1].split("</header>", 1)[0]
    assert ">DRILL</span>" in head
    timeline = page.split('id="timeline-list"', 1)[1].split("</ol>", 1)[0]
    entries = timeline.count('<li class="event')
    assert entries >= 1 and timeline.count(">DRILL</span>") == entries
    plain = viewer_client.get(real.get_absolute_url()).content.decode()
    assert ">DRILL</span>" not in plain and "is-drill" not in plain


def test_the_list_marks_drills_and_filters_them(both, viewer_client):
    real, drill = both

    def rows(query: str) -> str:
        response = viewer_client.get("/incidents/" + query)
        assert response.status_code == 200
        return response.content.decode().split('id="results"', 1)[1]

    everything = rows("")
    assert "Real trouble" in everything and "Practice trouble" in everything
    assert everything.count(">DRILL</span>") == 1
    only = rows("?drill=yes")
    assert "Practice trouble" in only and "Real trouble" not in only
    none = rows("?drill=no")
    assert "Real trouble" in none and "Practice trouble" not in none
    assert 'name="drill"' in viewer_client.get("/incidents/").content.decode()


def test_a_bad_drill_filter_is_a_clear_400(both, viewer_client):
    response = viewer_client.get("/incidents/?drill=maybe")
    assert response.status_code == 400
    assert "drill" in response.content.decode()
    assert "Practice trouble" not in response.content.decode()


def test_the_alerts_page_marks_the_drill_incident_it_names(
    drill_source, real_source, commander_client, settings
):
    settings.ALERT_ROUTING_PROBE = False
    drill = drill_source.deliver(fixture_body(FIRING)).opened
    real = real_source.deliver(fixture_body(FIRING)).opened
    page = commander_client.get("/alerts/").content.decode()
    rows = {
        pk: page.split(f'href="/incidents/{pk}/"', 1)[1].split("</td>", 1)[0]
        for pk in (drill.pk, real.pk)
    }
    assert ">DRILL</span>" in rows[drill.pk]
    assert ">DRILL</span>" not in rows[real.pk]
    on_incident = commander_client.get(drill.get_absolute_url()).content.decode()
    alerts = on_incident.split('id="incident-alerts"', 1)[1].split("</div>", 1)[0]
    assert ">DRILL</span>" in alerts


# --- exports -------------------------------------------------------------------------


def test_timeline_json_says_drill_at_the_top_and_on_each_event(both, viewer_client):
    real, drill = both
    for incident, expected in ((real, False), (drill, True)):
        doc = json.loads(export(viewer_client, incident, "timeline.json"))
        assert doc["drill"] is expected
        assert list(doc)[:3] == ["drill", "incident", "events"]
        assert doc["events"] and {e["drill"] for e in doc["events"]} == {expected}


def test_timeline_csv_has_a_drill_column_at_the_end(both, viewer_client):
    real, drill = both
    for incident, expected in ((real, "false"), (drill, "true")):
        rows = list(
            csv.reader(io.StringIO(export(viewer_client, incident, "timeline.csv")))
        )
        assert rows[0][-1] == "drill" and rows[0][-2] == "actor_kind"
        assert len(rows) > 1 and {row[-1] for row in rows[1:]} == {expected}


def test_the_postmortem_title_and_summary_say_drill(both, viewer_client):
    real, drill = both
    text = export(viewer_client, drill, "postmortem.md")
    assert text.startswith("# [DRILL] Post-mortem: Practice trouble\n")
    assert "| Drill | **DRILL**: a practice incident" in text
    plain = export(viewer_client, real, "postmortem.md")
    assert plain.startswith("# Post-mortem: Real trouble\n")
    assert "DRILL" not in plain


def test_the_playbook_page_and_the_page_title_say_drill(both, viewer_client):
    real, drill = both
    page = viewer_client.get(real.playbook.get_absolute_url()).content.decode()
    already = page.split('class="already-open"', 1)[1].split("</p>", 1)[0]
    before_drill = already.split(f'href="/incidents/{drill.pk}/"', 1)[0]
    assert ">DRILL</span>" in before_drill.rsplit("</a>", 1)[-1]  # its own badge
    assert already.count(">DRILL</span>") == 1
    title = viewer_client.get(drill.get_absolute_url()).content.decode()
    assert f"<title>[DRILL] #{drill.pk} Practice trouble" in title
    plain = viewer_client.get(real.get_absolute_url()).content.decode()
    assert f"<title>#{real.pk} Real trouble" in plain


def test_other_apps_add_postmortem_sections_and_a_broken_one_is_named(
    both, viewer_client, monkeypatch
):
    from incidents import exports

    def scorecard(incident: Incident) -> str:
        return "## Scorecard\n\nAll green.\n" if incident.drill else ""

    def broken(incident: Incident) -> str:
        raise RuntimeError("boom")

    monkeypatch.setattr(exports, "POSTMORTEM_SECTIONS", [scorecard, broken])
    real, drill = both
    text = export(viewer_client, drill, "postmortem.md")
    assert "\n## Scorecard\n\nAll green.\n" in text
    assert text.index("## Scorecard") < text.index("## Follow-ups")
    assert "could not be written" in text and text.rstrip().endswith("UTC._")
    assert "## Scorecard" not in export(viewer_client, real, "postmortem.md")
