"""/drills/: the scenarios (grouped by playbook) with their last results and a Start
button for those who may; a drill's page with its scorecard; "simulate" on a drill
incident's manual commands. Thin: each view checks the permission on the server and
calls one service."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from incidents import access
from incidents.access import permission_required
from incidents.actors import Actor
from incidents.models import Command
from incidents.views.common import after_change, load_incident

from . import scenarios, scorecards, services
from .models import Drill


def _scenario_rows(request: HttpRequest) -> tuple[list[dict], list]:
    """Each scenario with its playbook, its last drills and whether (or why not)
    this person may start it; grouped by playbook number."""
    loaded = scenarios.load_all()
    problems = list(loaded.problems)
    sandbox_off = services.sandbox_refusal()
    cannot = services.start_refusal(request.user)
    drills_of: dict[str, list[Drill]] = {}
    for drill in Drill.objects.filter(scenario__in=list(loaded.scenarios)).order_by(
        "-started_at"
    ):
        drills_of.setdefault(drill.scenario, []).append(drill)
    rows = []
    for scenario in loaded.scenarios.values():
        try:
            resolved = scenarios.resolve(scenario)
        except scenarios.ScenarioError as exc:
            problems.append(exc)
            continue
        past = drills_of.get(scenario.slug, [])
        running = next((d for d in past if d.is_running), None)
        healed = [
            d for d in past if d.healed_at is not None and d.state == Drill.State.HEALED
        ]
        best = min(healed, key=lambda d: d.healed_at - d.started_at, default=None)
        rows.append(
            {
                "scenario": scenario,
                "playbook": resolved.playbook,
                "last": past[0] if past else None,
                "running": running,
                "count": len(past),
                "best": best,
                "best_time": scorecards.duration(
                    int((best.healed_at - best.started_at).total_seconds())
                )
                if best
                else "",
                "why_not": sandbox_off
                or cannot
                or (f"drill #{running.pk} is running" if running else ""),
            }
        )
    rows.sort(key=lambda r: (r["playbook"].number, r["scenario"].title))
    groups: list[dict] = []
    for row in rows:
        if not groups or groups[-1]["playbook"].pk != row["playbook"].pk:
            groups.append({"playbook": row["playbook"], "rows": []})
        groups[-1]["rows"].append(row)
    return groups, problems


@permission_required(access.VIEW_INCIDENTS)
@require_GET
def scenario_list(request: HttpRequest) -> HttpResponse:
    return _list(request)


def _list(request: HttpRequest, *, error: str = "", status: int = 200) -> HttpResponse:
    groups, problems = _scenario_rows(request)
    context = {
        "groups": groups,
        "problems": problems,
        "sandbox_off": services.sandbox_refusal(),
        "cannot_start": services.start_refusal(request.user),
        "error": error,
        "recent": Drill.objects.select_related("incident", "started_by")[:10],
    }
    return render(request, "drills/scenario_list.html", context, status=status)


@permission_required(access.OPEN_INCIDENTS)
@require_POST
def drill_start(request: HttpRequest, slug: str) -> HttpResponse:
    access.require(request, access.COMMAND_INCIDENTS)
    try:
        drill = services.start_drill(scenario=slug, actor=Actor.from_request(request))
    except services.DrillRefused as exc:
        return _list(request, error=str(exc), status=exc.status)
    messages.info(
        request,
        f"Drill started: {drill.title}. "
        + (
            "The alert opened its incident."
            if drill.incident_id
            else "The alert opened no incident: see the triage list on Alerts."
        ),
    )
    return HttpResponseRedirect(drill.get_absolute_url())


@permission_required(access.VIEW_INCIDENTS)
@require_GET
def drill_detail(request: HttpRequest, pk: int) -> HttpResponse:
    drill = get_object_or_404(
        Drill.objects.select_related("incident__playbook", "started_by"), pk=pk
    )
    card = scorecards.current(drill)
    earlier = (
        Drill.objects.of_scenario(drill.scenario)
        .exclude(pk=drill.pk)
        .select_related("started_by", "incident")[:20]
    )
    times = [
        {
            "label": scorecards.LABELS[key],
            "mine": scorecards.duration(card.get("times", {}).get(key)),
            "previous": scorecards.duration(
                card.get("compare", {}).get("previous", {}).get("times", {}).get(key)
            ),
            "best": scorecards.duration(
                card.get("compare", {}).get("best", {}).get("times", {}).get(key)
            ),
        }
        for key in scorecards.TIMES
    ]
    context = {
        "drill": drill,
        "card": card,
        "times": times,
        "earlier": [
            {
                "drill": d,
                "mitigation": scorecards.duration(
                    (d.scorecard or {}).get("times", {}).get("mitigation")
                ),
            }
            for d in earlier
        ],
        "checks": (drill.last_check or {}).get("checks", []),
        "can_check": access.can(request.user, access.RUN_PROBES),
        "can_abandon": access.can(request.user, access.COMMAND_INCIDENTS),
        "sandbox_off": services.sandbox_refusal(),
    }
    return render(request, "drills/drill_detail.html", context)


@permission_required(access.RUN_PROBES)
@require_POST
def drill_check(request: HttpRequest, pk: int) -> HttpResponse:
    """Run the drill's health probes now (read-only), instead of waiting."""
    drill = get_object_or_404(Drill, pk=pk)
    if services.sandbox_refusal():
        messages.error(request, services.sandbox_refusal())
    elif drill.is_running:
        result = services.check_health(drill)
        messages.info(
            request,
            "Healthy: the drill is healed."
            if result.healthy
            else "Not healthy yet: see what each probe still shows.",
        )
    return HttpResponseRedirect(drill.get_absolute_url())


