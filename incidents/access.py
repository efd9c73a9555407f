"""Who may do what: the one place every view asks, so no view forgets the check.
Every denial is audited. (Per-playbook object permissions grow here, issue #5.)"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from . import audit
from .models import Command, Incident

VIEW_PLAYBOOKS = "incidents.view_playbook"
VIEW_INCIDENTS = "incidents.view_incident"
OPEN_INCIDENTS = "incidents.add_incident"
TICK_STEPS = "incidents.tick_step"
ADD_NOTES = "incidents.add_note"
COMMAND_INCIDENTS = "incidents.command_incident"
EXPORT_INCIDENTS = "incidents.export_incident"
IMPORT_RUNBOOKS = "incidents.add_runbook"
RUN_PROBES = "incidents.run_probes"
RUN_ACTIONS = "incidents.run_actions"


def can(user, perm: str, incident: Incident | None = None) -> bool:  # noqa: ANN001
    if user is None:
        return False
    return bool(user.is_authenticated and user.is_active and user.has_perm(perm))


def run_permission(command: Command) -> str:
    return RUN_ACTIONS if command.kind == Command.Kind.ACTION else RUN_PROBES


def can_run(user, command: Command, incident: Incident | None = None) -> bool:  # noqa: ANN001
    """The one check for running a command; the worker asks it again just before
    running, so a permission revoked after the click stops the run."""
    return command.is_runnable and can(user, run_permission(command), incident)


def require(request: HttpRequest, perm: str, incident: Incident | None = None) -> None:
    """Raise PermissionDenied (a 403 page) and audit the denial unless allowed."""
    if can(request.user, perm, incident):
        return
    audit.append(
        "permission.denied",
        actor=request.user,
        incident=incident,
        data={"permission": perm, "method": request.method, "path": request.path},
        request=request,
    )
    raise PermissionDenied(f"You need the '{perm.split('.')[-1]}' permission for this.")


def permission_required(perm: str) -> Callable:
    """`@permission_required(VIEW_INCIDENTS)`: login first, then the permission."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapped(
            request: HttpRequest, *args: object, **kwargs: object
        ) -> HttpResponse:
            require(request, perm)
            return view(request, *args, **kwargs)

        return login_required(wrapped)

    return decorate


def permissions_for(user) -> dict[str, bool]:  # noqa: ANN001
    """What the templates may offer (the server still checks every POST)."""
    return {
        "tick": can(user, TICK_STEPS),
        "note": can(user, ADD_NOTES),
        "command": can(user, COMMAND_INCIDENTS),
        "export": can(user, EXPORT_INCIDENTS),
        "open": can(user, OPEN_INCIDENTS),
        "probes": can(user, RUN_PROBES),
        "actions": can(user, RUN_ACTIONS),
    }
