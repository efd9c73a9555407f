"""Email through a real SMTP server (aiosmtpd): subject with severity and title,
a plain-text body with the link and the Diagnosis results, the channel's
recipients; a permanent refusal fails, a temporary one is retried."""

from __future__ import annotations

from email import message_from_bytes

import pytest

from incidents.models import Command, StepExecution
from incidents.services import open_incident
from notify.models import Channel, Notification

from .conftest import events, move, open_, playbook


@pytest.fixture
def email_channel(db):
    return Channel.objects.create(
        name="Security team",
        kind="email",
        recipients="sec@yomira.test, ciso@yomira.test",
    )


def test_the_opening_email_has_severity_title_link_and_diagnosis(
    yomira, email_channel, mailbox, committed, commander_actor
):
    security = playbook(12)
    assert security.escalation == ["PagerDuty", "Security team"]
    command = Command.objects.filter(playbook=playbook(1), step__isnull=True).first()
    with committed():
        incident = open_incident(
            playbook=security, title="Leaked token\r\nBcc: all@x", actor=commander_actor
        )
        StepExecution.objects.create(
            incident=incident,
            command=command,
            state="succeeded",
            summary="200 OK, ready",
            command_text="curl -s https://api.yomira.app/health/ready",
        )

    (envelope,) = mailbox.messages
    assert sorted(envelope.rcpt_tos) == ["ciso@yomira.test", "sec@yomira.test"]
    assert envelope.mail_from == "console@yomira.test"
    message = message_from_bytes(envelope.content)
    assert message["Subject"] == f"[CRITICAL] #{incident.pk} Leaked token Bcc: all@x"
    assert message["Bcc"] is None
    body = message.get_payload(decode=True).decode()
    assert f"https://console.yomira.test/incidents/{incident.pk}/" in body
    assert "Playbook: §12 Security Incident (Token Compromise)" in body
    assert (
        "  - curl -s https://api.yomira.app/health/ready succeeded: 200 OK, ready"
        in body
    )
    (sent,) = events("notification.sent")
    assert sent.data == {
        "channel": "Security team",
        "kind": "email",
        "event": "trigger",
        "status_code": 250,
        "attempt": 1,
    }


def test_email_says_nothing_on_acknowledge_or_resolve(
    yomira, email_channel, mailbox, committed, commander_actor
):
    incident = open_(committed, commander_actor, 12)
    move(committed, incident, "acknowledged", commander_actor)
    move(committed, incident, "resolved", commander_actor)
    assert len(mailbox.messages) == 1
    assert list(Notification.objects.values_list("event", flat=True)) == ["trigger"]


def test_a_permanent_refusal_fails_and_a_temporary_one_is_retried(
    yomira, email_channel, mailbox, committed, commander_actor, settings
):
    settings.NOTIFY_MAX_ATTEMPTS = 2
    mailbox.reply = "554 5.7.1 rejected"
    open_(committed, commander_actor, 12, "first")
    mailbox.reply = "451 4.3.0 try again later"
    open_(committed, commander_actor, 12, "second")

    found = [
        (e.data["status_code"], e.data["will_retry"])
        for e in events("notification.failed")
    ]
    assert found == [(554, False), (451, True), (451, False)]
    assert "rejected" in events("notification.failed")[0].data["error"]
    assert mailbox.messages == []


def test_an_unreachable_mail_server_is_retried(
    yomira, email_channel, mailbox, committed, commander_actor, settings
):
    from .conftest import free_port

    settings.EMAIL_PORT = free_port()  # nothing listens there
    settings.NOTIFY_MAX_ATTEMPTS = 2
    open_(committed, commander_actor, 12)
    found = [
        (e.data["status_code"], e.data["will_retry"])
        for e in events("notification.failed")
    ]
    assert found == [(None, True), (None, False)]
    assert "ConnectionRefusedError" in events("notification.failed")[0].data["error"]
