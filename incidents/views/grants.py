"""Who may do what with a playbook, and why; an Admin grants or takes back one
person's right to run its actions (or approve them) from the same page."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET
from django_htmx.http import reswap, retarget

from .. import access, services
from ..access import permission_required
from ..actors import Actor
from ..models import Playbook

CHANGES = {"grant": services.grant_on_playbook, "revoke": services.revoke_on_playbook}


def _rows(people: list, playbook: Playbook, may_change: bool) -> list[dict]:
    """One row per person: what they may do, why, and (for an Admin) how they hold
    each right the page can grant."""
    standings = (
        access.standings(people, playbook, services.GRANTABLE) if may_change else {}
    )
    return [
        {
            "person": person,
            "can": access.permissions_for(person, playbook),
            "sources": access.grant_sources(person, playbook),
            "grants": [
                (codename, label, standings[person.pk][codename])
                for codename, label in services.GRANTABLE.items()
            ]
            if may_change
            else [],
        }
        for person in people
    ]


@permission_required(access.VIEW_PLAYBOOKS)
@require_GET
def playbook_access(request: HttpRequest, slug: str) -> HttpResponse:
    """Every person and what they may do with this playbook."""
    playbook = get_object_or_404(Playbook.objects.current(), slug=slug)
    return _page(request, playbook)


def _page(
    request: HttpRequest, playbook: Playbook, error: str = "", status: int = 200
) -> HttpResponse:
    may_change = access.can(request.user, access.CHANGE_GRANTS)
    people = list(get_user_model().objects.filter(is_active=True).order_by("username"))
    context = {
        "playbook": playbook,
        "rows": _rows(people, playbook, may_change),
        "may_change": may_change,
        "error": error,
    }
    return render(request, "incidents/playbook_access.html", context, status=status)


@login_required
def playbook_grant(request: HttpRequest, slug: str) -> HttpResponse:
    """Grant or revoke one person's own right on this playbook (POST person,
    permission, change). HTMX: that person's row, drawn again; without
    JavaScript: back to the page, with a message."""
    try:
        # The permission first, whatever was sent: a refusal is audited.
        access.require(request, access.CHANGE_GRANTS)
    except PermissionDenied as exc:
        return _refused(request, str(exc), 403)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    playbook = Playbook.objects.current().select_related("runbook").filter(slug=slug)
    playbook = playbook.first()
    if playbook is None:
        return _refused(request, "There is no such playbook.", 404)
    person = _person(request.POST.get("person", ""))
    if person is None:
        return _refused(request, "There is no such person (or they are inactive).", 404)
    permission = request.POST.get("permission", "")
    if permission not in services.GRANTABLE:
        choices = ", ".join(services.GRANTABLE)
        message = f"That is not a right granted here; choose one of: {choices}."
        return _refused(request, message, 400, playbook)
    verb = request.POST.get("change", "")
    if verb not in CHANGES:
        return _refused(request, "Say whether to grant or revoke.", 400, playbook)
    changed = CHANGES[verb](
        actor=Actor.from_request(request),
        playbook=playbook,
        person=person,
        permission=permission,
    )
    notice = _notice(verb, changed, person, services.GRANTABLE[permission], playbook)
    if not request.htmx:
        messages.success(request, notice)
        url = reverse("incidents:playbook_access", args=[playbook.slug])
        return HttpResponseRedirect(f"{url}#person-{person.pk}")
    # Read again: a permission cache filled before the change would draw the old row.
    person = get_user_model().objects.get(pk=person.pk)
    [row] = _rows([person], playbook, may_change=True)
    context = {"playbook": playbook, "row": row, "may_change": True, "notice": notice}
    return render(request, "incidents/partials/grant_row.html", context)


def _person(value: str):  # noqa: ANN202
    """The active person a form names by number, or None."""
    # isascii: str.isdigit() also accepts other scripts' digits.
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        return None
    return get_user_model().objects.filter(pk=int(value), is_active=True).first()


def _notice(verb: str, changed: bool, person, label: str, playbook: Playbook) -> str:  # noqa: ANN001
    name = person.get_username()
    if verb == "grant":
        done = f"{name} may now {label} on {playbook}."
        same = f"{name} already had their own grant to {label} on {playbook}."
    else:
        done = f"{name}'s own grant to {label} on {playbook} is taken back."
        same = f"{name} had no grant of their own to {label} on {playbook}."
    return f"{done} (Recorded in the audit log.)" if changed else same


def _refused(
    request: HttpRequest,
    message: str,
    status: int,
    playbook: Playbook | None = None,
) -> HttpResponse:
    """A refusal in words. HTMX: in the page's message area, the row untouched.
    Without JavaScript: the 403 and 404 pages, or the access page with the
    message (a 400)."""
    if request.htmx:
        response = render(
            request,
            "incidents/partials/grant_error.html",
            {"message": message},
            status=status,
        )
        response["X-Console-Explained"] = "1"  # console.js adds no generic text
        return reswap(retarget(response, "#flash"), "innerHTML")
    if status == 403:
        raise PermissionDenied(message)
    if status == 404 or playbook is None:
        raise Http404(message)
    return _page(request, playbook, error=message, status=status)
