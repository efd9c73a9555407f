"""Post-mortem and timeline exports, streamed so a 100,000-event incident costs no
more memory than a small one. Exporting is itself audited."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from django.db.models import Min
from django.http import HttpRequest, StreamingHttpResponse
from django.utils import timezone

from probes import redaction

from . import audit
from .actors import Actor
from .models import AuditEvent, Incident, StepExecution, step_state
from .timeline import Style, describe

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
        actor=Actor.from_request(request),
        incident=incident,
        data={"format": name},
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
        row = [
            r["seq"],
            r["time"],
            r["actor"],
            r["verb"],
            r["step"] or "",
            r["text"],
            json.dumps(e.data, ensure_ascii=False),
        ]
        # Every cell: an actor's name, a webhook source or a note can start one.
        yield writer.writerow([_cell(str(value)) for value in row])


# What makes a spreadsheet treat a cell as a formula (OWASP's CSV injection list).
FORMULA_STARTS = frozenset("=+-@\t\r")


def _cell(text: str) -> str:
    """Spreadsheets run cells that start with = + - @ (or a tab or carriage return
    before one) as formulas: a leading quote makes them text."""
    return "'" + text if text[:1] in FORMULA_STARTS else text


# --- Markdown -----------------------------------------------------------------------
# The post-mortem is read in Markdown viewers, many of which pass raw HTML through.
# Everything that comes from a person or a target (titles, notes, reasons, names,
# paths, summaries, command text) is escaped: no HTML tags, no link or image syntax
# (so no javascript: or data: links), no code spans or table cells it could close.
# Bare http(s) URLs stay links, written as autolinks.

URL = re.compile(r"https?://[^\s<>\[\]()|`\"'\\]+", re.IGNORECASE)
ESCAPES = str.maketrans({c: "\\" + c for c in "\\`[]|*_~"} | {"<": "&lt;", ">": "&gt;"})
ENTITY = re.compile(r"&(?=#?[0-9A-Za-z]+;)")


def _escape(text: str) -> str:
    return ENTITY.sub("&amp;", text).translate(ESCAPES)


def md(text: object) -> str:
    """User text for one table cell or list item: one line, escaped, http(s) URLs
    kept as links and nothing else a link."""
    flat = " ".join(str(text).split())
    out, pos = [], 0
    for match in URL.finditer(flat):
        out += [_escape(flat[pos : match.start()]), f"<{match.group(0)}>"]
        pos = match.end()
    out.append(_escape(flat[pos:]))
    return "".join(out)


def _fence_for(text: str) -> str:
    """Backticks longer than any run inside the text, so the text cannot close it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * (longest + 1)


def md_code(text: object, *, in_table: bool = False) -> str:
    """A code span (shown as written, nothing inside is Markdown or HTML)."""
    flat = " ".join(str(text).split())
    if in_table:
        flat = flat.replace("|", "\\|")  # GFM: a pipe ends the cell, even in code
    fence = _fence_for(flat)
    pad = " " if flat.startswith("`") or flat.endswith("`") else ""
    return f"{fence}{pad}{flat}{pad}{fence}"


def md_block(text: str, indent: str) -> str:
    """A fenced code block, every line indented so it stays in its list item."""
    fence = _fence_for(text)
    fence = fence if len(fence) >= 3 else "```"
    lines = [fence, *text.splitlines(), fence]
    return "".join(f"{indent}{line}\n" for line in lines)


MARKDOWN_CELL = Style(text=md, code=lambda value: md_code(value, in_table=True))


def _shown_command(run: StepExecution) -> str:
    """What the runbook says (`${NAME}` as the name, its own hosts), not the text as
    sent: the stored text of older runs carries hosts rewritten by TARGET_HOSTS."""
    text = run.command.text if run.command_id else run.command_text
    return redaction.redact(text or "")


def _ran_at(run: StepExecution) -> datetime:
    """When it ran (an approved run starts long after it was asked for)."""
    return run.started_at or run.created_at


def _opened_by(incident: Incident) -> str:
    """` by rita`, or ` by alert-intake, for the alert X from S (why routed)`."""
    if incident.opened_by:
        return f" by {md(incident.opened_by.get_username())}"
    opened = (
        incident.events.filter(verb="incident.opened")
        .values("actor_name", "data")
        .first()
    )
    if not opened or not opened["actor_name"]:
        return ""
    said = f" by {md(opened['actor_name'])}"
    origin = (opened["data"] or {}).get("origin") or {}
    if origin.get("alert"):
        said += (
            f", for the alert {md(str(origin['alert']))} from "
            f"{md(str(origin.get('source', '')))} ({md(str(origin.get('reason', '')))})"
        )
    return said


