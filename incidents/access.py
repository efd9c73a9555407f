"""Who may do what: the one place every view asks, so no view forgets the check.
Every denial is audited. (Per-playbook object permissions grow here, issue #5.)"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from functools import wraps
from typing import NoReturn

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.cache import caches
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse

from . import audit
from .actors import Actor
from .models import Command, Incident, Playbook, StepExecution

VIEW_PLAYBOOKS = "incidents.view_playbook"
VIEW_INCIDENTS = "incidents.view_incident"
OPEN_INCIDENTS = "incidents.add_incident"
TICK_STEPS = "incidents.tick_step"
ADD_NOTES = "incidents.add_note"
COMMAND_INCIDENTS = "incidents.command_incident"
EXPORT_INCIDENTS = "incidents.export_incident"
RUN_PROBES = "incidents.run_probes"
RUN_ACTIONS = "incidents.run_actions"
APPROVE_ACTIONS = "incidents.approve_actions"
BREAK_GLASS = "incidents.break_glass"
IMPORT_RUNBOOKS = "incidents.add_runbook"
# Who may give and take back per-playbook grants: the permission django-guardian's
# Object permissions screens in the admin ask for, so the console's access page and
# the admin agree on who may. The Admin role holds it (and superusers); no other role.
CHANGE_GRANTS = "incidents.change_playbook"


# How long a person's grants stay in a process's memory without being asked for.
# Staleness is not what bounds it (the version below does): only memory.
GRANTS_TIMEOUT = 600


def grants_version() -> int:
    """The database's grants counter (migration 0018: moved by triggers, in the
    same transaction, whenever a role, a membership, a permission or a per-playbook
    grant changes). One primary-key read."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT n FROM incidents_grants_version WHERE id = 1")
        row = cursor.fetchone()
    return row[0] if row else 0


def remember_grants(user, version: int | None = None) -> None:  # noqa: ANN001
    """Fill the person's permission caches for this request (as
    incidents.backends.load_grants does) from this process's memory when nothing
    that grants anything has changed since they were read, else from the database.

    Keyed by the grants counter, so a revocation is never served stale: the next
    request reads a new counter and misses. Also keyed by what the user row itself
    decides (superuser; the row is read fresh every request, and an inactive
    person is refused before this) and by when the account was made, so a reused
    primary key never meets another account's answer."""
    if hasattr(user, "_perm_cache") and hasattr(user, "_object_perm_cache"):
        return
    from .backends import load_grants

    if version is None:
        version = grants_version()
    joined = getattr(user, "date_joined", None)
    key = (
        f"grants:{user.pk}:{joined.timestamp() if joined else ''}:"
        f"{int(user.is_superuser)}:{version}"
    )
    cache = caches["fragments"]
    found = cache.get(key)
    if found is None:
        load_grants(user)
        cache.set(key, (user._perm_cache, user._object_perm_cache), GRANTS_TIMEOUT)
        return
    # Django's caches hand back a fresh copy (pickled), never a shared object.
    user._perm_cache, user._object_perm_cache = found


# --- the pages every open tab asks for every few seconds -----------------------------
# Django reads the session, then the user: two queries and about a millisecond of
# ORM work on every request, more than the rest of an idle poll. For the checklist
# page and its poll, a session seen signed in before is checked in one query with
# the page's own lookup: the session row still there and unexpired (signing out
# deletes it), the user row read afresh (active, and the same password: Django's
# session hash), the grants counter. Anything else goes the ordinary way, which
# decides and answers as it always has.
SESSION_TIMEOUT = 600  # memory only: the database is asked on every request


def remember_session(request: HttpRequest) -> None:
    """After a request signed in the ordinary way: whose this session is, so the
    next request of it can take the one-query way (signed_in_with)."""
    from django.contrib.auth import HASH_SESSION_KEY

    session = getattr(request, "session", None)
    key = session.session_key if session is not None else None
    user = request.user
    if key and user.is_authenticated and session.get(HASH_SESSION_KEY):
        caches["fragments"].set(
            f"session:{key}", (user.pk, session[HASH_SESSION_KEY]), SESSION_TIMEOUT
        )


