"""`/health/ready`: the console's own readiness (database and broker), as JSON.
Anonymous on purpose: load balancers and docker-compose ask it."""

from __future__ import annotations

import time

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET


def _database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except Exception:  # noqa: BLE001 - any failure means "not ready"
        return "error"


def _broker() -> str:
    from yomira_console.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=0, timeout=1)
        return "ok"
    except Exception:  # noqa: BLE001
        return "error"


@require_GET
def ready(request: HttpRequest) -> JsonResponse:
    started = time.monotonic()
    checks = {"database": _database(), "broker": _broker()}
    ok = all(v == "ok" for v in checks.values())
    body = {
        "status": "ok" if ok else "error",
        **checks,
        "elapsed_ms": round((time.monotonic() - started) * 1000, 1),
    }
    return JsonResponse(body, status=200 if ok else 503)


@require_GET
def live(request: HttpRequest) -> HttpResponse:
    """Liveness: the process answers. Also the benchmarks' trivial baseline view."""
    return HttpResponse("ok", content_type="text/plain")
