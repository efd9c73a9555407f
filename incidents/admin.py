"""Admin: browse runbook revisions, correct a command's binding."""

from django.contrib import admin

from .models import Command, Playbook, Runbook, Step


class PlaybookInline(admin.TabularInline):
    model = Playbook
    fields = ("number", "title", "severity", "alerts")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True


@admin.register(Runbook)
class RunbookAdmin(admin.ModelAdmin):
    list_display = (
        "title",
        "revision",
        "version",
        "is_current",
        "imported_at",
        "imported_by",
    )
    list_filter = ("is_current",)
    readonly_fields = [f.name for f in Runbook._meta.fields]
    inlines = [PlaybookInline]

    def has_add_permission(self, request) -> bool:  # noqa: ANN001
        return False  # import through `manage.py import_runbook`, which validates


class StepInline(admin.TabularInline):
    model = Step
    fields = ("number", "title", "links")
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Playbook)
class PlaybookAdmin(admin.ModelAdmin):
    list_display = ("number", "title", "severity", "runbook")
    list_filter = ("runbook__is_current", "severity")
    search_fields = ("title", "slug")
    readonly_fields = ("runbook", "number", "slug", "anchor", "line")
    inlines = [StepInline]


@admin.register(Command)
class CommandAdmin(admin.ModelAdmin):
    """An admin corrects what the importer guessed: kind, executor, parameters."""

    list_display = ("short_text", "playbook", "step", "kind", "executor", "parameters")
    list_filter = ("kind", "executor", "playbook__runbook__is_current", "playbook")
    search_fields = ("text",)
    fields = (
        "playbook",
        "step",
        "line",
        "language",
        "text",
        "kind",
        "executor",
        "parameters",
        "variables",
        "spec",
    )
    readonly_fields = ("playbook", "step", "line", "language", "text", "variables")

    @admin.display(description="command")
    def short_text(self, obj: Command) -> str:
        return str(obj)
