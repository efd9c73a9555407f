"""Notifications' world: channels mapped to stand-ins (pytest-httpserver as Slack
and PagerDuty, aiosmtpd as the mail server), secrets in the environment that every
test can look for where they must never be, and Celery run eagerly so the task's
own retries run for real (without their countdowns)."""

from __future__ import annotations

import json
import socket

import pytest
from aiosmtpd.controller import Controller
from celery import current_app

from incidents.actors import Actor
from incidents.models import AuditEvent, Incident, Playbook
from incidents.services import change_status, open_incident
from notify.models import Channel, Notification

# Canaries: if either shows up in the database, the audit log or a page, a
# secret leaked.
SLACK_TOKEN = "T0CANARY/B0CANARY/slackCanarySecret0123456789"
ROUTING_KEY = "R0UTINGKEYcanary0123456789abcdef"
SLACK_PATH = f"/services/{SLACK_TOKEN}"
PD_PATH = "/v2/enqueue"


@pytest.fixture(autouse=True)
def _notify_settings(settings, httpserver):
    settings.NOTIFY_SEND = True
    settings.NOTIFY_PAGERDUTY_URL = httpserver.url_for(PD_PATH)
    settings.CONSOLE_BASE_URL = "https://console.yomira.test"
    settings.NOTIFY_DIAGNOSIS_WAIT_SECONDS = 10
    settings.NOTIFY_MAX_ATTEMPTS = 4
    settings.NOTIFY_RETRY_BASE_SECONDS = 10
    settings.NOTIFY_RETRY_MAX_SECONDS = 300
    settings.NOTIFY_ESCALATE_AFTER = "critical=5,warning=15"
    settings.NOTIFY_ESCALATE_MAX_LEVEL = 3
    settings.NOTIFY_TIMEOUT = 5
    settings.NOTIFY_CONNECT_TIMEOUT = 1


@pytest.fixture(autouse=True)
def eager():
    """send_notification runs where it is sent, retries included (Celery's eager
    mode applies a retry at once: countdowns are recorded, never slept)."""
    # Not task_eager_propagates: it would raise the Retry a retry is made of.
    conf = current_app.conf
    saved = conf.task_always_eager
    conf.task_always_eager = True
    yield
    conf.task_always_eager = saved


@pytest.fixture
def secrets(monkeypatch, httpserver):
    monkeypatch.setenv("SLACK_WEBHOOK_URL", httpserver.url_for(SLACK_PATH))
    monkeypatch.setenv("PAGERDUTY_ROUTING_KEY", ROUTING_KEY)


@pytest.fixture
def pagerduty(db, secrets):
    return Channel.objects.create(
        name="PagerDuty", kind="pagerduty", secret_env="PAGERDUTY_ROUTING_KEY"
    )


@pytest.fixture
def slack(db, secrets):
    return Channel.objects.create(
        name="Slack", kind="slack", secret_env="SLACK_WEBHOOK_URL"
    )


@pytest.fixture
def commander_actor(commander) -> Actor:
    return Actor.person(commander, "10.0.0.7")


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Run what waits for the commit (the audit signal, then the task), as a
    real commit would."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def playbook(number: int, escalation: list[str] | None = None) -> Playbook:
    found = Playbook.objects.current().get(number=number)
    if escalation is not None:
        found.escalation = escalation
        found.save(update_fields=["escalation"])
    return found


def open_(committed, actor: Actor, number: int, title: str = "It broke") -> Incident:
    with committed():
        return open_incident(playbook=playbook(number), title=title, actor=actor)


def move(committed, incident: Incident, to: str, actor: Actor) -> Incident:
    with committed():
        return change_status(incident=incident, to=to, actor=actor)


def bodies(httpserver, path: str) -> list[dict]:
    return [
        json.loads(request.get_data())
        for request, _ in httpserver.log
        if request.path == path
    ]


def events(verb_prefix: str = "notification.") -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(verb__startswith=verb_prefix).order_by("seq"))


def assert_secret_nowhere(*pages: str) -> None:
    """Neither canary in the audit log, the notification rows, or the pages."""
    stored = [json.dumps(e.data) for e in AuditEvent.objects.all()]
    stored += [json.dumps(row, default=str) for row in Notification.objects.values()]
    stored += [json.dumps(row) for row in Channel.objects.values("secret_env", "name")]
    for text in [*stored, *pages]:
        for secret in (SLACK_TOKEN, ROUTING_KEY, "slackCanarySecret"):
            assert secret not in text


# --- a mail server --------------------------------------------------------------


class Mailbox:
    """An aiosmtpd handler that keeps what it accepts, or refuses with `reply`."""

    def __init__(self) -> None:
        self.messages: list = []
        self.reply = "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, ANN201, N802
        if not self.reply.startswith("250"):
            return self.reply
        self.messages.append(envelope)
        return "250 OK"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def smtp():
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    mailbox.port = port
    yield mailbox
    controller.stop()


@pytest.fixture
def mailbox(smtp, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = smtp.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.DEFAULT_FROM_EMAIL = "console@yomira.test"
    smtp.messages.clear()
    smtp.reply = "250 OK"
    return smtp
