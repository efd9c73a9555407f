"""Slack incoming webhooks: a Block Kit message when an incident opens (title and
link, severity, status, playbook, the Diagnosis results), a one-line status
message when it is acknowledged, resolved or escalated, and a message asking for
a second person's approval (what would run, its preview, who asked, who may
decide, and the link to decide)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import (
    Answer,
    ApprovalNotice,
    Brief,
    DiagnosisLine,
    Kind,
    escape_mrkdwn,
    http_url,
    post_json,
)

if TYPE_CHECKING:
    from ..models import Channel

# Block Kit limits: a header's text, a section's text, how many diagnosis lines
# are worth reading in a chat message.
HEADER_MAX = 150
SECTION_MAX = 3000
DIAGNOSIS_LINES = 10
ICONS = {
    "trigger": ":rotating_light:",
    "acknowledge": ":eyes:",
    "resolve": ":white_check_mark:",
    "escalate": ":sos:",
    "approval": ":raised_hand:",
}
# Preview facts worth reading in a chat message.
FACTS_SHOWN = 5


def _link(brief: Brief) -> str:
    return f"<{brief.url}|{escape_mrkdwn(brief.label)}>"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _diagnosis_line(line: DiagnosisLine) -> str:
    # A backtick would end the code span early: the command shows with a quote.
    command = escape_mrkdwn(_cut(line.command, 80)).replace("`", "'")
    text = f"• `{command}` {escape_mrkdwn(line.state)}"
    if line.summary:
        text += f": {escape_mrkdwn(_cut(line.summary, 200))}"
    return text


def diagnosis_text(brief: Brief) -> str:
    if not brief.diagnosis:
        return "*Diagnosis*\n_No diagnosis results yet._"
    lines = [_diagnosis_line(line) for line in brief.diagnosis[:DIAGNOSIS_LINES]]
    more = len(brief.diagnosis) - DIAGNOSIS_LINES
    if more > 0:
        lines.append(f"… and {more} more on the incident page")
    return _cut("*Diagnosis*\n" + "\n".join(lines), SECTION_MAX)


def _code_block(text: str, limit: int) -> str:
    # Three backticks inside would end the block early: they show as quotes.
    return "```" + escape_mrkdwn(_cut(text, limit)).replace("```", "'''") + "```"


def approval_message(brief: Brief, notice: ApprovalNotice) -> dict:
    asks = (
        f"{ICONS['approval']} Approval needed on {_link(brief)}: "
        f"{escape_mrkdwn(notice.where)}, asked by {escape_mrkdwn(notice.requested_by)}"
    )
    parameters = ", ".join(f"{k} = {v}" for k, v in notice.parameters.items())
    fields = [
        (
            "May approve",
            notice.approvers or "nobody yet (no one holds approve_actions)",
        ),
        ("Expires", notice.expires),
        ("Parameters", parameters or "none"),
        ("Playbook", brief.playbook),
    ]
    preview = notice.preview or "No preview was recorded with this request."
    facts = [f"• {escape_mrkdwn(_cut(f, 300))}" for f in notice.facts[:FACTS_SHOWN]]
    preview_text = "*Preview*\n" + escape_mrkdwn(_cut(preview, 500))
    if facts:
        preview_text += "\n" + "\n".join(facts)
    return {
        "text": asks,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": asks}},
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": "*Command* (as the runbook writes it)\n"
                    + _code_block(notice.command, 2000),
                },
                "fields": [
                    {
                        "type": "mrkdwn",
                        "text": f"*{name}*\n{escape_mrkdwn(_cut(value, 500))}",
                    }
                    for name, value in fields
                ],
            },
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": _cut(preview_text, SECTION_MAX)},
            },
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": f"<{notice.url}|Approve or reject it in the Yomira "
                        "console> (the requester cannot approve their own request)",
                    }
                ],
            },
        ],
    }


def build(brief: Brief) -> dict:
    if brief.approval is not None:
        return approval_message(brief, brief.approval)
    icon = ICONS.get(brief.event, "")
    note = escape_mrkdwn(brief.note)
    if brief.event != "trigger":
        line = f"{icon} {_link(brief)}: {note or brief.event}"
        return {
            "text": line,
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": line}}],
        }
    fields = [
        ("Severity", brief.severity or "not given"),
        ("Status", brief.status),
        ("Playbook", brief.playbook),
    ]
    return {
        # The notification's own text (phones, screen readers); blocks are the body.
        "text": f"{icon} {escape_mrkdwn(brief.severity.upper())} {_link(brief)}",
        "blocks": [
            {
                "type": "header",
                # plain_text is never parsed as markup: no escaping, only the cap.
                "text": {
                    "type": "plain_text",
                    "text": _cut(f"Incident {brief.label}", HEADER_MAX),
                },
            },
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": f"{icon} *{_link(brief)}*" + (f" ({note})" if note else ""),
                },
                "fields": [
                    {"type": "mrkdwn", "text": f"*{name}*\n{escape_mrkdwn(value)}"}
                    for name, value in fields
                ],
            },
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": diagnosis_text(brief)},
            },
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": f"<{brief.url}|Open the incident in the Yomira console>",
                    }
                ],
            },
        ],
    }


def send(brief: Brief, channel: Channel, secret: str) -> Answer:
    return post_json(http_url(secret, channel.secret_env), build(brief))


KIND = Kind(
    name="slack",
    events=frozenset({"trigger", "acknowledge", "resolve", "escalate", "approval"}),
    send=send,
    waits_for_diagnosis=frozenset({"trigger"}),
)
