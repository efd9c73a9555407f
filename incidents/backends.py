"""Django's model backend, with all of a person's grants read in one query: role and
direct permissions, and their per-playbook grants (django-guardian rows), together.
Every page asks for them; one round trip instead of three."""

from __future__ import annotations

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Permission
from django.db.models import CharField, Q, Value
from guardian.models import GroupObjectPermission, UserObjectPermission


class ConsoleModelBackend(ModelBackend):
    def get_all_permissions(self, user_obj, obj=None) -> set[str]:  # noqa: ANN001
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if not hasattr(user_obj, "_perm_cache"):
            load_grants(user_obj)
        return user_obj._perm_cache


def load_grants(user) -> None:  # noqa: ANN001
    """Fill `_perm_cache` (model-level, as Django expects) and `_object_perm_cache`
    ({(app_label, model, object_pk): {codename}}) with one query."""
    everything = (
        Permission.objects.all()
        if user.is_superuser
        else Permission.objects.filter(Q(user=user) | Q(group__user=user))
    )
    fields = ("content_type__app_label", "content_type__model", "codename")
    # Permission's Meta.ordering must go: SQLite refuses ORDER BY inside the
    # parts of a compound SELECT (PostgreSQL accepts it), and order is irrelevant.
    model_level = (
        everything.order_by()
        .annotate(pk_of=Value("", output_field=CharField()))
        .values_list(*fields, "pk_of")
    )
    direct = UserObjectPermission.objects.filter(user=user).order_by().values_list(
        "permission__content_type__app_label", "permission__content_type__model",
        "permission__codename", "object_pk",
    )  # fmt: skip
    via_groups = GroupObjectPermission.objects.filter(group__user=user).order_by().values_list(
        "permission__content_type__app_label", "permission__content_type__model",
        "permission__codename", "object_pk",
    )  # fmt: skip
    perms: set[str] = set()
    objects: dict[tuple[str, str, str], set[str]] = {}
    for app, model, codename, object_pk in model_level.union(
        direct, via_groups, all=True
    ):
        if object_pk:
            objects.setdefault((app, model, object_pk), set()).add(codename)
        else:
            perms.add(f"{app}.{codename}")
    user._perm_cache = perms
    user._object_perm_cache = objects
