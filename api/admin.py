"""Admin: every person's API tokens, read only, with Revoke (audited). Tokens are
made only by their owner, at /account/tokens/, where the secret is shown once."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from incidents.actors import Actor

from . import tokens
from .models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "scope", "created_at", "last_used_at", "revoked_at")
    list_filter = ("scope", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("name", "user__username")
    # The hash is not shown either: nothing derived from a secret is displayed.
    fields = (
        "name",
        "user",
        "scope",
        "created_at",
        "last_used_at",
        "revoked_at",
        "revoked_by",
    )
    readonly_fields = fields
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:  # noqa: ANN001
        return False  # revoked, not deleted: the audit log refers to it

    @admin.action(description="Revoke the selected tokens (they stop at once)")
    def revoke(self, request: HttpRequest, queryset: QuerySet) -> None:
        actor = Actor.from_request(request)
        done = sum(
            tokens.revoke(token=token, actor=actor)
            for token in queryset.select_related("user")
        )
        messages.success(request, f"Revoked {done} token(s).")
