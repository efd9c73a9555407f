"""Post-mortem and timeline exports, streamed so a 100,000-event incident costs no
more memory than a small one. Exporting is itself audited."""

from __future__ import annotations

import csv
import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db.models import Max, Min
from django.http import HttpRequest, StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone

from probes import redaction

from . import audit
from .actors import Actor
from .models import AuditEvent, Incident, Step, StepExecution, step_state
from .timeline import Style, describe

CONTENT_TYPES = {
    "postmortem.md": "text/markdown; charset=utf-8",
    "timeline.json": "application/json",
    "timeline.csv": "text/csv; charset=utf-8",
}
CHUNK = 2000
log = logging.getLogger(__name__)

# Sections other apps add to the post-mortem (a drill's scorecard: incidents cannot
# import drills, the layering points the other way). Each is a function
# (incident) -> Markdown, "" to add nothing; filled in by their AppConfig.ready().
POSTMORTEM_SECTIONS: list[Callable[[Incident], str]] = []


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


def actor_kind(e: AuditEvent) -> str:
    """ "person" (an account, even one deleted since), "system" (a named identity:
    alert-intake, diagnosis, the worker, the sweeper...) or "anonymous" (someone
    not signed in). The audit row keeps no flag: a system identity has no account,
    and only a system identity acts without one under a name."""
    if e.actor_id is not None:
        return "person"
    return "system" if e.actor_name else "anonymous"


def _event_record(e: AuditEvent, drill: bool = False) -> dict:
    return {
        "seq": e.seq,
        "time": iso(e.created_at),
        "actor": e.actor_name or "someone not signed in",
        "actor_kind": actor_kind(e),
        "verb": e.verb,
        "text": describe(e),
        "step": (e.data or {}).get("step"),
        "data": e.data,
        # On every event too: a line cut out of the export still says drill.
        "drill": drill,
    }


def _opening(incident: Incident) -> dict:
    """The incident's opening event: who opened it and, for an alert, its origin."""
    return (
        incident.events.filter(verb="incident.opened")
        .values("actor_name", "actor_id", "data")
        .first()
    ) or {"actor_name": "", "actor_id": None, "data": {}}


def incident_alert(incident: Incident, opening: dict | None = None) -> dict | None:
    """The alert the incident was opened for, as its own timeline recorded it (the
    opening event's origin and the alert's first `alert.firing`): incidents never
    import alerts (alerts import incidents). None when it was opened by hand."""
    opening = opening if opening is not None else _opening(incident)
    origin = (opening["data"] or {}).get("origin") or {}
    if not origin.get("alert") and not origin.get("source"):
        return None
    firing = incident.events.filter(verb="alert.firing")
    if origin.get("fingerprint"):
        firing = firing.filter(data__fingerprint=origin["fingerprint"])
    starts_at = firing.order_by("seq").values_list("data__starts_at", flat=True)
    return {
        "name": str(origin.get("alert") or ""),
        "source": str(origin.get("source") or ""),
        "fingerprint": str(origin.get("fingerprint") or ""),
        "rule": str(origin.get("rule") or ""),
        "reason": str(origin.get("reason") or ""),
        "starts_at": starts_at.first(),
    }


def time_to(incident: Incident, moment: datetime | None) -> timedelta | None:
    """From opening to a stage (acknowledged, mitigated); None if not reached."""
    return moment - incident.opened_at if moment else None


def _seconds(delta: timedelta | None) -> int | None:
    return int(delta.total_seconds()) if delta is not None else None


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
        "alert": incident_alert(incident),
        "commander": incident.commander.get_username() if incident.commander else None,
        "opened_by": incident.opened_by.get_username() if incident.opened_by else None,
        "opened_at": iso(incident.opened_at),
        "acknowledged_at": iso(incident.acknowledged_at),
        "mitigated_at": iso(incident.mitigated_at),
        "resolved_at": iso(incident.resolved_at),
        "duration_seconds": int(incident.duration().total_seconds()),
        "time_to_acknowledge_seconds": _seconds(
            time_to(incident, incident.acknowledged_at)
        ),
        "time_to_mitigate_seconds": _seconds(time_to(incident, incident.mitigated_at)),
    }


def timeline_json(incident: Incident) -> Iterator[str]:
    head = json.dumps(
        {"drill": incident.drill, "incident": incident_record(incident)},
        ensure_ascii=False,
    )
    yield head[:-1] + ', "events": ['
    first = True
    for e in events(incident):
        yield ("" if first else ",\n") + json.dumps(
            _event_record(e, incident.drill), ensure_ascii=False
        )
        first = False
    yield "]}\n"


