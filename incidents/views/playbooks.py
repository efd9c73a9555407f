"""The playbook library, its search and the targets each playbook needs."""

from __future__ import annotations

import uuid

from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from probes import targets
from probes.families import family

from .. import access
from ..access import permission_required
from ..models import Command, Incident, Playbook, Step
from ..presenters import present_playbook
from ..services import sites

MAX_SEARCH = 200


@permission_required(access.VIEW_PLAYBOOKS)
@require_GET
@vary_on_headers("HX-Request")
def playbook_list(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()
    # Titles and alert names are short: a longer search is a mistake (or a probe).
    search_error = (
        f"Search for at most {MAX_SEARCH} characters."
        if len(query) > MAX_SEARCH
        # The database cannot compare a NUL (the search reaches commands' text).
        else "The search holds a NUL character; type it again."
        if "\x00" in query
        else ""
    )
    if search_error:
        query = ""
    playbooks = (
        Playbook.objects.current()
        .select_related("runbook")
        .annotate(
            step_count=Count("steps", distinct=True),
            probe_count=Count(
                "commands", filter=Q(commands__kind=Command.Kind.PROBE), distinct=True
            ),
            action_count=Count(
                "commands", filter=Q(commands__kind=Command.Kind.ACTION), distinct=True
            ),
            manual_count=Count(
                "commands", filter=Q(commands__kind=Command.Kind.MANUAL), distinct=True
            ),
        )
    )
    everything = list(playbooks)
    shown = search(everything, query)
    runbooks = {p.runbook_id: p.runbook for p in everything}.values()
    template = "incidents/playbook_list.html"
    if request.htmx:
        template += "#results"
    context = {
        "playbooks": [] if search_error else shown,
        "query": query,
        "search_error": search_error,
        "total": len(everything),
        "runbooks": runbooks,
        # Numbers restart in each runbook: with several, each gets a heading row.
        "several_runbooks": len(runbooks) > 1,
        "can_open": access.can(request.user, access.OPEN_INCIDENTS),
    }
    return render(request, template, context, status=400 if search_error else 200)


def search(playbooks: list[Playbook], query: str) -> list[Playbook]:
    """What a person types, found: titles, slugs, numbers and alert names first;
    then the text a responder remembers (a command such as `terminate`, a step, a
    symptom such as `502`), each saying where it was found (`found_in`)."""
    named = [p for p in playbooks if p.matches(query)]
    if not query:
        return named
    ids = [p.pk for p in playbooks if p not in named]
    in_commands = dict(
        Command.objects.filter(playbook_id__in=ids, text__icontains=query)
        .order_by("playbook_id", "-position")
        .values_list("playbook_id", "step__number")
    )
    in_steps = dict(
        Step.objects.filter(playbook_id__in=ids)
        .filter(Q(title__icontains=query) | Q(body__icontains=query))
        .order_by("playbook_id", "-number")
        .values_list("playbook_id", "number")
    )
    found = []
    for playbook in playbooks:
        if playbook in named:
            continue
        where = playbook.found_in_text(query)
        if not where and playbook.pk in in_commands:
            number = in_commands[playbook.pk]
            where = f"a command of step {number}" if number else "Diagnosis"
        if not where and playbook.pk in in_steps:
            where = f"step {in_steps[playbook.pk]}"
        if where:
            playbook.found_in = where
            found.append(playbook)
    return named + found


@permission_required(access.VIEW_PLAYBOOKS)
@require_GET
def playbook_detail(request: HttpRequest, slug: str) -> HttpResponse:
    playbook = get_object_or_404(
        Playbook.objects.current().select_related("runbook"), slug=slug
    )
    open_now = []
    if access.can(request.user, access.VIEW_INCIDENTS):
        # Before someone opens a second incident for the same trouble.
        open_now = list(
            Incident.objects.filter(playbook__slug=playbook.slug)
            .exclude(status=Incident.Status.RESOLVED)
            .select_related("commander")
            .order_by("-opened_at")[:5]
        )
    context = {
        "view": present_playbook(playbook),
        "open_now": open_now,
        "can_open": access.can(request.user, access.OPEN_INCIDENTS),
        # The one-click Open's key: a double click opens one incident.
        "request_key": uuid.uuid4().hex,
    }
    return render(request, "incidents/playbook_detail.html", context)


@permission_required(access.VIEW_PLAYBOOKS)
@require_GET
def target_status(request: HttpRequest) -> HttpResponse:
    """Which TARGET_* variables and hosts each playbook needs, and whether each is
    set on this console (values are never shown)."""
    hosts_mapped = targets.host_map()
    simulated = targets.simulated()
    hosts_simulated = "TARGET_HOSTS" in simulated
    rows = []
    for playbook in (
        Playbook.objects.current().prefetch_related("commands").order_by("number")
    ):
        needed: dict[str, tuple[bool, bool]] = {}
        hosts: dict[str, tuple[bool, bool]] = {}
        for command in playbook.commands.all():
            if not command.is_runnable:
                continue
            # What the family needs (the SQL target, a migrations checkout...).
            for name in command.variables + family(command.executor).targets(command):
                if name:
                    variable = targets.PREFIX + name
                    needed[variable] = (
                        targets.value(name) is not None,
                        variable in simulated,
                    )
            if command.executor == "http" and command.spec.get("host"):
                mapped = command.spec["host"].lower() in hosts_mapped
                hosts[command.spec["host"]] = (mapped, mapped and hosts_simulated)
        rows.append((playbook, sorted(needed.items()), sorted(hosts.items())))
    site_rows, sites_problem = sites.overview()
    return render(
        request,
        "incidents/targets.html",
        {
            "rows": rows,
            "simulated": simulated,
            "site_rows": site_rows,
            "sites_problem": sites_problem,
        },
    )
