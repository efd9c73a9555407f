"""Issue 12's safety gates, pinned line by line (docs/mutation/issue12.md): no
drill without SANDBOX, who may start a drill or simulate a step, a drill
incident's notifications kept in the drill sink whatever NOTIFY_SEND or the
channel says, and the intake opening a drill incident only for a drill source."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.test import Client

from alerts import intake, sources, triage
from alerts.models import AlertGroup
from drills import services as drills
from incidents.actors import Actor
from incidents.models import AuditEvent, Incident, Playbook
from incidents.services import open_incident
from notify import content
from notify import services as notify
from notify.models import Channel, Notification
from tests.alerts.conftest import Hook, fixture_body
from tests.conftest import grant

SANDBOX_OFF = (
    "Drills run only against the simulated Yomira stack, and it is off here "
    "(SANDBOX is not set; it never is in production)."
)
FIRING = "01_am_firing_single.json"  # HighErrorRate, fingerprint b1c11497b32ce15e


def denials() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(verb="permission.denied").order_by("seq"))


# --- SANDBOX ------------------------------------------------------------------------


def test_no_sandbox_is_refused_in_words_and_sandbox_is_not(settings):
    settings.SANDBOX = False
    assert drills.sandbox_refusal() == SANDBOX_OFF
    settings.SANDBOX = True
    assert drills.sandbox_refusal() == ""


def test_a_settings_module_without_sandbox_refuses_drills(settings):
    # An older deployment's settings, written before SANDBOX existed: off.
    del settings.SANDBOX
    assert drills.sandbox_refusal() == SANDBOX_OFF


def test_refusing_without_sandbox_is_a_403_audited_on_the_incident(
    settings, commander, incident
):
    settings.SANDBOX = False
    with pytest.raises(drills.DrillRefused) as refused:
        drills.refuse_without_sandbox(
            Actor.person(commander), "simulate a step", incident
        )
    assert str(refused.value) == SANDBOX_OFF
    assert refused.value.status == 403
    denied = denials()[-1]
    assert denied.incident_id == incident.pk
    assert denied.actor_name == "cole"
    assert denied.data == {
        "permission": "drills",
        "asked": "simulate a step",
        "why": SANDBOX_OFF,
    }


def test_with_sandbox_on_nothing_is_refused_or_recorded(settings, commander):
    settings.SANDBOX = True
    before = AuditEvent.objects.count()
    assert drills.refuse_without_sandbox(Actor.person(commander), "start") is None
    assert AuditEvent.objects.count() == before


# --- who may start one -----------------------------------------------------------------


def test_who_may_start_a_drill_in_words(yomira, make_user, responder, commander):
    assert drills.start_refusal(None) == "Sign in first."
    assert drills.start_refusal(AnonymousUser()) == "Sign in first."
    assert drills.start_refusal(make_user("nora")) == (
        "Starting a drill opens an incident and commands it: it needs the "
        "add_incident and command_incident permission (the Commander role has both)."
    )
    assert drills.start_refusal(responder) == (
        "Starting a drill opens an incident and commands it: it needs the "
        "command_incident permission (the Commander role has both)."
    )
    assert drills.start_refusal(commander) == ""


@pytest.fixture
def sandbox(settings, tmp_path):  # noqa: ANN001, ANN201
    settings.SANDBOX = True
    settings.SANDBOX_DIR = tmp_path


def test_a_commander_passes_the_starters_check(yomira, sandbox, commander):
    # Past the check, the scenario is looked up: an unknown one is the refusal.
    with pytest.raises(drills.DrillRefused, match="nope.toml: no such scenario"):
        drills.start_drill(scenario="nope", actor=Actor.person(commander))
    assert denials() == []


def test_the_starters_check_names_what_is_missing(yomira, sandbox, make_user):
    nobody = make_user("nora")
    with pytest.raises(PermissionDenied):
        drills.start_drill(scenario="nope", actor=Actor.person(nobody))
    assert denials()[-1].data == {"permission": "incidents.add_incident", "why": ""}


def test_a_system_identity_never_starts_a_drill(yomira, sandbox):
    with pytest.raises(PermissionDenied):
        drills.start_drill(scenario="nope", actor=Actor.system("drills"))
    denied = denials()[-1]
    assert denied.actor_name == "drills"
    assert denied.data == {
        "permission": "incidents.command_incident",
        "why": "only a person starts a drill",
    }


# --- who may simulate ------------------------------------------------------------------


def test_simulating_needs_run_actions_on_this_playbook(
    yomira, make_user, commander, incident
):
    here = incident.playbook
    elsewhere = Playbook.objects.current().exclude(pk=here.pk).first()
    nora = make_user("nora")

    def may() -> bool:  # read afresh: a person's grants are cached on the object
        return drills.may_simulate(get_user_model().objects.get(pk=nora.pk), incident)

    assert may() is False
    grant(nora, "run_probes", playbooks=[here])
    assert may() is False
    grant(nora, "run_actions", playbooks=[elsewhere])
    assert may() is False
    grant(nora, "run_actions", playbooks=[here])
    assert may() is True
    assert drills.may_simulate(AnonymousUser(), incident) is False


# --- the drill sink -----------------------------------------------------------------


@pytest.fixture
def slack(yomira, settings, monkeypatch):  # noqa: ANN001, ANN201
    """A Slack channel on playbook 4's escalation, pointing nowhere that answers:
    a send would fail loudly, so a drill's message reaching it would show."""
    settings.CONSOLE_BASE_URL = "https://console.yomira.test"
    settings.NOTIFY_DIAGNOSIS_WAIT_SECONDS = 0
    monkeypatch.setenv("SLACK_WEBHOOK_URL", "http://127.0.0.1:9/services/T0/B0/x")
    channel = Channel.objects.create(
        name="Slack", kind="slack", secret_env="SLACK_WEBHOOK_URL"
    )
    playbook = Playbook.objects.current().get(number=4)
    playbook.escalation = ["Slack"]
    playbook.save(update_fields=["escalation"])
    return channel


