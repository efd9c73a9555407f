"""Email through the console's own EMAIL_* settings: a plain-text message when an
incident opens or is escalated (acknowledge and resolve stay in the console and
the chat: an inbox is no place for status lines)."""

from __future__ import annotations

import smtplib
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.mail import EmailMessage, get_connection

from .base import Answer, Brief, Kind, NotConfigured

if TYPE_CHECKING:
    from ..models import Channel


def _one_line(text: str) -> str:
    # A title from an alert may hold line breaks: never a header injection.
    return " ".join(text.split())


def subject(brief: Brief) -> str:
    lead = f"[{(brief.severity or 'incident').upper()}]"
    if brief.event == "escalate":
        lead += " Still not acknowledged:"
    return _one_line(f"{lead} {brief.label}")[:250]


def body(brief: Brief) -> str:
    lines = [
        f"Incident {brief.label}",
        f"{brief.url}",
        "",
        f"Severity: {brief.severity or 'not given'}",
        f"Status:   {brief.status}",
        f"Playbook: {brief.playbook}",
    ]
    if brief.note:
        lines.append(f"Why:      {brief.note}")
    lines += ["", "Diagnosis:"]
    if not brief.diagnosis:
        lines.append("  no diagnosis results yet")
    for line in brief.diagnosis[:20]:
        summary = f": {_one_line(line.summary)}" if line.summary else ""
        lines.append(f"  - {_one_line(line.command)[:120]} {line.state}{summary}")
    lines += ["", "-- the Yomira incident console"]
    return "\n".join(lines) + "\n"


def _code(exc: smtplib.SMTPException) -> int | None:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return max(codes) if codes else None
    return getattr(exc, "smtp_code", None)


def send(brief: Brief, channel: Channel, secret: str) -> Answer:
    to = channel.recipient_list()
    if not to:
        raise NotConfigured(f"The channel '{channel.name}' has no recipients.")
    message = EmailMessage(
        subject(brief),
        body(brief),
        settings.DEFAULT_FROM_EMAIL,
        to,
        connection=get_connection(timeout=settings.NOTIFY_TIMEOUT),
    )
    try:
        message.send(fail_silently=False)
    except smtplib.SMTPException as exc:
        code = _code(exc)
        # 4xx is "try later", 5xx "never"; no code means the connection failed.
        retry = code is None or 400 <= code < 500
        return Answer(code, f"{type(exc).__name__}: {exc}", retry=retry)
    except OSError as exc:  # refused, unreachable, timed out
        return Answer(None, f"{type(exc).__name__}: {exc}", retry=True)
    return Answer(250, f"accepted for {len(to)} recipient(s)")


KIND = Kind(
    name="email",
    events=frozenset({"trigger", "escalate"}),
    send=send,
    waits_for_diagnosis=frozenset({"trigger"}),
)
