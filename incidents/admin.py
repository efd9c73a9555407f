"""Admin: browse runbook revisions, correct a command's binding."""

from django import forms
from django.contrib import admin
from django.db.models import F
from guardian.admin import GuardedModelAdmin

from probes.families import families

from . import audit
from .actors import Actor
from .models import AuditEvent, Command, Playbook, Runbook, SeverityAlias, Step


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

    def has_delete_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        # A revision is the record of what a checklist said: incidents, runs and
        # the audit trail point at it. A new import supersedes it; nothing deletes it.
        return False


class StepInline(admin.TabularInline):
    model = Step
    fields = ("number", "title", "links")
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Playbook)
class PlaybookAdmin(GuardedModelAdmin):
    """Object permissions (run_probes, run_actions, approve_actions) per playbook,
    for people or groups: the "Object permissions" button on a playbook's page."""

    list_display = ("number", "title", "severity", "runbook")
    list_filter = ("runbook__is_current", "severity")
    search_fields = ("title", "slug")
    # Everything here came from the runbook revision, which is its source: a
    # change belongs in the Markdown and a new import, not in a form. (Grants are
    # the object permissions, edited from the button above.)
    readonly_fields = [
        f.name for f in Playbook._meta.fields if f.name not in ("id", "binding_version")
    ]
    exclude = ("binding_version",)
    inlines = [StepInline]

    def has_add_permission(self, request) -> bool:  # noqa: ANN001
        return False  # playbooks come from `import_runbook`

    def has_delete_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        # Incidents keep the revision they started with; an old revision is
        # history, not clutter.
        return False


class CommandForm(forms.ModelForm):
    # The families table, read when the form is drawn: a new family shows up here
    # without a migration.
    executor = forms.ChoiceField(
        required=False,
        choices=lambda: (
            [("", "— none (manual) —")]
            + [(f.name, f"{f.name}: {f.label}") for f in families()]
        ),
    )

    class Meta:
        model = Command
        fields = (
            "kind",
            "executor",
            "requires_approval",
            "parameters",
            "spec",
        )


@admin.register(Command)
class CommandAdmin(admin.ModelAdmin):
    """An admin corrects what the importer guessed: kind, executor, parameters."""

    form = CommandForm

    list_display = (
        "short_text",
        "playbook",
        "step",
        "kind",
        "executor",
        "requires_approval",
    )
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
        "requires_approval",
        "parameters",
        "variables",
        "spec",
    )
    readonly_fields = ("playbook", "step", "line", "language", "text", "variables")

    def has_add_permission(self, request) -> bool:  # noqa: ANN001
        return False  # a command is a line of the runbook: it comes with an import

    def has_delete_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        # Deleting one would silently take a step's Run away from every incident on
        # this revision; rebinding it to "manual" (executor none) is the way.
        return False

    @admin.display(description="command")
    def short_text(self, obj: Command) -> str:
        return str(obj)

    def save_model(self, request, obj: Command, form, change: bool) -> None:  # noqa: ANN001
        super().save_model(request, obj, form, change)
        Playbook.objects.filter(pk=obj.playbook_id).update(
            binding_version=F("binding_version") + 1
        )
        audit.append(
            "command.rebound",
            actor=Actor.from_request(request),
            obj=obj,
            data={
                "playbook": obj.playbook.number,
                "text": obj.text[:200],
                "kind": obj.kind,
                "executor": obj.executor,
                "parameters": obj.parameters,
            },
        )


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """The audit log, read-only: list, filter, search. Nothing here can change it
    (and the database would refuse if it tried)."""

    list_display = (
        "seq",
        "created_at",
        "actor_name",
        "verb",
        "incident_id",
        "object_ref",
        "ip",
    )
    list_filter = ("verb", ("created_at", admin.DateFieldListFilter), "actor_name")
    search_fields = ("verb", "actor_name", "object_id", "=incident__id")
    ordering = ("-seq",)
    date_hierarchy = "created_at"
    list_per_page = 100
    show_full_result_count = False  # counting a large log on every page is slow

    @admin.display(description="object")
    def object_ref(self, obj: AuditEvent) -> str:
        return f"{obj.object_type} {obj.object_id}".strip()

    def get_readonly_fields(self, request, obj=None) -> list[str]:  # noqa: ANN001
        return [f.name for f in AuditEvent._meta.fields]

    def has_add_permission(self, request) -> bool:  # noqa: ANN001
        return False

    def has_change_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        return False

    def has_delete_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        return False


@admin.register(SeverityAlias)
class SeverityAliasAdmin(admin.ModelAdmin):
    """Words for a severity beyond the built-in ones (`P1`, `SEV-2`, `🔴 High`...):
    read by the next runbook import and by the alert intake."""

    list_display = ("alias", "level")
    search_fields = ("alias",)

    def save_model(self, request, obj: SeverityAlias, form, change: bool) -> None:  # noqa: ANN001
        super().save_model(request, obj, form, change)
        audit.append(
            "severity_alias.changed" if change else "severity_alias.added",
            actor=Actor.from_request(request),
            obj=obj,
            data={"alias": obj.alias, "level": obj.level},
        )

    def delete_model(self, request, obj: SeverityAlias) -> None:  # noqa: ANN001
        audit.append(
            "severity_alias.deleted",
            actor=Actor.from_request(request),
            obj=obj,
            data={"alias": obj.alias, "level": obj.level},
        )
        super().delete_model(request, obj)
