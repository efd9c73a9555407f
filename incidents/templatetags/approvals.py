"""Four eyes in the page furniture: the header's count of requests waiting for this
person, and who may approve a request (its step says so)."""

from __future__ import annotations

from django import template

from incidents.models import Playbook, StepExecution
from incidents.services import approvals

register = template.Library()


@register.simple_tag(takes_context=True)
def approvals_waiting(context: template.Context) -> int:
    """How many requests this person may decide: one query, none for people who
    may approve nothing. Asked once per page (the header shows it once)."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return 0
    found = approvals.decidable_by(user)
    return 0 if found is None else found.count()


@register.simple_tag
def approvers_of(execution: StepExecution, playbook: Playbook | None = None) -> str:
    """Who may decide this request, in words, or "" when nobody may."""
    return approvals.approver_names(execution, playbook)