class _Line:
    """csv.writer needs a file; this one hands each row straight back."""

    def write(self, value: str) -> str:
        return value


# actor_kind and drill came last, after the first release: columns are only ever
# added at the end, so a spreadsheet that reads them by position keeps working.
CSV_COLUMNS = [
    "seq",
    "time_utc",
    "actor",
    "verb",
    "step",
    "description",
    "data",
    "actor_kind",
    "drill",
]


def timeline_csv(incident: Incident) -> Iterator[str]:
    writer = csv.writer(_Line())
    yield writer.writerow(CSV_COLUMNS)
    for e in events(incident):
        r = _event_record(e, incident.drill)
        row = [
            r["seq"],
            r["time"],
            r["actor"],
            r["verb"],
            r["step"] or "",
            r["text"],
            json.dumps(e.data, ensure_ascii=False),
            r["actor_kind"],
            "true" if r["drill"] else "false",
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


def short_duration(delta: timedelta) -> str:
    """`45s`, `4m 10s` under an hour (a time to acknowledge is often minutes), then
    as human_duration."""
    seconds = max(0, int(delta.total_seconds()))
    if seconds >= 3600:
        return human_duration(delta)
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes}m {seconds}s" if minutes else f"{seconds}s"


def execution_url(run: StepExecution) -> str:
    """The run on the console (signed in, with the right to view incidents): its
    state, summary and whole output."""
    path = reverse("incidents:execution_detail", args=[run.incident_id, run.pk])
    return settings.CONSOLE_BASE_URL.rstrip("/") + path


# An output excerpt: enough to see what it said; the link has the rest.
EXCERPT_LINES = 8
EXCERPT_CHARS = 500


def output_excerpt(output: str) -> tuple[str, bool]:
    """The first lines of a run's output (at most EXCERPT_LINES lines and
    EXCERPT_CHARS characters), and whether anything was left out."""
    lines = output.strip("\n").splitlines()
    head = "\n".join(lines[:EXCERPT_LINES])
    cut = len(lines) > EXCERPT_LINES or len(head) > EXCERPT_CHARS
    # Stored redacted; redacted again with today's secrets, before the cut (a
    # secret cut in two would not be recognised).
    return redaction.redact(head)[:EXCERPT_CHARS], cut


# --- who ------------------------------------------------------------------------------


def _named(name: str, kind: str) -> str:
    """A name for the Markdown: a system identity says that it is one."""
    if kind == "anonymous" or not name:
        return "someone not signed in"
    return f"{md(name)} (system)" if kind == "system" else md(name)


def _requester(run: StepExecution) -> str:
    if run.requested_by_id is None and run.requested_as:
        return _named(run.requested_as, "system")
    return md(run.requester_name)


@dataclass
class People:
    """Who took part, by what they did in this incident. Each person is named once,
    under the first of commander, approver, responder they were."""

    commanders: list[str]
    approvers: list[str]
    responders: list[str]
    systems: list[str]


# Exporting reads the incident; a refusal is an attempt that did nothing. Neither
# makes someone part of the response.
NOT_TAKING_PART = ("incident.exported", "permission.denied")


def people(incident: Incident) -> People:
    """Grouped in SQL (one row per actor, not per event), so a 100k-event incident
    costs no more than a small one."""
    actors = list(
        incident.events.exclude(verb__in=NOT_TAKING_PART)
        .values("actor_name")
        .annotate(first=Min("seq"), account=Max("actor_id"))
        .order_by("first")
        .values_list("actor_name", "account")
    )
    commanders: list[str] = []
    for change in incident.events.filter(verb="incident.commander_changed").order_by(
        "seq"
    ):
        for name in ((change.data or {}).get("from"), (change.data or {}).get("to")):
            if name and name not in commanders:
                commanders.append(str(name))
    current = incident.commander.get_username() if incident.commander else None
    if current and current not in commanders:
        commanders.append(current)
    deciders = set(
        incident.events.filter(
            verb__in=("execution.approved", "execution.rejected"),
            actor_id__isnull=False,
        ).values_list("actor_name", flat=True)
    )
    persons = [name for name, account in actors if name and account is not None]
    approvers = [n for n in persons if n in deciders and n not in commanders]
    return People(
        commanders=commanders,
        approvers=approvers,
        responders=[n for n in persons if n not in commanders and n not in deciders],
        systems=[name for name, account in actors if name and account is None],
    )