def queued(commander, capture, *, drill: bool) -> Notification:  # noqa: ANN001
    """The incident's trigger notification, queued and not yet handed to a
    worker (the hand-over runs on commit, which the capture holds back)."""
    with capture(execute=False):
        incident = open_incident(
            playbook=Playbook.objects.current().get(number=4),
            title="Practice: Redis down" if drill else "Redis down",
            actor=Actor.person(commander),
            drill=drill,
        )
        (row,) = notify.queue(incident=incident, event="trigger")
    return row


@pytest.mark.parametrize(
    ("send", "enabled"), [(True, True), (False, True), (True, False), (False, False)]
)
def test_a_drills_notification_goes_to_the_sink_whatever_is_set(
    slack, commander, settings, django_capture_on_commit_callbacks, send, enabled
):
    settings.NOTIFY_SEND = send
    slack.enabled = enabled
    slack.save()
    row = queued(commander, django_capture_on_commit_callbacks, drill=True)
    text = content.drill_text(content.brief(row, with_diagnosis=False))
    assert text == (
        f"[DRILL] #{row.incident_id} Practice: Redis down opened: "
        "§4 Redis Down / Unreachable"
    )

    assert notify.deliver(row.pk) == notify.Outcome("drill")

    row.refresh_from_db()
    assert (row.state, row.answer, row.attempts, row.sent_at) == (
        "drill",
        text,
        0,
        None,
    )
    (event,) = AuditEvent.objects.filter(incident=row.incident).exclude(
        verb="incident.opened"
    )
    assert event.verb == "notification.drill"
    assert event.actor_name == "notifier"
    assert (event.object_type, event.object_id) == ("notification", str(row.pk))
    assert event.data == {
        "channel": "Slack",
        "kind": "slack",
        "event": "trigger",
        "text": text,
    }
    # A second delivery of the same row finds nothing to do and records nothing.
    assert notify.deliver(row.pk) == notify.Outcome("duplicate")
    assert notify.to_drill_sink(row) == notify.Outcome("duplicate")
    assert AuditEvent.objects.filter(verb="notification.drill").count() == 1


def test_a_real_incidents_notification_is_not_put_in_the_sink(
    slack, commander, settings, django_capture_on_commit_callbacks
):
    settings.NOTIFY_SEND = False
    row = queued(commander, django_capture_on_commit_callbacks, drill=False)
    assert notify.deliver(row.pk) == notify.Outcome("suppressed")
    row.refresh_from_db()
    assert row.state == "suppressed"
    assert row.answer == "NOTIFY_SEND is off: nothing leaves the console"
    assert not AuditEvent.objects.filter(verb="notification.drill").exists()


def test_a_notification_that_is_not_there_is_a_duplicate(db):
    assert notify.deliver(2_000_000_000) == notify.Outcome("duplicate")


# --- the intake: the source decides ---------------------------------------------------


@pytest.fixture
def hooks(yomira, settings, django_capture_on_commit_callbacks):  # noqa: ANN001, ANN201
    settings.ALERT_ROUTING_PROBE = False
    sources.forget_cached()
    made = {}
    for name, drill in (("drill-am", True), ("prod-am", False)):
        source, token = sources.create(
            name=name, kind="alertmanager", actor=Actor.system("test"), drill=drill
        )
        made[name] = Hook(source, token, Client(), django_capture_on_commit_callbacks)
    yield made
    sources.forget_cached()


