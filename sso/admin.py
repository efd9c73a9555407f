from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from .models import Identity, RoleMapping


@admin.register(RoleMapping)
class RoleMappingAdmin(admin.ModelAdmin):
    list_display = ("claim_value", "group", "staff")
    list_filter = ("group", "staff")
    search_fields = ("claim_value",)


@admin.register(Identity)
class IdentityAdmin(admin.ModelAdmin):
    """Read only: a link is made by a sign-in, and changing its subject would hand
    one person's account to another."""

    list_display = ("user", "subject", "issuer", "created_at", "last_sign_in_at")
    search_fields = ("user__username", "subject", "issuer")
    list_select_related = ("user",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(
        self, request: HttpRequest, obj: Identity | None = None
    ) -> bool:
        return False

    def has_delete_permission(
        self, request: HttpRequest, obj: Identity | None = None
    ) -> bool:
        return False