# --- the summary table ----------------------------------------------------------------


def _opened_by(incident: Incident, opening: dict) -> str:
    """` by rita` or ` by alert-intake (system)`."""
    if incident.opened_by:
        return f" by {md(incident.opened_by.get_username())}"
    if not opening["actor_name"]:
        return ""
    kind = "person" if opening["actor_id"] is not None else "system"
    return f" by {_named(opening['actor_name'], kind)}"


def _alert_cell(incident: Incident, alert: dict | None) -> str:
    if alert is None:
        return "none (opened by hand)"
    said = md(alert["name"] or "an alert") + f" from {md(alert['source'])}"
    if alert["starts_at"]:
        said += f", firing since {md(_when(alert['starts_at']))}"
    if alert["reason"]:
        said += f" ({md(alert['reason'])})"
    others = (
        incident.events.filter(verb="alert.firing")
        .exclude(data__fingerprint=alert["fingerprint"])
        .values("data__fingerprint")
        .distinct()
        .count()
    )
    if others:
        said += f"; and {others} other alert{'s' * (others != 1)} of its group"
    return said


def _when(value: str) -> str:
    try:
        return utc(datetime.fromisoformat(value))
    except (TypeError, ValueError):
        return str(value)


def _stage_cell(incident: Incident, moment: datetime | None, never: str) -> str:
    delta = time_to(incident, moment)
    return f"{short_duration(delta)} (at {utc(moment)})" if delta is not None else never


def _names(names: list[str], kind: str = "person", none: str = "nobody") -> str:
    return ", ".join(_named(name, kind) for name in names) or none


def summary_table(incident: Incident) -> Iterator[str]:
    playbook = incident.playbook
    opening = _opening(incident)
    ended = incident.ended_at()
    duration = human_duration(incident.duration())
    who = people(incident)
    commanders = [md(name) for name in who.commanders]
    if len(commanders) > 1:
        commanders = [f"{', then '.join(commanders)} (now)"]
    rows = [
        ("Alert", _alert_cell(incident, incident_alert(incident, opening))),
        ("Severity", md(incident.severity or "unspecified")),
        ("Status", md(incident.status)),
        ("Opened", f"{utc(incident.opened_at)}{_opened_by(incident, opening)}"),
        (
            "Time to acknowledge",
            _stage_cell(incident, incident.acknowledged_at, "not acknowledged"),
        ),
        (
            "Time to mitigate",
            _stage_cell(incident, incident.mitigated_at, "not mitigated"),
        ),
        ("Resolved", utc(ended) if ended else "not yet"),
        ("Duration", duration + ("" if ended else " so far (still open)")),
        ("Commander", commanders[0] if commanders else "nobody"),
        ("Approvers", _names(who.approvers)),
        ("Responders", _names(who.responders)),
        ("Systems", _names(who.systems, "system", none="none")),
    ]
    yield (
        f"| Incident | #{incident.pk}, opened from §{playbook.number} "
        f"{md(playbook.title)} (runbook revision {playbook.runbook.revision}) |\n"
        "| --- | --- |\n"
    )
    if incident.drill:
        yield (
            "| Drill | **DRILL**: a practice incident, not a real one; its "
            "notifications were recorded, never sent |\n"
        )
    for label, value in rows:
        yield f"| {label} | {value} |\n"


# --- runs -------------------------------------------------------------------------------


def _preview_seen(run: StepExecution) -> dict | None:
    """What the preview the requester confirmed said it would touch (its
    headline and facts: the backend, the table, the rows). A run from before
    nonces were recorded falls back to the latest preview of that command by
    that person before it."""
    confirmed = audit.confirmed_previews([run]).get(run.pk)
    if confirmed is not None:
        return confirmed
    return (
        AuditEvent.objects.filter(
            incident_id=run.incident_id,
            verb="execution.previewed",
            object_type="command",
            object_id=str(run.command_id),
            actor_id=run.requested_by_id,
            created_at__lte=run.created_at,
        )
        .order_by("-seq")
        .values_list("data", flat=True)
        .first()
    )


def _decision(run: StepExecution) -> str:
    if run.break_glass:
        return " **BREAK-GLASS**"
    if not run.approved_by_id:
        return ""
    word = "rejected" if run.state == StepExecution.State.REJECTED else "approved"
    at = f" at {utc(run.approved_at)}" if run.approved_at else ""
    return f" ({word} by {md(run.approved_by.get_username())}{at})"


