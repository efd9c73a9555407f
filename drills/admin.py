"""Drills in the admin: read-only (a drill changes only through its services,
which audit what they do)."""

from django.contrib import admin
from django.http import HttpRequest

from .models import Drill


@admin.register(Drill)
class DrillAdmin(admin.ModelAdmin):
    list_display = ("pk", "title", "scenario", "state", "started_by", "started_at")
    list_filter = ("state", "scenario")
    search_fields = ("title", "scenario")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(
        self, request: HttpRequest, obj: Drill | None = None
    ) -> bool:
        return False

    def has_delete_permission(
        self, request: HttpRequest, obj: Drill | None = None
    ) -> bool:
        return False
