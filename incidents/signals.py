"""Audit what happens outside our own services: sign-ins, and admin changes to
users, groups and permissions (from the Django admin or anywhere else)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.contrib.auth import get_user_model, user_logged_in, user_logged_out
from django.contrib.auth.models import Group, Permission
from django.contrib.auth.signals import user_login_failed
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse

from . import audit
from .actors import Actor, client_ip

current_request: ContextVar[HttpRequest | None] = ContextVar(
    "current_request", default=None
)
# Who makes the changes inside `acting(...)`, whoever the request's user is: a
# system identity changing a person's account on their behalf while the request is
# not signed in yet (sso/ applying the identity provider's groups at sign-in).
acting_as: ContextVar[Actor | None] = ContextVar("acting_as", default=None)
USER_FIELDS = (
    "username",
    "email",
    "first_name",
    "last_name",
    "is_active",
    "is_staff",
    "is_superuser",
)


class AuditContextMiddleware:
    """Lets signal handlers know who is acting and from where."""

    def __init__(self, get_response) -> None:  # noqa: ANN001
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = current_request.set(request)
        try:
            return self.get_response(request)
        finally:
            current_request.reset(token)


@contextmanager
def acting(actor: Actor) -> Iterator[None]:
    """The changes made inside are recorded as `actor`'s (user.created,
    user.changed, grant.changed), not the current request's."""
    token = acting_as.set(actor)
    try:
        yield
    finally:
        acting_as.reset(token)


def _actor() -> Actor:
    """Who made a change these signals report: the identity `acting` names, the
    person behind the current request, or the system (a management command, a
    migration, a shell)."""
    forced = acting_as.get()
    if forced is not None:
        return forced
    request = current_request.get()
    if request is None or not getattr(request, "user", None):
        return Actor(name="system", ip=client_ip(request), is_system=True)
    return Actor.from_request(request)


@receiver(user_logged_in)
def logged_in(sender, request, user, **kwargs) -> None:  # noqa: ANN001
    # A backend other than the password may say how the person signed in (sso/:
    # the method, issuer and subject); a password sign-in records nothing more.
    audit.append(
        "login.succeeded",
        actor=Actor.person(user, client_ip(request)),
        data=dict(getattr(user, "sign_in_audit", None) or {}),
    )


@receiver(user_logged_out)
def logged_out(sender, request, user, **kwargs) -> None:  # noqa: ANN001
    if user is not None:
        audit.append("logout", actor=Actor.person(user, client_ip(request)))


@receiver(user_login_failed)
def login_failed(sender, credentials, request=None, **kwargs) -> None:  # noqa: ANN001
    # The username tried, never the password.
    username = str(credentials.get("username", ""))[:150]
    audit.append(
        "login.failed",
        actor=Actor.anonymous(username, client_ip(request)),
        data={"username": username},
    )


def _user_model():  # noqa: ANN202
    return get_user_model()


@receiver(pre_save)
def remember_user(sender, instance, **kwargs) -> None:  # noqa: ANN001
    if sender is not _user_model() or not instance.pk:
        return
    old = sender.objects.filter(pk=instance.pk).values(*USER_FIELDS, "password").first()
    instance._audit_before = old


@receiver(post_save)
def user_or_group_saved(sender, instance, created, raw=False, **kwargs) -> None:  # noqa: ANN001
    if raw:
        return
    if sender is Group:
        verb = "group.created" if created else "group.changed"
        audit.append(verb, obj=instance, data={"name": instance.name}, actor=_actor())
        return
    if sender is not _user_model():
        return
    if created:
        data = {f: getattr(instance, f) for f in USER_FIELDS}
        audit.append("user.created", obj=instance, data=data, actor=_actor())
        return
    before = getattr(instance, "_audit_before", None) or {}
    # A save of some fields writes only those: the rest of a stale object (read
    # before someone else changed the row) is not what this save did.
    written = kwargs.get("update_fields")
    fields = [f for f in USER_FIELDS if written is None or f in written]
    changes = {
        f: [before.get(f), getattr(instance, f)]
        for f in fields
        if before.get(f) != getattr(instance, f)
    }
    if (written is None or "password" in written) and before.get(
        "password"
    ) != instance.password:
        changes["password"] = "changed"  # that it changed, never what to
    if changes:
        audit.append(
            "user.changed",
            obj=instance,
            data={"username": instance.get_username(), "changes": changes},
            actor=_actor(),
        )


@receiver(post_delete)
def user_or_group_deleted(sender, instance, **kwargs) -> None:  # noqa: ANN001
    if sender is Group or sender is _user_model():
        name = instance.name if sender is Group else instance.get_username()
        audit.append(
            f"{sender._meta.model_name}.deleted",
            obj=instance,
            data={"name": name},
            actor=_actor(),
        )


def _names(model, pks) -> list[str]:  # noqa: ANN001
    if not pks:
        return []
    if model is Permission:
        rows = model.objects.filter(pk__in=pks).values_list(
            "content_type__app_label", "codename"
        )
        return sorted(f"{app}.{code}" for app, code in rows)
    field = "name" if model is Group else _user_model().USERNAME_FIELD
    return sorted(model.objects.filter(pk__in=pks).values_list(field, flat=True))


@receiver(m2m_changed)
def grants_changed(sender, instance, action, model, pk_set, **kwargs) -> None:  # noqa: ANN001
    User = _user_model()  # noqa: N806
    watched = {
        User.groups.through,
        User.user_permissions.through,
        Group.permissions.through,
    }
    if sender not in watched or action not in {"post_add", "post_remove", "post_clear"}:
        return
    owner = instance.name if isinstance(instance, Group) else str(instance)
    audit.append(
        "grant.changed",
        obj=instance,
        data={
            "of": owner,
            "what": model._meta.model_name,
            "action": action.removeprefix("post_"),
            "items": _names(model, pk_set),
        },
        actor=_actor(),
    )


def _object_grant(instance, action: str) -> None:  # noqa: ANN001
    """A per-playbook grant (django-guardian) given or taken away."""
    who = (
        instance.user.get_username()
        if hasattr(instance, "user")
        else f"group {instance.group.name}"
    )
    target = instance.content_object
    audit.append(
        "grant.changed",
        obj=target if target is not None else None,
        data={
            "of": who,
            "what": "object permission",
            "action": action,
            "items": [
                f"{instance.permission.content_type.app_label}.{instance.permission.codename}"
            ],
            "on": str(target) if target is not None else f"#{instance.object_pk}",
        },
        actor=_actor(),
    )


def _connect_guardian() -> None:
    from guardian.models import GroupObjectPermission, UserObjectPermission

    for model in (UserObjectPermission, GroupObjectPermission):
        post_save.connect(
            lambda sender, instance, created, raw=False, **kw: (
                created and not raw and _object_grant(instance, "add")
            ),
            sender=model,
            weak=False,
            dispatch_uid=f"audit-{model.__name__}-save",
        )
        post_delete.connect(
            lambda sender, instance, **kw: _object_grant(instance, "remove"),
            sender=model,
            weak=False,
            dispatch_uid=f"audit-{model.__name__}-delete",
        )


_connect_guardian()


def _connect_axes() -> None:
    from axes.signals import user_locked_out

    def locked_out(sender, request, username=None, ip_address=None, **kwargs) -> None:  # noqa: ANN001
        audit.append("login.locked_out",
                     actor=Actor.anonymous(str(username or "")[:150], client_ip(request)),
                     data={"username": username})  # fmt: skip

    user_locked_out.connect(locked_out, weak=False, dispatch_uid="audit-axes-lockout")


_connect_axes()
