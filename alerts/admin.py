"""Alert sources, routes and playbook policies, managed by Admins. A source's token
is shown once, in the message after it is created or rotated, and stored hashed."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest

from incidents import audit
from incidents.actors import Actor
from incidents.models import Playbook

from . import sources
from .models import (
    Alert,
    AlertGroup,
    AlertSource,
    PlaybookPolicy,
    Receipt,
    Route,
    digest,
)
from .routing import MatcherError, find_playbook, parse_matchers


@admin.register(AlertSource)
class AlertSourceAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "kind",
        "enabled",
        "drill",
        "rate_limit_per_minute",
        "token_rotated_at",
    )
    readonly_fields = ("token_rotated_at", "created_at")
    actions = ["rotate_tokens"]

    def save_model(
        self, request: HttpRequest, obj: AlertSource, form, change: bool
    ) -> None:  # noqa: ANN001
        actor = Actor.from_request(request)
        with transaction.atomic():
            if change:
                super().save_model(request, obj, form, change)
                audit.append(
                    "alert_source.changed",
                    actor=actor,
                    obj=obj,
                    data={
                        "name": obj.name,
                        "changed": sorted(form.changed_data),
                        "enabled": obj.enabled,
                        "drill": obj.drill,
                    },
                )
                return
            token = sources.new_token()
            obj.token_sha256 = digest(token)
            super().save_model(request, obj, form, change)
            audit.append(
                "alert_source.created",
                actor=actor,
                obj=obj,
                data={"name": obj.name, "kind": obj.kind, "drill": obj.drill},
            )
        _show_token(request, obj, token)

    @admin.action(description="Rotate the token (the old one stops working)")
    def rotate_tokens(self, request: HttpRequest, queryset: QuerySet) -> None:
        for source in queryset:
            token = sources.rotate(source=source, actor=Actor.from_request(request))
            _show_token(request, source, token)


def _show_token(request: HttpRequest, source: AlertSource, token: str) -> None:
    messages.warning(
        request,
        f"Token for {source.name} (shown once; store it in the sender's config): {token}",
    )


class RouteForm(forms.ModelForm):
    class Meta:
        model = Route
        fields = ("name", "priority", "enabled", "matchers", "playbook")

    def clean_matchers(self) -> str:
        text = self.cleaned_data["matchers"]
        try:
            parse_matchers(text)
        except MatcherError as exc:
            raise forms.ValidationError(str(exc)) from None
        return text

    def clean_playbook(self) -> str:
        wanted = self.cleaned_data["playbook"]
        if find_playbook(Playbook.objects.current(), wanted) is None:
            raise forms.ValidationError(
                f"No playbook of the current runbook has the slug or number {wanted!r}."
            )
        return wanted


@admin.register(Route)
class RouteAdmin(admin.ModelAdmin):
    form = RouteForm
    list_display = ("priority", "name", "matchers", "playbook", "enabled")
    list_editable = ("enabled",)
    ordering = ("priority", "id")


@admin.register(PlaybookPolicy)
class PlaybookPolicyAdmin(admin.ModelAdmin):
    list_display = ("runbook_key", "playbook_slug", "resolve_with_source")


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Receipt)
class ReceiptAdmin(ReadOnly):
    list_display = ("id", "source", "received_at", "state", "alert_count")
    list_filter = ("source", "state")


@admin.register(AlertGroup)
class AlertGroupAdmin(ReadOnly):
    list_display = ("id", "source", "firing", "incident", "rule", "triage", "flaps")
    list_filter = ("source", "firing", "triage")


@admin.register(Alert)
class AlertAdmin(ReadOnly):
    list_display = ("name", "status", "fingerprint", "starts_at", "ends_at", "group")
    list_filter = ("status",)