NEVER_RAN = frozenset(
    {
        StepExecution.State.QUEUED,
        StepExecution.State.AWAITING_APPROVAL,
        StepExecution.State.REJECTED,
        StepExecution.State.DISPATCH_FAILED,
    }
)


def _never_ran(run: StepExecution) -> bool:
    cancelled = run.state == StepExecution.State.CANCELLED
    return run.state in NEVER_RAN or (cancelled and not run.started_at)


def _run_lines(run: StepExecution) -> Iterator[str]:
    """`   - ran `redis-cli ping` with `pid=42` by rita at … → succeeded: PONG`; a
    multi-line command shown whole below it; for an action, what its preview said;
    then the first lines of its output and a link to all of it."""
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
    # A run that never started (rejected, waiting, never sent, expired before it
    # ran) was only asked for.
    verb = "asked to run" if _never_ran(run) else "ran"
    yield (
        f"   - {verb} {command}{used} by {_requester(run)}{_decision(run)} "
        f"at {utc(_ran_at(run))} → {result}\n"
    )
    if len(lines) > 1:
        yield md_block(text, " " * 5)
    if run.command_id and run.command.kind == run.command.Kind.ACTION:
        seen = _preview_seen(run) or {}
        headline = seen.get("headline")
        yield f"     - Preview: {md(headline) if headline else 'none recorded'}\n"
        for fact in seen.get("facts", [])[:5]:
            yield f"       - {md(str(fact))}\n"
    if run.output.strip():
        excerpt, cut = output_excerpt(run.output)
        first = ", first lines" if cut else ""
        yield f"     - Output{first} (full output: <{execution_url(run)}>):\n"
        yield md_block(excerpt, " " * 7)


# --- the document -----------------------------------------------------------------------


def postmortem(incident: Incident) -> Iterator[str]:
    playbook = incident.playbook
    executions = sorted(
        incident.executions.select_related("requested_by", "approved_by", "command"),
        key=lambda run: (_ran_at(run), run.pk),
    )
    impact = next(
        (s["markdown"] for s in playbook.context if "impact" in s["title"].lower()), ""
    )

    mark = "[DRILL] " if incident.drill else ""
    yield f"# {mark}Post-mortem: {md(incident.title)}\n\n"
    yield from summary_table(incident)

    yield "\n## Summary\n\n_What happened, in two or three sentences._\n\n"
    yield "## Impact\n\n"
    if impact:
        yield "From the playbook (check what applied this time):\n\n" + impact + "\n\n"
    yield "_Who was affected, how, and for how long._\n\n"

    yield "## Timeline (UTC)\n\n| Time (UTC) | Who | What |\n| --- | --- | --- |\n"
    shown = {str(run.pk): _shown_command(run) for run in executions}
    yield from _timeline_rows(incident, shown)

    yield "\n## Steps\n\n"
    yield from _steps(playbook.steps.all(), executions)
    yield from _break_glass([run for run in executions if run.break_glass])
    yield from _notes(incident)
    yield from _sections(incident)

    yield "\n## Follow-ups\n\n- [ ] _Action item_ — owner, due date\n- [ ] \n\n"
    yield f"_Exported {utc(timezone.now())}._\n"


def _sections(incident: Incident) -> Iterator[str]:
    """The other apps' sections. One that fails is named in the file and logged:
    the download is already under way, and the rest of it is still worth having."""
    for section in POSTMORTEM_SECTIONS:
        try:
            text = section(incident)
        except Exception:  # noqa: BLE001 - another app's bug must not cut the file
            log.exception("post-mortem section %s failed", section.__qualname__)
            text = (
                f"\n_(The section {md(section.__qualname__)} could not be written.)_\n"
            )
        if text:
            yield "\n" + text.strip("\n") + "\n"


def _steps(steps: Iterable[Step], executions: list[StepExecution]) -> Iterator[str]:
    by_step: dict[int | None, list[StepExecution]] = {}
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
            outcome = f"done by {md(who)} at {utc(latest.created_at)}"
        elif state == StepExecution.State.SKIPPED:
            outcome = (
                f"skipped by {md(who)} at {utc(latest.created_at)}: {md(latest.reason)}"
            )
        else:
            outcome = "not done"
        yield f"{step.number}. **{md(step.title)}** — {outcome}\n"
        for run in by_step.get(step.id, []):
            if not run.is_tick:
                yield from _run_lines(run)
    diagnosis_runs = [e for e in by_step.get(None, []) if not e.is_tick]
    if diagnosis_runs:
        yield "\nDiagnosis commands run:\n\n"
        for run in diagnosis_runs:
            yield from _run_lines(run)


