"""One shape for every refusal and error (`Error` in the schema), whatever raised
it: the console's own refusals, Django's, django-ninja's. Never a 500 page."""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from incidents import services

log = logging.getLogger(__name__)


class Refused(Exception):
    """An API refusal with its status and code (a read-only token writing, a rate
    limit, a form's errors)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        fields: dict[str, list[str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.fields = fields or {}
        self.headers = headers or {}


def problem(
    status: int,
    code: str,
    message: str,
    fields: dict[str, list[str]] | None = None,
    headers: dict[str, str] | None = None,
) -> HttpResponse:
    body = {
        "error": {
            "status": status,
            "code": code,
            "message": message,
            "fields": fields or {},
        }
    }
    response = JsonResponse(body, status=status)
    response["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def _field_name(loc: list | tuple) -> str:
    """ninja's location (("body", "data", "title")) as the field a caller sent."""
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "data")]
    return ".".join(parts) or "body"


def install(api: NinjaAPI) -> None:
    @api.exception_handler(Refused)
    def refused(request: HttpRequest, exc: Refused) -> HttpResponse:
        return problem(exc.status, exc.code, exc.message, exc.fields, exc.headers)

    @api.exception_handler(AuthenticationError)
    def unauthenticated(request: HttpRequest, exc: Exception) -> HttpResponse:
        return problem(
            401,
            "unauthenticated",
            "Send a personal API token: 'Authorization: Bearer yom_…' "
            "(make one at /account/tokens/).",
            headers={"WWW-Authenticate": 'Bearer realm="yomira"'},
        )

    @api.exception_handler(PermissionDenied)
    def forbidden(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
        return problem(403, "forbidden", str(exc) or "You may not do this.")

    @api.exception_handler(Http404)
    def not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
        return problem(404, "not_found", "There is no such thing here.")

    @api.exception_handler(ValidationError)
    def invalid(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        fields: dict[str, list[str]] = {}
        for error in exc.errors:
            name = _field_name(error.get("loc", ()))
            fields.setdefault(name, []).append(str(error.get("msg", "invalid")))
        listed = "; ".join(f"{name}: {', '.join(m)}" for name, m in fields.items())
        return problem(400, "invalid", f"The request is not valid: {listed}", fields)

    @api.exception_handler(HttpError)
    def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        code = {400: "invalid", 405: "method_not_allowed"}.get(
            exc.status_code, "refused"
        )
        return problem(exc.status_code, code, str(exc.message))

    @api.exception_handler(services.RunRefused)
    def run_refused(request: HttpRequest, exc: services.RunRefused) -> HttpResponse:
        return problem(409, "refused", str(exc))

    @api.exception_handler(services.TransitionError)
    def transition(request: HttpRequest, exc: services.TransitionError) -> HttpResponse:
        return problem(409, "conflict", str(exc))

    @api.exception_handler(Exception)
    def unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
        if isinstance(exc, (OperationalError, InterfaceError)):
            # The database is down: the offline middleware answers (503).
            raise exc
        log.exception("API error on %s %s", request.method, request.path)
        return problem(
            500, "server_error", "Something broke on our side; nothing more is known."
        )
