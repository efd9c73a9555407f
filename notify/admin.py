"""Channels (an admin maps the runbook's escalation names to them) and the
notifications sent, read-only. The admin shows whether a channel's secret is set,
never its value."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from .models import Channel, Notification


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "kind",
        "enabled",
        "all_approvals",
        "secret_env",
        "secret_is_set",
    ]
    list_filter = ["kind", "enabled"]
    search_fields = ["name"]
    fields = ["name", "kind", "enabled", "secret_env", "recipients", "all_approvals"]

    @admin.display(boolean=True, description="Secret set now")
    def secret_is_set(self, channel: Channel) -> bool | None:
        if not channel.needs_secret:
            return None
        return bool(channel.secret())


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = [
        "incident",
        "channel",
        "event",
        "round",
        "level",
        "state",
        "attempts",
        "status_code",
        "created_at",
        "sent_at",
    ]
    list_filter = ["state", "event", "channel"]
    list_select_related = ["incident", "channel"]
    search_fields = ["incident__title", "dedup_key"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(
        self, request: HttpRequest, obj: Notification | None = None
    ) -> bool:
        return False

    def has_delete_permission(
        self, request: HttpRequest, obj: Notification | None = None
    ) -> bool:
        return False
