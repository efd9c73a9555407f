"""The incident timeline is a view of the audit log: one sentence per event."""

from __future__ import annotations

from .models import AuditEvent

STATE_WORDS = {"done": "marked step {step} done", "reopened": "reopened step {step}"}


def describe(event: AuditEvent) -> str:
    """What happened, in words a post-mortem author can paste."""
    d = event.data or {}
    verb = event.verb
    if verb == "incident.opened":
        return f"opened the incident from §{d.get('playbook')} {d.get('playbook_title', '')}"
    if verb == "incident.status_changed":
        return f"changed the status from {d.get('from')} to {d.get('to')}"
    if verb == "incident.reopened":
        return f"reopened the incident (was {d.get('from')})"
    if verb == "incident.commander_changed":
        return f"made {d.get('to') or 'nobody'} the commander"
    if verb == "step.done":
        return f"marked step {d.get('step')} done ({d.get('title', '')})"
    if verb == "step.skipped":
        return f"skipped step {d.get('step')} ({d.get('title', '')}): {d.get('reason', '')}"
    if verb == "step.reopened":
        return f"reopened step {d.get('step')} ({d.get('title', '')})"
    if verb == "note.added":
        where = f" on step {d['step']}" if d.get("step") else ""
        return f"noted{where}: {d.get('text', '')}"
    if verb.startswith("execution."):
        return _execution(verb.split(".", 1)[1], d)
    if verb == "incident.exported":
        return f"exported the {d.get('format', '')}"
    if verb == "permission.denied":
        return f"was refused {d.get('permission', '')} ({d.get('method', '')} {d.get('path', '')})"
    return verb.replace(".", " ")


def kind(event: AuditEvent) -> str:
    """A CSS class for the event's family."""
    return event.verb.split(".", 1)[0]


RUN_WORDS = {
    "requested": "asked to run",
    "started": "started",
    "succeeded": "succeeded:",
    "failed": "failed:",
    "timed_out": "timed out:",
    "dispatch_failed": "could not be sent:",
    "outcome_unknown": "outcome unknown:",
}


def _execution(state: str, d: dict) -> str:
    where = f" (step {d['step']})" if d.get("step") else " (diagnosis)"
    command = (
        (d.get("command") or "").splitlines()[0][:120]
        if d.get("command")
        else "a command"
    )
    if state == "requested":
        return f"asked to run {d.get('kind', '')} `{command}`{where}"
    if state == "approval_requested":
        return f"asked for approval to run `{command}`{where}"
    if state in {"approved", "rejected"}:
        reason = f": {d['reason']}" if d.get("reason") else ""
        return f"{state} `{command}`{where} asked by {d.get('requested_by')}{reason}"
    if state == "break_glass":
        return f"BROKE GLASS to run `{command}`{where} without approval: {d.get('reason', '')}"
    if state == "previewed":
        return f"previewed `{command}`{where}: {d.get('headline', '')}"
    if state == "expired":
        return f"approval request for `{command}`{where} expired"
    word = RUN_WORDS.get(state, state)
    summary = f" {d['summary']}" if d.get("summary") and word.endswith(":") else ""
    return f"`{command}`{where} {word}{summary}"
