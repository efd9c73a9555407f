"""Post-mortem and timeline exports, streamed so a 100,000-event incident costs no
more memory than a small one. Exporting is itself audited."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from django.db.models import Min
from django.http import HttpRequest, StreamingHttpResponse
from django.utils import timezone

from . import audit
from .models import AuditEvent, Incident, StepExecution, step_state
from .timeline import describe

CONTENT_TYPES = {
    "postmortem.md": "text/markdown; charset=utf-8",
    "timeline.json": "application/json",
    "timeline.csv": "text/csv; charset=utf-8",
}
CHUNK = 2000


def utc(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else ""


def iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment else None


def human_duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    days, rest = divmod(minutes, 1440)
    hours, minutes = divmod(rest, 60)
    parts = [f"{days}d"] * bool(days) + [f"{hours}h"] * bool(hours) + [f"{minutes}m"]
    return " ".join(parts)


def events(incident: Incident) -> Iterator[AuditEvent]:
    return incident.events.order_by("seq").iterator(chunk_size=CHUNK)


def response(
    request: HttpRequest, incident: Incident, name: str
) -> StreamingHttpResponse:
    audit.append(
        "incident.exported",
        actor=request.user,
        incident=incident,
        data={"format": name},
        request=request,
    )
    body = {
        "postmortem.md": postmortem,
        "timeline.json": timeline_json,
        "timeline.csv": timeline_csv,
    }[name](incident)
    reply = StreamingHttpResponse(body, content_type=CONTENT_TYPES[name])
    reply["Content-Disposition"] = (
        f'attachment; filename="incident-{incident.pk}-{name}"'
    )
    reply["Cache-Control"] = "no-store"
    return reply


def _event_record(e: AuditEvent) -> dict:
    return {
        "seq": e.seq,
        "time": iso(e.created_at),
        "actor": e.actor_name or "system",
        "verb": e.verb,
        "text": describe(e),
        "step": (e.data or {}).get("step"),
        "data": e.data,
    }


def incident_record(incident: Incident) -> dict:
    return {
        "id": incident.pk,
        "title": incident.title,
        "severity": incident.severity,
        "status": incident.status,
        "playbook": {
            "number": incident.playbook.number,
            "title": incident.playbook.title,
            "slug": incident.playbook.slug,
            "runbook_revision": incident.playbook.runbook.revision,
        },
        "commander": incident.commander.get_username() if incident.commander else None,
        "opened_by": incident.opened_by.get_username() if incident.opened_by else None,
        "opened_at": iso(incident.opened_at),
        "acknowledged_at": iso(incident.acknowledged_at),
        "mitigated_at": iso(incident.mitigated_at),
        "resolved_at": iso(incident.resolved_at),
        "duration_seconds": int(incident.duration().total_seconds()),
    }


def timeline_json(incident: Incident) -> Iterator[str]:
    head = json.dumps({"incident": incident_record(incident)}, ensure_ascii=False)
    yield head[:-1] + ', "events": ['
    first = True
    for e in events(incident):
        yield ("" if first else ",\n") + json.dumps(
            _event_record(e), ensure_ascii=False
        )
        first = False
    yield "]}\n"


class _Line:
    """csv.writer needs a file; this one hands each row straight back."""

    def write(self, value: str) -> str:
        return value


def timeline_csv(incident: Incident) -> Iterator[str]:
    writer = csv.writer(_Line())
    yield writer.writerow(
        ["seq", "time_utc", "actor", "verb", "step", "description", "data"]
    )
    for e in events(incident):
        r = _event_record(e)
        yield writer.writerow(
            [
                r["seq"],
                r["time"],
                r["actor"],
                r["verb"],
                r["step"] or "",
                _cell(r["text"]),
                json.dumps(e.data, ensure_ascii=False),
            ]
        )


def _cell(text: str) -> str:
    """Spreadsheets run cells that start with = + - @ as formulas: defuse them."""
    return "'" + text if text[:1] in {"=", "+", "-", "@"} else text


def _run_line(run: StepExecution) -> str:
    """`   - ran `redis-cli ping` by rita at … → succeeded: PING: PONG`"""
    who = run.requested_by.get_username() if run.requested_by else "someone"
    command = md(run.command_text.splitlines()[0] if run.command_text else "a command")
    result = f"{run.state}" + (f": {md(run.summary)}" if run.summary else "")
    extra = ""
    if run.break_glass:
        extra = " **BREAK-GLASS**"
    elif run.approved_by_id:
        extra = f" (approved by {run.approved_by.get_username()})"
    return f"   - ran `{command}` by {who}{extra} at {utc(run.created_at)} → {result}\n"


def md(text: str) -> str:
    """One table cell or list item: no line breaks, no pipes that end the cell."""
    return " ".join(str(text).split()).replace("|", "\\|")


def postmortem(incident: Incident) -> Iterator[str]:
    playbook = incident.playbook
    steps = list(playbook.steps.all())
    executions = list(incident.executions.select_related("requested_by", "approved_by"))
    # Everyone who did anything, in order of first appearance (grouped in SQL, so
    # a 100k-event incident does not pull 100k names into memory).
    people = list(
        incident.events.exclude(actor_name="")
        .values("actor_name")
        .annotate(first=Min("seq"))
        .order_by("first")
        .values_list("actor_name", flat=True)
    )
    ended = incident.ended_at()
    duration = human_duration(incident.duration())
    impact = next(
        (s["markdown"] for s in playbook.context if "impact" in s["title"].lower()), ""
    )

    yield f"# Post-mortem: {md(incident.title)}\n\n"
    yield f"- **Incident:** #{incident.pk}, opened from §{playbook.number} {md(playbook.title)} "
    yield f"(runbook revision {playbook.runbook.revision})\n"
    yield f"- **Severity:** {incident.severity or 'unspecified'}\n"
    yield f"- **Status:** {incident.status}\n"
    yield f"- **Opened:** {utc(incident.opened_at)}"
    yield f" by {incident.opened_by.get_username()}\n" if incident.opened_by else "\n"
    for label, moment in [
        ("Acknowledged", incident.acknowledged_at),
        ("Mitigated", incident.mitigated_at),
        ("Resolved", ended),
    ]:
        if moment:
            yield f"- **{label}:** {utc(moment)}\n"
    yield (
        f"- **Duration:** {duration}" + ("" if ended else " so far (still open)") + "\n"
    )
    commander = incident.commander.get_username() if incident.commander else "nobody"
    yield f"- **Commander:** {commander}\n"
    yield f"- **People involved:** {', '.join(people) or 'nobody yet'}\n\n"

    yield "## Summary\n\n_What happened, in two or three sentences._\n\n"
    yield "## Impact\n\n"
    if impact:
        yield "From the playbook (check what applied this time):\n\n" + impact + "\n\n"
    yield "_Who was affected, how, and for how long._\n\n"

    yield "## Timeline (UTC)\n\n| Time (UTC) | Who | What |\n| --- | --- | --- |\n"
    for e in events(incident):
        if e.verb == "incident.exported":
            continue  # exports are audited, but they are not part of the story
        yield f"| {utc(e.created_at)} | {md(e.actor_name or 'system')} | {md(describe(e))} |\n"

    yield "\n## Steps\n\n"
    by_step: dict[int, list[StepExecution]] = {}
    for execution in executions:
        by_step.setdefault(execution.step_id, []).append(execution)
    for step in steps:
        state, latest = step_state(by_step.get(step.id, []))
        who = (
            latest.requested_by.get_username()
            if latest and latest.requested_by
            else "someone"
        )
        if state == "done":
            outcome = f"done by {who} at {utc(latest.created_at)}"
        elif state == "skipped":
            outcome = (
                f"skipped by {who} at {utc(latest.created_at)}: {md(latest.reason)}"
            )
        else:
            outcome = "not done"
        yield f"{step.number}. **{md(step.title)}** — {outcome}\n"
        for run in by_step.get(step.id, []):
            if not run.is_tick:
                yield _run_line(run)
    diagnosis_runs = [e for e in by_step.get(None, []) if not e.is_tick]
    if diagnosis_runs:
        yield "\nDiagnosis commands run:\n"
        for run in diagnosis_runs:
            yield _run_line(run)

    glass = [e for e in executions if e.break_glass]
    if glass:
        yield "\n## Break-glass actions\n\n"
        yield "Run without the second approval they normally need. Review each one.\n\n"
        for run in glass:
            who = run.requested_by.get_username() if run.requested_by else "someone"
            yield (
                f"- **BREAK-GLASS** {utc(run.created_at)} — {md(who)} ran "
                f"`{md(run.command_text.splitlines()[0])}` → {run.state}. "
                f"Reason: {md(run.reason)}\n"
            )

    yield "\n## Notes\n\n"
    notes = incident.events.filter(verb="note.added").order_by("seq")
    wrote = False
    for note in notes.iterator(chunk_size=CHUNK):
        step = note.data.get("step")
        where = f" (step {step})" if step else ""
        yield f"- {utc(note.created_at)} — {md(note.actor_name)}{where}: {md(note.data['text'])}\n"
        wrote = True
    if not wrote:
        yield "_No notes were taken._\n"

    yield "\n## Follow-ups\n\n- [ ] _Action item_ — owner, due date\n- [ ] \n\n"
    yield f"_Exported {utc(timezone.now())}._\n"
