"""Pages: the playbook library. Every view requires login; the checks are here on
the server, never only in the templates."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from .models import Playbook
from .presenters import present_playbook


@require_GET
@login_required
@vary_on_headers("HX-Request")
def playbook_list(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()
    playbooks = (
        Playbook.objects.current()
        .select_related("runbook")
        .annotate(
            step_count=Count("steps", distinct=True),
            probe_count=Count(
                "commands", filter=Q(commands__kind="probe"), distinct=True
            ),
            action_count=Count(
                "commands", filter=Q(commands__kind="action"), distinct=True
            ),
            manual_count=Count(
                "commands", filter=Q(commands__kind="manual"), distinct=True
            ),
        )
    )
    everything = list(playbooks)
    shown = [p for p in everything if p.matches(query)]
    runbooks = {p.runbook_id: p.runbook for p in everything}.values()
    template = "incidents/playbook_list.html"
    if request.htmx:
        template += "#results"
    return render(
        request,
        template,
        {
            "playbooks": shown,
            "query": query,
            "total": len(everything),
            "runbooks": runbooks,
        },
    )


@require_GET
@login_required
def playbook_detail(request: HttpRequest, slug: str) -> HttpResponse:
    playbook = get_object_or_404(
        Playbook.objects.current().select_related("runbook"), slug=slug
    )
    return render(
        request, "incidents/playbook_detail.html", {"view": present_playbook(playbook)}
    )