def _break_glass(glass: list[StepExecution]) -> Iterator[str]:
    if not glass:
        return
    yield "\n## Break-glass actions\n\n"
    yield "Run without the second approval they normally need. Review each one.\n\n"
    for run in glass:
        text = _shown_command(run)
        shown = md_code(text) if len(text.splitlines()) <= 1 else "the command below"
        yield (
            f"- **BREAK-GLASS** {utc(_ran_at(run))} — {_requester(run)} ran "
            f"{shown} → {run.state}. Reason: {md(run.reason)}\n"
        )
        if len(text.splitlines()) > 1:
            yield md_block(text, "  ")


def _notes(incident: Incident) -> Iterator[str]:
    yield "\n## Notes\n\n"
    notes = incident.events.filter(verb="note.added").order_by("seq")
    wrote = False
    for note in notes.iterator(chunk_size=CHUNK):
        step = note.data.get("step")
        where = f" (step {step})" if step else ""
        yield (
            f"- {utc(note.created_at)} — {_named(note.actor_name, actor_kind(note))}"
            f"{where}: {md(note.data['text'])}\n"
        )
        wrote = True
    if not wrote:
        yield "_No notes were taken._\n"


# --- the timeline, without the noise ----------------------------------------------------

# What moves the story is what people do. What systems write (alerts' updates,
# notifications and their retries, the sweeper's resends, results) and a few things
# people repeat without changing anything (a preview checking the blast radius
# again, a refused page that polls) may repeat: repeats are one row with a count.
REPEATABLE_VERBS = frozenset(
    {"execution.previewed", "execution.resent", "permission.denied"}
)
# Counters that grow with each repeat (flap 1, 2, 3; all 1, 2, 3 alerts ended):
# their row says the latest.
LATEST_SAYS = frozenset({"alert.flapped", "alert.source_resolved", "alert.more"})
# Distinct rows held back at most (memory stays flat whatever the history).
HELD_MAX = 50


@dataclass
class _Row:
    who: str
    what: str
    first: datetime
    last: datetime
    times: int = 1

    def __str__(self) -> str:
        what = self.what
        if self.times > 1:
            what += f" ({self.times} times, the last at {utc(self.last)})"
        return f"| {utc(self.first)} | {self.who} | {what} |\n"


def _repeatable(e: AuditEvent) -> bool:
    return actor_kind(e) != "person" or e.verb in REPEATABLE_VERBS


def _repeat_key(e: AuditEvent, who: str, what: str) -> tuple:
    """What makes two events the same: the same sentence; for an alert's firing or
    resolving, the same alert (a flap fires it again at a new time); for a
    growing counter, the same verb."""
    d = e.data or {}
    if e.verb in {"alert.firing", "alert.resolved"} and d.get("fingerprint"):
        return (who, e.verb, d.get("alert"), d["fingerprint"])
    if e.verb in LATEST_SAYS:
        return (who, e.verb)
    return (who, what)


def _as_told(e: AuditEvent, shown: dict[str, str]) -> AuditEvent:
    """A run's events name its command as the runbook wrote it (the text stored
    by an older console carries hosts rewritten by TARGET_HOSTS)."""
    if e.object_type == "stepexecution" and e.object_id in shown and e.data:
        e.data = {**e.data, "command": shown[e.object_id]}
    return e


def _timeline_rows(incident: Incident, shown: dict[str, str]) -> Iterator[str]:
    """The timeline table's rows. Repeatable events are held back until the next
    thing a person does, so each repeat joins its first occurrence's row; rows
    stay in the order things first happened."""
    held: dict[tuple, _Row] = {}
    for e in events(incident):
        if e.verb == "incident.exported":
            continue  # exports are audited, but they are not part of the story
        who = _named(e.actor_name, actor_kind(e))
        what = describe(_as_told(e, shown), MARKDOWN_CELL)
        if not _repeatable(e):
            yield from map(str, held.values())
            held.clear()
            yield str(_Row(who, what, e.created_at, e.created_at))
            continue
        key = _repeat_key(e, who, what)
        row = held.get(key)
        if row is not None:
            row.last, row.times = e.created_at, row.times + 1
            if e.verb in LATEST_SAYS:
                row.what = what
            continue
        if len(held) >= HELD_MAX:
            yield str(held.pop(next(iter(held))))  # the oldest: order is kept
        held[key] = _Row(who, what, e.created_at, e.created_at)
    yield from map(str, held.values())