def signed_in_with(
    request: HttpRequest, columns: str, params: list[object]
) -> tuple | None:
    """The request's person (set as request.user, their grants remembered) and the
    caller's `columns` (SQL, with `params`), in one query; None when the ordinary
    way must decide (a session not seen before, signed out, expired, another
    password, inactive, another session engine)."""
    from django.contrib.sessions.models import Session
    from django.utils import timezone
    from django.utils.crypto import constant_time_compare

    if settings.SESSION_ENGINE != "django.contrib.sessions.backends.db":
        return None
    key = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
    if not key or len(key) > 40:
        return None
    known = caches["fragments"].get(f"session:{key}")
    if known is None:
        return None
    user_id, session_hash = known
    User = get_user_model()  # noqa: N806
    fields = User._meta.concrete_fields
    # Kept prepared (bound_cursor): the callers' columns must have plans that do
    # not depend on their values (views/common.py, LAST_SEQ).
    with connection.bound_cursor() as cursor:
        cursor.execute(
            "SELECT "
            + ", ".join(f'u."{f.column}"' for f in fields)
            + ", (SELECT n FROM incidents_grants_version WHERE id = 1), "
            + columns
            + f" FROM {Session._meta.db_table} s JOIN {User._meta.db_table} u"
            " ON u.id = %s WHERE s.session_key = %s AND s.expire_date > %s",
            [*params, user_id, key, timezone.now()],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    user = User.from_db("default", [f.attname for f in fields], row[: len(fields)])
    if not user.is_active or not constant_time_compare(
        user.get_session_auth_hash(), session_hash
    ):
        return None
    request.user = user
    remember_grants(user, row[len(fields)] or 0)
    return row[len(fields) + 1 :]


def signed_in_at_once(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Outermost on a view on a click's path (Run): the person checked in one
    query (signed_in_with) when their session is known, before the decorators
    under it ask for request.user, which would cost Django's two (the session,
    then the user). An unknown session, or one that fails a check, goes the
    ordinary way, which decides as it always has."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        signed_in_with(request, "TRUE", [])
        return view(request, *args, **kwargs)

    return wrapped


# The backends whose answer to has_perm(perm) (no object) is "superuser, or perm in
# the permission cache" (incidents.backends fills it, as remember_grants does):
# Django's model backend and ours; axes' and guardian's say no without an object,
# and so do single sign-on's two (sso/backend.py): they only let people in, and
# their permissions come from their role groups through the model backend.
PERM_CACHE_BACKENDS = frozenset(
    {
        "axes.backends.AxesStandaloneBackend",
        "incidents.backends.ConsoleModelBackend",
        "guardian.backends.ObjectPermissionBackend",
        "sso.backend.SSOBackend",
        "sso.backend.LocalAccountsGate",
    }
)


def can(user, perm: str, incident: Incident | None = None) -> bool:  # noqa: ANN001
    if user is None:
        return False
    if not (user.is_authenticated and user.is_active):
        return False
    if user.is_superuser:  # Django's has_perm: yes, reading nothing
        return True
    remember_grants(user)
    if PERM_CACHE_BACKENDS.issuperset(settings.AUTHENTICATION_BACKENDS):
        # What has_perm comes to with these backends, without its walk over them
        # (each imported and made anew, for each of the dozen rights a page asks).
        return perm in user._perm_cache
    return bool(user.has_perm(perm))  # another backend may grant: ask them all


def playbook_perms(user, playbook: Playbook) -> set[str]:  # noqa: ANN001
    """The person's grants on one playbook (their own and their groups'), read with
    their other permissions in one query per request (see incidents.backends)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return set()
    if user.is_superuser:
        return {"run_probes", "run_actions", "approve_actions"}
    remember_grants(user)
    return user._object_perm_cache.get(
        ("incidents", "playbook", str(playbook.pk)), set()
    )


def can_on_playbook(user, perm: str, playbook: Playbook) -> bool:  # noqa: ANN001
    """A grant on this playbook (to the person or one of their groups, through
    django-guardian) or the same permission for every playbook (a role)."""
    return can(user, perm) or perm.split(".", 1)[1] in playbook_perms(user, playbook)


def run_permission(command: Command) -> str:
    return RUN_ACTIONS if command.kind == Command.Kind.ACTION else RUN_PROBES


def can_run(user, command: Command, incident: Incident | None = None) -> bool:  # noqa: ANN001
    """The one check for running a command; the worker asks it again just before
    running, so a permission revoked after the click stops the run."""
    return command.is_runnable and can_on_playbook(
        user, run_permission(command), command.playbook
    )


def can_approve(user, execution: StepExecution) -> bool:  # noqa: ANN001
    """Four eyes: someone else, with approve_actions on the playbook."""
    return (
        user is not None
        and execution.requested_by_id != getattr(user, "pk", None)
        and can_on_playbook(user, APPROVE_ACTIONS, execution.command.playbook)
    )


def can_break_glass(user, command: Command) -> bool:  # noqa: ANN001
    return can(user, BREAK_GLASS) and can_run(user, command)


def allows(
    actor: Actor,
    perm: str,
    *,
    playbook: Playbook | None = None,
    systems: Collection[str] = (),
) -> bool:
    """Deny by default. A person: their permission (with a playbook, a grant on it
    counts too). A system identity has no permissions of its own: it may act only
    where the calling service names it in `systems`."""
    if actor.is_system:
        return actor.is_one_of(systems)
    if playbook is not None:
        return can_on_playbook(actor.user, perm, playbook)
    return can(actor.user, perm)


def check(
    actor: Actor,
    perm: str,
    *,
    incident: Incident | None = None,
    playbook: Playbook | None = None,
    systems: Collection[str] = (),
) -> None:
    """A service's own check (views check first, but tasks, commands and webhooks
    call services directly): allowed, or the denial audited and PermissionDenied
    raised. Call it before the service's transaction, so the denial's record is
    not rolled back with it."""
    if not allows(actor, perm, playbook=playbook, systems=systems):
        why = (
            "a system identity this service does not let act" if actor.is_system else ""
        )
        refuse(actor, perm, incident, why=why)


def refuse(
    actor: Actor,
    perm: str,
    incident: Incident | None = None,
    *,
    why: str = "",
    where: dict[str, str] | None = None,
) -> NoReturn:
    """Audit a denial (`where`: the request's method and path) and raise."""
    audit.append(
        "permission.denied",
        actor=actor,
        incident=incident,
        data={"permission": perm, **(where or {}), "why": why},
    )
    raise PermissionDenied(f"You need the '{perm.split('.')[-1]}' permission for this.")


def require(request: HttpRequest, perm: str, incident: Incident | None = None) -> None:
    """Raise PermissionDenied (a 403 page) and audit the denial unless allowed.
    With an incident, a grant on its playbook counts too."""
    if incident is not None and can_on_playbook(request.user, perm, incident.playbook):
        return
    if incident is None and can(request.user, perm):
        return
    deny(request, perm, incident)


def deny(
    request: HttpRequest, perm: str, incident: Incident | None = None, why: str = ""
) -> NoReturn:
    """A view's denial: audited with the request's method and path."""
    refuse(
        Actor.from_request(request),
        perm,
        incident,
        why=why,
        where={"method": request.method, "path": request.path},
    )


def grant_sources(user, playbook: Playbook) -> list[str]:  # noqa: ANN001
    """Where a person's rights on a playbook come from, in words."""
    from guardian.shortcuts import get_perms

    sources = [f"role {g.name}" for g in user.groups.all()]
    if user.is_superuser:
        sources.insert(0, "superuser")
    direct = get_perms(user, playbook)
    if direct:
        sources.append("granted here: " + ", ".join(sorted(set(direct))))
    return sources


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


def permissions_for(user, playbook: Playbook | None = None) -> dict[str, bool]:  # noqa: ANN001
    """What the templates may offer (the server still checks every POST)."""
    on = (
        (lambda perm: can_on_playbook(user, perm, playbook))
        if playbook
        else (lambda perm: can(user, perm))
    )
    return {
        "approve": on(APPROVE_ACTIONS),
        "break_glass": can(user, BREAK_GLASS),
        "tick": can(user, TICK_STEPS),
        "note": can(user, ADD_NOTES),
        "command": can(user, COMMAND_INCIDENTS),
        "export": can(user, EXPORT_INCIDENTS),
        "open": can(user, OPEN_INCIDENTS),
        "probes": on(RUN_PROBES),
        "actions": on(RUN_ACTIONS),
    }


def people_who_can(permission: str) -> QuerySet:
    """Active people holding a model-level permission through their role, a direct
    grant or superuser status: e.g. who may be handed command of an incident (a
    commander who cannot change the status would leave the incident stuck)."""
    app_label, codename = permission.split(".", 1)
    held = {
        "permissions__codename": codename,
        "permissions__content_type__app_label": app_label,
    }
    return (
        get_user_model()
        .objects.filter(is_active=True)
        .filter(
            Q(is_superuser=True)
            | Q(**{f"groups__{k}": v for k, v in held.items()})
            | Q(**{f"user_{k}": v for k, v in held.items()})
        )
        .distinct()
    )


@dataclass(frozen=True)
class Standing:
    """One person's hold on one per-playbook right: their own grant on the playbook
    (which the access page may take back) and, in words, whatever else gives it to
    them (superuser, a role, a group's grant on the playbook), which it may not."""

    own: bool = False
    because: tuple[str, ...] = ()

    @property
    def held(self) -> bool:
        return self.own or bool(self.because)


def standings(
    people: Iterable, playbook: Playbook, codenames: Collection[str]
) -> dict[int, dict[str, Standing]]:
    """For each active person, how they hold each of these per-playbook rights
    (codenames of Playbook's permissions): the same answer as `can_on_playbook`,
    with its reasons, read in five queries for the whole page rather than per row."""
    from django.contrib.auth.models import Group
    from django.contrib.contenttypes.models import ContentType
    from guardian.models import GroupObjectPermission, UserObjectPermission

    people = [p for p in people if p.is_active]
    ids = [p.pk for p in people]
    User = get_user_model()  # noqa: N806
    on_playbook = {
        "content_type": ContentType.objects.get_for_model(Playbook),
        "object_pk": str(playbook.pk),
        "permission__codename__in": list(codenames),
    }
    model_level = {
        "permission__content_type__app_label": "incidents",
        "permission__codename__in": list(codenames),
    }
    own = set(
        UserObjectPermission.objects.filter(user_id__in=ids, **on_playbook)
        .values_list("user_id", "permission__codename")
    )  # fmt: skip
    for_every_playbook = set(
        User.user_permissions.through.objects.filter(user_id__in=ids, **model_level)
        .values_list("user_id", "permission__codename")
    )  # fmt: skip
    memberships: dict[int, list[int]] = {}
    for user_id, group_id in User.groups.through.objects.filter(
        user_id__in=ids
    ).values_list("user_id", "group_id"):
        memberships.setdefault(user_id, []).append(group_id)
    names = dict(Group.objects.values_list("pk", "name"))
    roles = set(
        Group.permissions.through.objects.filter(**model_level)
        .values_list("group_id", "permission__codename")
    )  # fmt: skip
    group_grants = set(
        GroupObjectPermission.objects.filter(**on_playbook)
        .values_list("group_id", "permission__codename")
    )  # fmt: skip

    def because(person, codename: str) -> tuple[str, ...]:  # noqa: ANN001
        if person.is_superuser:
            return ("superuser",)
        groups = sorted(memberships.get(person.pk, []), key=names.__getitem__)
        reasons = [f"role {names[g]}" for g in groups if (g, codename) in roles]
        if (person.pk, codename) in for_every_playbook:
            reasons.append("own permission for every playbook")
        reasons += [
            f"group {names[g]}'s grant here"
            for g in groups
            if (g, codename) in group_grants
        ]
        return tuple(reasons)

    return {
        person.pk: {
            codename: Standing(
                own=(person.pk, codename) in own, because=because(person, codename)
            )
            for codename in codenames
        }
        for person in people
    }
