"""CSRF failures are denials like any other: recorded in the audit log, answered
with the console's own 403 page (settings.CSRF_FAILURE_VIEW)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

from incidents import audit
from incidents.actors import Actor

MESSAGE = (
    "This form's security token did not match your session (it may come from "
    "another tab or an expired sign-in). Reload the page and try again."
)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """Record the refusal, then render 403.html. Django's `reason` names which
    check failed (missing cookie, token incorrect, bad origin); it holds no secret."""
    audit.append(
        "permission.denied",
        actor=Actor.from_request(request),
        data={
            "permission": "csrf",
            "method": request.method,
            "path": request.path[:500],
            "why": reason,
        },
    )
    html = render_to_string("403.html", {"exception": MESSAGE}, request=request)
    return HttpResponse(html, status=403)
