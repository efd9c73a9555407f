"""The incident timeline is a view of the audit log: one sentence per event."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from .models import AuditEvent, StepExecution


@dataclass(frozen=True)
class Style:
    """How the values inside a sentence are written. Everything an event carries
    (notes, reasons, usernames, paths, a target's summary, command text) passes
    through `text` or `code`; the sentence's own words do not need to. Plain for
    the page (where the template escapes), JSON and CSV; the Markdown export
    escapes (see incidents.exports)."""

    text: Callable[[str], str]
    code: Callable[[str], str]


def _plain_code(value: str) -> str:
    """The page's timeline is a glance: a command's first line, at most 120
    characters (the run panel shows it whole)."""
    first = value.splitlines()[0] if value.strip() else value
    return f"`{first[:120]}`"


PLAIN = Style(text=str, code=_plain_code)

# How other apps' events read, by verb prefix ("drill."): filled in by those apps at
# start-up (incidents cannot import the apps above it).
DESCRIBERS: dict[str, Callable[[AuditEvent, Style], str]] = {}


def describe(event: AuditEvent, style: Style = PLAIN) -> str:
    """What happened, in words a post-mortem author can paste."""
    d = event.data or {}
    t = style.text
    verb = event.verb
    if verb == "incident.opened":
        origin = d.get("origin") or {}
        came = (
            f" for the alert {t(str(origin.get('alert') or '?'))} from "
            f"{t(str(origin.get('source', '')))} ({t(str(origin.get('reason', '')))})"
            if origin
            else ""
        )
        return (
            f"opened the incident from §{t(str(d.get('playbook')))} "
            f"{t(str(d.get('playbook_title', '')))}{came}"
        )
    if verb == "incident.status_changed":
        why = f": {t(str(d['why']))}" if d.get("why") else ""
        return (
            f"changed the status from {t(str(d.get('from')))} to "
            f"{t(str(d.get('to')))}{why}"
        )
    if verb.startswith("alert."):
        return _alert(verb.split(".", 1)[1], d, style)
    if verb.startswith("notification.") or verb == "incident.escalated":
        return _notification(verb, d, style)
    if verb == "diagnosis.started":
        return _diagnosis(d, style)
    if verb == "incident.reopened":
        why = f": {t(str(d['why']))}" if d.get("why") else ""
        return f"reopened the incident (was {t(str(d.get('from')))}){why}"
    if verb == "incident.commander_changed":
        return f"made {t(str(d.get('to') or 'nobody'))} the commander"
    step = t(str(d.get("step")))
    title = t(str(d.get("title", "")))
    if verb == "step.done":
        return f"marked step {step} done ({title})"
    if verb == "step.skipped":
        return f"skipped step {step} ({title}): {t(str(d.get('reason', '')))}"
    if verb == "step.reopened":
        return f"reopened step {step} ({title})"
    if verb == "note.added":
        where = f" on step {step}" if d.get("step") else ""
        return f"noted{where}: {t(str(d.get('text', '')))}"
    if verb.startswith("execution."):
        return _execution(verb.split(".", 1)[1], d, style)
    if verb == "incident.exported":
        return f"exported the {t(str(d.get('format', '')))}"
    if verb == "permission.denied":
        return (
            f"was refused {t(str(d.get('permission', '')))} "
            f"({t(str(d.get('method', '')))} {t(str(d.get('path', '')))})"
        )
    for prefix, describer in DESCRIBERS.items():
        if verb.startswith(prefix):
            return describer(event, style)
    return t(verb.replace(".", " "))


def kind(event: AuditEvent) -> str:
    """A CSS class for the event's family."""
    return event.verb.split(".", 1)[0]


# `execution.<state>` events: how each end of a run reads in the timeline.
RUN_WORDS = {
    StepExecution.State.SUCCEEDED: "succeeded:",
    StepExecution.State.FAILED: "failed:",
    StepExecution.State.TIMED_OUT: "timed out:",
    StepExecution.State.DISPATCH_FAILED: "could not be sent:",
    StepExecution.State.OUTCOME_UNKNOWN: "outcome unknown:",
}


def _execution(state: str, d: dict, style: Style) -> str:
    t, c = style.text, style.code
    where = f" (step {t(str(d['step']))})" if d.get("step") else " (diagnosis)"
    text = d.get("command") or ""
    command = c(text) if text.strip() else "a command"
    if state == "requested":
        return f"asked to run {t(str(d.get('kind', '')))} {command}{where}"
    if state == "approval_requested":
        return f"asked for approval to run {command}{where}"
    if state in {"approved", "rejected"}:
        reason = f": {t(str(d['reason']))}" if d.get("reason") else ""
        asked = t(str(d.get("requested_by")))
        return f"{state} {command}{where} asked by {asked}{reason}"
    if state == "break_glass":
        reason = t(str(d.get("reason", "")))
        return f"BROKE GLASS to run {command}{where} without approval: {reason}"
    if state == "previewed":
        return f"previewed {command}{where}: {t(str(d.get('headline', '')))}"
    if state == "expired":
        return f"approval request for {command}{where} expired"
    word = t(RUN_WORDS.get(state, state))
    summary = (
        f" {t(str(d['summary']))}"
        if d.get("summary") and RUN_WORDS.get(state, "").endswith(":")
        else ""
    )
    return f"{command}{where} {word}{summary}"


def _labels(labels: object, style: Style) -> str:
    if not isinstance(labels, dict):
        return ""
    shown = [
        f"{k}={v}" for k, v in labels.items() if k not in {"alertname", "severity"}
    ][:6]
    return f" ({style.text(', '.join(shown))})" if shown else ""


def _when(value: object) -> str:
    """An alert's ISO time as the timeline's other times read: `2026-11-29
    06:58:40 UTC`."""
    try:
        moment = datetime.fromisoformat(str(value))
        if moment.tzinfo is not None:
            moment = moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return str(value)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _alert(what: str, d: dict, style: Style) -> str:
    """The alerts an incident came from (alerts/intake.py writes these)."""
    t = style.text
    name = t(str(d.get("alert") or "an alert"))
    source = t(str(d.get("source", "")))
    if what == "firing":
        return (
            f"alert {name} firing since {t(_when(d.get('starts_at', '')))}"
            f"{_labels(d.get('labels'), style)} from {source}"
        )
    if what == "resolved":
        return (
            f"alert {name} resolved at "
            f"{t(_when(d['ends_at']) if d.get('ends_at') else 'an unknown time')}"
            f"{_labels(d.get('labels'), style)}"
        )
    if what == "more":
        parts = []
        if d.get("more"):
            parts.append(
                f"{t(str(d['more']))} more alert changes, not listed one by one"
            )
        if d.get("truncated"):
            parts.append(
                f"{t(str(d['truncated']))} alerts the sender left out of its "
                "message (its max_alerts)"
            )
        return "; ".join(parts) or "more alerts"
    if what == "source_resolved":
        return (
            f"source resolved: all {t(str(d.get('alerts', '')))} alerts of the group "
            f"from {source} have ended"
        )
    if what == "flapped":
        reopened = "; the incident was reopened" if d.get("reopened") else ""
        return (
            f"the alerts fired again after resolving "
            f"(flap {t(str(d.get('flaps', '')))}){reopened}"
        )
    if what == "dismissed":
        return f"dismissed the alerts: {t(str(d.get('reason', '')))}"
    return t(f"alert {what.replace('_', ' ')}")


def _notification(verb: str, d: dict, style: Style) -> str:
    """What was sent to whom, and the answer (notify/ writes these)."""
    t = style.text
    channel = t(str(d.get("channel", "")))
    event = t(str(d.get("event", "")))
    if verb == "incident.escalated":
        channels = d.get("channels") or []
        to = t(", ".join(str(c) for c in channels)) if channels else "no channel"
        return (
            f"escalated (level {t(str(d.get('level', '')))}: still unacknowledged "
            f"after {t(str(d.get('after_minutes', '')))} min) to {to}"
        )
    if verb == "notification.sent":
        return (
            f"notified {channel} ({event}): answered {t(str(d.get('status_code', '')))}"
        )
    if verb == "notification.failed":
        again = "; will retry" if d.get("will_retry") else ""
        return (
            f"could not notify {channel} ({event}): "
            f"{t(str(d.get('error') or d.get('status_code') or 'no answer'))}{again}"
        )
    if verb == "notification.suppressed":
        return f"did not notify {channel} ({event}): {t(str(d.get('why', '')))}"
    if verb == "notification.drill":
        return f"drill — not sent to {channel} ({event}): {t(str(d.get('text', '')))}"
    return t(verb.replace(".", " "))


def _diagnosis(d: dict, style: Style) -> str:
    t = style.text
    skipped = d.get("skipped") or []
    said = "; ".join(
        f"{style.code(str(s.get('command', '')))} skipped: {t(str(s.get('why', '')))}"
        for s in skipped[:5]
        if isinstance(s, dict)
    )
    if not d.get("probes"):
        return "found no Diagnosis probe to run in this playbook"
    return (
        f"queued {t(str(d.get('queued', 0)))} of {t(str(d.get('probes', 0)))} "
        f"Diagnosis probes" + (f"; {said}" if said else "")
    )