def firing(severity: str, alertname: str = "HighErrorRate") -> dict:
    body = fixture_body(FIRING)
    body["alerts"][0]["labels"]["severity"] = severity
    body["alerts"][0]["labels"]["alertname"] = alertname
    body["commonLabels"]["severity"] = severity
    body["commonLabels"]["alertname"] = alertname
    return body


def opened(incident: Incident) -> dict:
    return AuditEvent.objects.get(verb="incident.opened", incident=incident).data


@pytest.mark.parametrize("name", ["drill-am", "prod-am"])
def test_a_routed_alert_opens_its_incident_with_where_it_came_from(hooks, name):
    hook = hooks[name]
    incident = hook.deliver(firing("info")).opened
    assert incident.drill is (name == "drill-am")
    assert incident.severity == "info"  # the alert's label, not the playbook's
    group = AlertGroup.objects.get(incident=incident)
    assert group.playbook_id == incident.playbook_id
    assert group.triage == AlertGroup.Triage.NONE  # routed: never "picked"
    assert opened(incident)["origin"] == {
        "source": name,
        "alert": "HighErrorRate",
        "fingerprint": "b1c11497b32ce15e",
        "rule": group.rule,
        "reason": group.reason,
    }
    assert group.rule and group.reason


def test_an_unknown_severity_keeps_the_playbooks(hooks):
    hook = hooks["prod-am"]
    incident = hook.deliver(firing("whatever")).opened
    assert incident.severity == incident.playbook.severity


@pytest.mark.parametrize("name", ["drill-am", "prod-am"])
def test_an_alert_picked_in_triage_keeps_its_source_and_a_long_reason_is_cut(
    hooks, name, commander
):
    hook = hooks[name]
    assert hook.deliver(firing("info", "NothingRoutesThis")).opened is None
    group = AlertGroup.objects.get(source__name=name)
    assert group.triage == AlertGroup.Triage.WAITING
    first = group.alerts.get()
    playbook = Playbook.objects.current().get(number=4)
    reason = "r" * 600
    incident = intake.open_for(
        group, playbook, first, Actor.person(commander), "triage", reason
    )
    assert incident.drill is (name == "drill-am")
    assert (group.incident, group.playbook) == (incident, playbook)
    assert (group.rule, group.reason) == ("triage", reason)
    assert group.triage == AlertGroup.Triage.PICKED
    assert opened(incident)["origin"] == {
        "source": name,
        "alert": "NothingRoutesThis",
        "fingerprint": "b1c11497b32ce15e",
        "rule": "triage",
        "reason": "r" * 500,
    }


def test_a_pick_in_the_triage_list_saves_the_group(hooks, commander):
    hook = hooks["drill-am"]
    hook.deliver(firing("info", "NothingRoutesThis"))
    group = AlertGroup.objects.get()
    playbook = Playbook.objects.current().get(number=4)
    incident = triage.pick(
        group=group, playbook=playbook, actor=Actor.person(commander)
    )
    group.refresh_from_db()
    assert incident.drill is True
    assert (group.incident_id, group.playbook_id) == (incident.pk, playbook.pk)
    assert group.triage == AlertGroup.Triage.PICKED
    assert group.rule == "triage"
    assert group.reason == "picked by cole in the triage list"


# --- deliver's own failure: a channel that raises is a result, not a crash -------------


def test_a_channel_that_raises_is_a_failure_in_words_and_in_the_log(
    slack, commander, settings, monkeypatch, caplog, django_capture_on_commit_callbacks
):
    # A webhook URL httpx refuses to parse (InvalidURL is no TransportError).
    settings.NOTIFY_SEND = True
    monkeypatch.setenv("SLACK_WEBHOOK_URL", "http://yomira-hooks.test:port/T0/B0/x")
    row = queued(commander, django_capture_on_commit_callbacks, drill=False)
    with caplog.at_level("ERROR", logger="notify.services"):
        assert notify.deliver(row.pk) == notify.Outcome("failed")
    row.refresh_from_db()
    assert (row.state, row.status_code, row.attempts) == ("failed", None, 1)
    assert row.answer == "InvalidURL: Invalid port: 'port'"
    (logged,) = [r for r in caplog.records if r.name == "notify.services"]
    assert logged.getMessage() == (
        f"notification {row.pk}: slack failed: InvalidURL: Invalid port: 'port'"
    )
    failed = AuditEvent.objects.get(verb="notification.failed", incident=row.incident)
    assert failed.data["error"] == "InvalidURL: Invalid port: 'port'"
    assert failed.data["will_retry"] is False
