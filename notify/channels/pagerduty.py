"""PagerDuty Events API v2: `trigger` when an incident opens (and again, same
dedup_key, when it is escalated: PagerDuty's own escalation policy pages on),
`acknowledge` and `resolve` as it moves. One dedup_key per incident folds them all
into one PagerDuty alert."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings

from .base import Answer, Brief, Kind, post_json

if TYPE_CHECKING:
    from ..models import Channel

SUMMARY_MAX = 1024  # the Events API's limit
# The runbook's severities onto PagerDuty's four. Anything unknown pages as
# `error`: better a page too loud than a real outage filed as info.
SEVERITIES = {
    "critical": "critical",
    "high": "error",
    "major": "error",
    "error": "error",
    "warning": "warning",
    "medium": "warning",
    "minor": "warning",
    "low": "info",
    "info": "info",
}
ACTIONS = {
    "trigger": "trigger",
    "escalate": "trigger",
    "acknowledge": "acknowledge",
    "resolve": "resolve",
}


def severity(value: str) -> str:
    return SEVERITIES.get(value.strip().lower(), "error")


def build(brief: Brief, routing_key: str) -> dict:
    body = {
        "routing_key": routing_key,
        "event_action": ACTIONS[brief.event],
        "dedup_key": brief.dedup_key,
    }
    if body["event_action"] != "trigger":
        return body
    summary = f"[{brief.severity or 'unknown'}] {brief.label} ({brief.playbook})"
    if brief.event == "escalate":
        summary = f"Still not acknowledged: {summary}"
    details = {
        "status": brief.status,
        "playbook": brief.playbook,
        "console": brief.url,
        "diagnosis": [
            f"{line.command[:120]}: {line.state}"
            + (f" ({line.summary[:200]})" if line.summary else "")
            for line in brief.diagnosis[:10]
        ],
    }
    if brief.note:
        details["note"] = brief.note
    body["payload"] = {
        "summary": summary[:SUMMARY_MAX],
        "source": brief.source,
        "severity": severity(brief.severity),
        "component": brief.playbook[:255],
        "custom_details": details,
    }
    body["links"] = [{"href": brief.url, "text": f"Incident #{brief.incident_id}"}]
    body["client"] = "Yomira incident console"
    body["client_url"] = brief.url
    return body


def send(brief: Brief, channel: Channel, secret: str) -> Answer:
    # The endpoint is a setting, not a channel field: an admin editing a channel
    # cannot send the routing key to a host of their choosing.
    return post_json(settings.NOTIFY_PAGERDUTY_URL, build(brief, secret))


KIND = Kind(
    name="pagerduty",
    events=frozenset({"trigger", "acknowledge", "resolve", "escalate"}),
    send=send,
)
