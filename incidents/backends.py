"""Django's model backend, with a person's permissions read in one query (user and
group grants together) instead of two: every page asks for them."""

from __future__ import annotations

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Permission
from django.db.models import Q


class ConsoleModelBackend(ModelBackend):
    def get_all_permissions(self, user_obj, obj=None) -> set[str]:  # noqa: ANN001
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if not hasattr(user_obj, "_perm_cache"):
            if user_obj.is_superuser:
                perms = Permission.objects.all()
            else:
                perms = Permission.objects.filter(
                    Q(user=user_obj) | Q(group__user=user_obj)
                )
            rows = perms.values_list("content_type__app_label", "codename").distinct()
            user_obj._perm_cache = {f"{app}.{code}" for app, code in rows}
        return user_obj._perm_cache
