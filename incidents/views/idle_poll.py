"""The checklist's 2-second poll, answered before Django's middleware when nothing
happened.

Every open tab asks `/incidents/<pk>/changes?since=N` every 2 s, and nearly every
answer is "nothing new" (204). Django's stack (sessions, CSRF, authentication,
messages, URL resolution, the view's decorators) cost about as much as that
answer's one query. This middleware, placed just inside the security headers and
the offline pages, answers such a poll itself with the checks the view makes, in
the same one query (access.signed_in_with): the session row there and unexpired,
the user active with the same password (Django's session hash), the grants counter
and the right to view incidents, the incident there, and no event after `N`.

Anything else goes on to the view, untouched: a session not seen signed in before,
a person who may not view incidents (the view refuses and audits), no such incident
(404), a change to draw, a `since` that is not a number (400), another method, and
a database that cannot be reached (the view meets it again and the offline pages
answer, as for any page)."""

from __future__ import annotations

import re
from collections.abc import Callable

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse

from .. import access
from .common import MAX_SEQ, POLL_COLUMNS, poll_params, since_number

POLL_PATH = re.compile(r"/incidents/([1-9][0-9]{0,18})/changes")


def idle_answer(request: HttpRequest) -> HttpResponse | None:
    """204 for a poll that finds nothing new, checked as the view checks it;
    None for every other request (the view decides)."""
    if request.method != "GET":
        return None
    path = POLL_PATH.fullmatch(request.path_info)
    if path is None or int(path[1]) > MAX_SEQ:  # a bigint, as the view's <int:pk>
        return None
    since = since_number(request.GET.get("since") or "0")
    if since is None:
        return None
    pk = int(path[1])
    try:
        found = access.signed_in_with(request, POLL_COLUMNS, poll_params(pk, since))
    except (OperationalError, InterfaceError):
        # The view meets the same failure, where the offline pages answer it
        # (their middleware turns a view's failure into the offline answer).
        return None
    if found is None:
        return None
    exists, changed = found
    if not exists or changed or not access.can(request.user, access.VIEW_INCIDENTS):
        return None
    response = HttpResponse(status=204)
    # What XFrameOptionsMiddleware, inside this one, adds to the view's 204.
    response["X-Frame-Options"] = settings.X_FRAME_OPTIONS
    return response


class IdlePollMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        answer = idle_answer(request)
        return answer if answer is not None else self.get_response(request)
