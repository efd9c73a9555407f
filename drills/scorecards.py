"""A drill's scorecard: how long the team took to acknowledge, to the first probe,
to mitigation (the health probes passed) and to resolution; each step of the
playbook done or skipped, by whom and when, with what was run and simulated; and
the same times for earlier drills of the scenario (the previous one, the best).

Read from the incident's own rows (executions, the audit log): nothing is
recorded twice. Times are seconds from the incident's opening."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from incidents.exports import md
from incidents.models import AuditEvent, Command, StepExecution, step_state

from .models import Drill

TIMES = ("acknowledge", "first_probe", "mitigation", "resolution")
LABELS = {
    "acknowledge": "to acknowledge",
    "first_probe": "to the first probe",
    "mitigation": "to mitigation (healthy)",
    "resolution": "to resolution",
}


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _since(start: datetime, moment: datetime | None) -> int | None:
    if moment is None:
        return None
    return max(0, int((moment - start).total_seconds()))


def _who(run: StepExecution) -> str:
    if run.requested_by is not None:
        return run.requested_by.get_username()
    return run.requested_as or "someone"


def scorecard(drill: Drill) -> dict[str, Any]:
    incident = drill.incident
    if incident is None:
        return {"times": {}, "steps": [], "note": "The alert opened no incident."}
    start = incident.opened_at
    runs = list(
        incident.executions.select_related("requested_by", "command", "step").order_by(
            "created_at", "pk"
        )
    )
    first_probe = next(
        (
            r
            for r in runs
            if r.requested_by_id is not None
            and r.command is not None
            and r.command.kind == Command.Kind.PROBE
            and r.state not in StepExecution.TICKS
        ),
        None,
    )
    simulated = list(
        AuditEvent.objects.filter(incident=incident, verb="drill.simulated").order_by(
            "seq"
        )
    )
    times = {
        "acknowledge": _since(start, incident.acknowledged_at),
        "first_probe": _since(start, first_probe.created_at if first_probe else None),
        "mitigation": _since(start, drill.healed_at),
        "resolution": _since(start, incident.resolved_at),
    }
    by_step: dict[int | None, list[StepExecution]] = {}
    for run in runs:
        by_step.setdefault(run.step_id, []).append(run)
    steps = []
    for step in incident.playbook.steps.all().order_by("number"):
        state, latest = step_state(by_step.get(step.pk, []))
        steps.append(
            {
                "number": step.number,
                "title": step.title,
                "state": state,
                "by": _who(latest) if latest else None,
                "at": _iso(latest.created_at) if latest else None,
                "reason": latest.reason if latest and state == "skipped" else "",
                "runs": [
                    {
                        "command": r.command_text[:200],
                        "state": r.state,
                        "by": _who(r),
                        "at": _iso(r.created_at),
                    }
                    for r in by_step.get(step.pk, [])
                    if r.state not in StepExecution.TICKS
                ],
                "simulated": [
                    {
                        "command": e.data.get("command", "")[:200],
                        "by": e.actor_name,
                        "at": _iso(e.created_at),
                        "did": e.data.get("did", ""),
                    }
                    for e in simulated
                    if e.data.get("step") == step.number
                ],
            }
        )
    return {
        "opened_at": _iso(start),
        "times": times,
        "first_probe": {
            "command": first_probe.command_text[:200],
            "by": _who(first_probe),
            "at": _iso(first_probe.created_at),
        }
        if first_probe
        else None,
        "steps": steps,
        "diagnosis": [
            {"command": r.command_text[:200], "state": r.state, "by": _who(r)}
            for r in by_step.get(None, [])
            if r.state not in StepExecution.TICKS
        ],
        "people": sorted(
            {_who(r) for r in runs if r.requested_by_id is not None}
            | {e.actor_name for e in simulated}
        ),
        "compare": comparison(drill, times),
    }


def comparison(drill: Drill, times: dict[str, int | None]) -> dict[str, Any]:
    """The previous healed drill of the same scenario and the best (the fastest to
    mitigation), with each time's difference from this one (negative: faster)."""
    earlier = [
        d
        for d in Drill.objects.of_scenario(drill.scenario)
        .filter(state=Drill.State.HEALED, started_at__lt=drill.started_at)
        .exclude(pk=drill.pk)
        .order_by("-started_at")
        if (d.scorecard or {}).get("times", {}).get("mitigation") is not None
    ]
    if not earlier:
        return {"count": 0}

    def summary(other: Drill) -> dict[str, Any]:
        theirs = other.scorecard["times"]
        return {
            "drill": other.pk,
            "started_at": _iso(other.started_at),
            "started_by": other.started_by.get_username() if other.started_by else None,
            "times": theirs,
            "difference": {
                k: times[k] - theirs[k]
                for k in TIMES
                if times.get(k) is not None and theirs.get(k) is not None
            },
        }

    best = min(earlier, key=lambda d: d.scorecard["times"]["mitigation"])
    return {
        "count": len(earlier),
        "previous": summary(earlier[0]),
        "best": summary(best),
    }


def current(drill: Drill) -> dict[str, Any]:
    """The scorecard to show: the kept one once the drill has ended, else live."""
    if drill.ended_at is not None and drill.scorecard:
        return drill.scorecard
    return scorecard(drill)


def duration(seconds: int | None) -> str:
    """12 s, 4 min 05 s, 1 h 02 min."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds} s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def markdown(drill: Drill) -> str:
    """The scorecard as a post-mortem section."""
    card = current(drill)
    lines = [
        "\n## Drill scorecard\n",
        f"\nScenario **{md(drill.title)}** (`{drill.scenario}`), drill #{drill.pk}, "
        f"{drill.get_state_display().lower()}.\n",
        "\n| Time | This drill | Previous | Best |\n| --- | --- | --- | --- |\n",
    ]
    compare = card.get("compare", {})
    for key in TIMES:
        mine = duration(card.get("times", {}).get(key))
        prev = compare.get("previous", {}).get("times", {}).get(key)
        best = compare.get("best", {}).get("times", {}).get(key)
        lines.append(
            f"| {LABELS[key]} | {mine} | {duration(prev)} | {duration(best)} |\n"
        )
    lines.append("\n")
    for step in card.get("steps", []):
        who = f" by {md(step['by'])} at {step['at'][11:19]} UTC" if step["by"] else ""
        reason = f": {md(step['reason'])}" if step.get("reason") else ""
        lines.append(
            f"- Step {step['number']} {md(step['title'])}: {step['state']}{who}"
            f"{reason}\n"
        )
        for sim in step.get("simulated", []):
            lines.append(
                f"  - simulated by {md(sim['by'])} at {sim['at'][11:19]} UTC: "
                f"{md(sim['did'])}\n"
            )
    return "".join(lines)
