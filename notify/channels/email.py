"""Email through the console's own EMAIL_* settings: a plain-text message when an
incident opens or is escalated (acknowledge and resolve stay in the console and
the chat: an inbox is no place for status lines), and when an action waits for a
second person's approval: that one goes to the people who may approve it (their
accounts' addresses), or to the channel's list when none of them has one."""

from __future__ import annotations

import smtplib
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.mail import EmailMessage, get_connection

from .base import Answer, ApprovalNotice, Brief, Kind, NotConfigured

if TYPE_CHECKING:
    from ..models import Channel


def _one_line(text: str) -> str:
    # A title from an alert may hold line breaks: never a header injection.
    return " ".join(text.split())


def subject(brief: Brief) -> str:
    if brief.approval is not None:
        asks = f"[Approval needed] {brief.label}: {brief.approval.where}"
        return _one_line(asks)[:250]
    lead = f"[{(brief.severity or 'incident').upper()}]"
    if brief.event == "escalate":
        lead += " Still not acknowledged:"
    return _one_line(f"{lead} {brief.label}")[:250]


def approval_body(brief: Brief, notice: ApprovalNotice) -> str:
    lines = [
        f"{notice.requested_by} asks for a second person's approval to run an "
        f"action on incident {brief.label} ({notice.where}).",
        "",
        f"Approve or reject it: {notice.url}",
        f"The incident:         {brief.url}",
        "",
        "Command (as the runbook writes it):",
        *(f"    {line}" for line in notice.command.splitlines()[:40]),
        "",
    ]
    for name, value in notice.parameters.items():
        lines.append(f"Parameter {name} = {_one_line(value)}")
    lines.append(f"Preview:     {_one_line(notice.preview) or 'none recorded'}")
    lines += [f"             {_one_line(fact)[:300]}" for fact in notice.facts[:10]]
    lines += [
        f"Asked by:    {notice.requested_by}",
        f"May approve: {notice.approvers or 'nobody yet (no one holds approve_actions)'}",
        f"Expires:     {notice.expires}",
        f"Playbook:    {brief.playbook}",
        "",
        "The requester cannot approve their own request.",
        "",
        "-- the Yomira incident console",
    ]
    return "\n".join(lines) + "\n"


def recipients(brief: Brief, channel: Channel) -> list[str]:
    """An approval request goes to those who may decide it; when none of them
    has an address, to the channel's list (it names who may approve): a
    request nobody hears of expires unseen."""
    if brief.approval is not None and brief.approval.emails:
        return list(brief.approval.emails)
    return channel.recipient_list()


def body(brief: Brief) -> str:
    if brief.approval is not None:
        return approval_body(brief, brief.approval)
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
    to = recipients(brief, channel)
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
    events=frozenset({"trigger", "escalate", "approval"}),
    send=send,
    waits_for_diagnosis=frozenset({"trigger"}),
)