@permission_required(access.COMMAND_INCIDENTS)
@require_POST
def drill_abandon(request: HttpRequest, pk: int) -> HttpResponse:
    drill = get_object_or_404(Drill, pk=pk)
    try:
        services.abandon_drill(drill=drill, actor=Actor.from_request(request))
        messages.info(request, "Drill abandoned; its faults were healed.")
    except services.DrillRefused as exc:
        messages.error(request, str(exc))
    return HttpResponseRedirect(drill.get_absolute_url())


@permission_required(access.VIEW_INCIDENTS)
@require_POST
def command_simulate(request: HttpRequest, pk: int, command_id: int) -> HttpResponse:
    """A manual command of a drill incident's checklist, simulated."""
    incident = load_incident(pk)
    command = get_object_or_404(
        Command.objects.select_related("step"),
        pk=command_id,
        playbook_id=incident.playbook_id,
    )
    step = command.step.number if command.step_id else None
    drill = Drill.objects.filter(incident=incident).first()
    if drill is None:
        return after_change(
            request,
            incident,
            step=step,
            error="This incident is not a drill: nothing here is simulated.",
            status=400,
        )
    if not services.may_simulate(request.user, incident):
        access.deny(
            request,
            access.RUN_ACTIONS,
            incident,
            why="simulating a step changes the stack as the command would",
        )
    try:
        done = services.simulate(
            drill=drill, command=command, actor=Actor.from_request(request)
        )
    except services.DrillRefused as exc:
        return after_change(
            request, incident, step=step, error=str(exc), status=exc.status
        )
    return after_change(request, incident, step=step, notice=f"Simulated: {done.did}.")


@permission_required(access.VIEW_INCIDENTS)
@require_GET
def drill_of_incident(request: HttpRequest, pk: int) -> HttpResponse:
    """/drills/incident/<pk>: the drill page of an incident (a link from its page)."""
    drill = get_object_or_404(Drill, incident_id=pk)
    return HttpResponseRedirect(reverse("drills:drill_detail", args=[drill.pk]))