def _run_line(run: StepExecution) -> str:
    """`   - ran `redis-cli ping` with `pid=42` by rita at … → succeeded: PONG`,
    with a multi-line command shown whole in a block below."""
    who = md(run.requester_name)
    text = _shown_command(run)
    lines = text.splitlines()
    command = md_code(lines[0]) if len(lines) == 1 else "the command below"
    if not lines:
        command = "a command"
    used = ", ".join(
        f"{name}={redaction.redact(str(value))}"
        for name, value in sorted((run.parameters or {}).items())
    )
    used = f" with {md_code(used)}" if used else ""
    result = f"{run.state}" + (f": {md(run.summary)}" if run.summary else "")
    extra = ""
    if run.break_glass:
        extra = " **BREAK-GLASS**"
    elif run.approved_by_id:
        extra = f" (approved by {md(run.approved_by.get_username())})"
    line = (
        f"   - ran {command}{used} by {who}{extra} at {utc(_ran_at(run))} → {result}\n"
    )
    return line + (md_block(text, " " * 5) if len(lines) > 1 else "")


def postmortem(incident: Incident) -> Iterator[str]:
    playbook = incident.playbook
    steps = list(playbook.steps.all())
    executions = sorted(
        incident.executions.select_related("requested_by", "approved_by", "command"),
        key=lambda run: (_ran_at(run), run.pk),
    )
    # Everyone who did anything, in order of first appearance (grouped in SQL, so
    # a 100k-event incident does not pull 100k names into memory). People only:
    # the worker, the sweeper and alert sources act without an account; and
    # exporting (this very export included) is not taking part.
    people = list(
        incident.events.exclude(actor_name="")
        .exclude(verb="incident.exported")
        .filter(actor_id__isnull=False)
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
    yield f"- **Opened:** {utc(incident.opened_at)}{_opened_by(incident)}\n"
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
    commander = (
        md(incident.commander.get_username()) if incident.commander else "nobody"
    )
    yield f"- **Commander:** {commander}\n"
    yield f"- **People involved:** {', '.join(map(md, people)) or 'nobody yet'}\n\n"

    yield "## Summary\n\n_What happened, in two or three sentences._\n\n"
    yield "## Impact\n\n"
    if impact:
        yield "From the playbook (check what applied this time):\n\n" + impact + "\n\n"
    yield "_Who was affected, how, and for how long._\n\n"

    yield "## Timeline (UTC)\n\n| Time (UTC) | Who | What |\n| --- | --- | --- |\n"
    yield from _timeline_rows(incident)

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
        if state == StepExecution.State.DONE:
            outcome = f"done by {who} at {utc(latest.created_at)}"
        elif state == StepExecution.State.SKIPPED:
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
            who = run.requester_name
            text = _shown_command(run)
            shown = (
                md_code(text) if len(text.splitlines()) <= 1 else "the command below"
            )
            yield (
                f"- **BREAK-GLASS** {utc(_ran_at(run))} — {md(who)} ran "
                f"{shown} → {run.state}. Reason: {md(run.reason)}\n"
            )
            if len(text.splitlines()) > 1:
                yield md_block(text, "  ")

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


def _timeline_rows(incident: Incident) -> Iterator[str]:
    """The timeline table's rows. Consecutive identical previews (a person checking
    the blast radius again) are one row saying how many times, until when."""
    held: tuple[str, str, datetime, datetime, int] | None = None  # a preview row

    def row(who: str, what: str, first: datetime, last: datetime, times: int) -> str:
        if times > 1:
            what += f" ({times} times, the last at {utc(last)})"
        return f"| {utc(first)} | {who} | {what} |\n"

    for e in events(incident):
        if e.verb == "incident.exported":
            continue  # exports are audited, but they are not part of the story
        who, what = md(e.actor_name or "system"), describe(e, MARKDOWN_CELL)
        if held and e.verb == "execution.previewed" and (who, what) == held[:2]:
            held = (who, what, held[2], e.created_at, held[4] + 1)
            continue
        if held:
            yield row(*held)
            held = None
        if e.verb == "execution.previewed":
            held = (who, what, e.created_at, e.created_at, 1)
            continue
        yield row(who, what, e.created_at, e.created_at, 1)
    if held:
        yield row(*held)
