"""Who may do what with a playbook, and why."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from .. import access
from ..access import permission_required
from ..models import Playbook


@permission_required(access.VIEW_PLAYBOOKS)
@require_GET
def playbook_access(request: HttpRequest, slug: str) -> HttpResponse:
    """Every person and what they may do with this playbook."""
    playbook = get_object_or_404(Playbook.objects.current(), slug=slug)
    people = []
    for person in get_user_model().objects.filter(is_active=True).order_by("username"):
        rights = access.permissions_for(person, playbook)
        people.append((person, rights, access.grant_sources(person, playbook)))
    context = {"playbook": playbook, "people": people}
    return render(request, "incidents/playbook_access.html", context)
