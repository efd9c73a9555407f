"""The webhooks (Alertmanager, Grafana) and the alerts page with its triage list.

A webhook answers 4xx only for a request that can never succeed (Alertmanager never
retries a 4xx) and 503 when the console cannot take it now (it retries 5xx)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from incidents import access, audit
from incidents.access import permission_required
from incidents.actors import Actor, client_ip
from incidents.models import Playbook

from . import intake, sources, triage
from .models import Alert, AlertGroup, AlertSource
from .payloads import PayloadError, parse

log = logging.getLogger(__name__)
RATE_RETRY_AFTER = "30"
CANNOT_STORE = "The console cannot store alerts right now; retry."


@csrf_exempt
@require_POST
def alertmanager_hook(request: HttpRequest, source: str) -> HttpResponse:
    return _hook(request, source, AlertSource.Kind.ALERTMANAGER)


@csrf_exempt
@require_POST
def grafana_hook(request: HttpRequest, source: str) -> HttpResponse:
    return _hook(request, source, AlertSource.Kind.GRAFANA)


def _answer(status: int, message: str, **extra: object) -> JsonResponse:
    key = "error" if status >= 400 else "status"
    return JsonResponse({key: message, **extra}, status=status)


def _hook(request: HttpRequest, name: str, kind: str) -> HttpResponse:
    try:
        source = sources.lookup(name, kind)
    except DatabaseError:
        return _answer(503, CANNOT_STORE)
    body = b""
    cap = settings.ALERT_BODY_MAX_BYTES
    try:
        # The token first, before reading a body someone else may have sent.
        sources.authenticate(source, request, b"", signature=False)
        length = int(request.headers.get("Content-Length") or 0)
        if length > cap:
            return _refused(request, source, 413, f"The body is over {cap} bytes.")
        body = request.read(cap + 1)
        if len(body) > cap:
            return _refused(request, source, 413, f"The body is over {cap} bytes.")
        sources.authenticate(source, request, body)
    except sources.Unauthorized as exc:
        return _denied(request, name, str(exc))
    except ValueError:
        return _refused(request, source, 400, "Content-Length is not a number.")
    if sources.over_rate_limit(source):
        log.warning("alert source %s is over its rate limit", source.name)
        response = _answer(503, "Over this source's rate limit; retry later.")
        response["Retry-After"] = RATE_RETRY_AFTER
        return response
    try:
        body.decode()  # stored as text: UTF-16/32 JSON would be a 503 retried forever
        notification = parse(kind, body)
    except UnicodeDecodeError:
        return _refused(request, source, 400, "The body is not UTF-8.")
    except PayloadError as exc:
        return _refused(request, source, 400, str(exc))
    try:
        receipt = intake.receive(source=source, body=body, notification=notification)
    except intake.CannotStore:
        return _answer(503, CANNOT_STORE)
    return _answer(202, "accepted", receipt=receipt.pk, alerts=receipt.alert_count)


def _denied(request: HttpRequest, name: str, why: str) -> HttpResponse:
    """Unauthenticated: audited as a denial, the body never stored (401 or 404
    alike, so that the answer does not tell which source names exist). A flood
    from one address is audited up to DENIALS_AUDITED a minute, then logged and
    counted: the next audited denial says how many were not."""
    try:
        if not sources.audit_denial(request, "alerts.post", why, source=name[:64]):
            log.warning(
                "webhook denial from %s not audited (over the minute's budget)",
                client_ip(request),
            )
    except DatabaseError:
        return _answer(503, CANNOT_STORE)
    response = _answer(401, "Unauthorized: send the source's token as a Bearer token.")
    response["WWW-Authenticate"] = 'Bearer realm="alerts"'
    return response


def _refused(
    request: HttpRequest, source: AlertSource, status: int, message: str
) -> HttpResponse:
    """A body that can never succeed: audited (without the body), answered 4xx."""
    try:
        audit.append(
            "alert.refused",
            actor=Actor.system(f"alert-source:{source.name}"),
            obj=source,
            data={"source": source.name, "status": status, "why": message[:500]},
        )
    except DatabaseError:
        return _answer(503, CANNOT_STORE)
    return _answer(status, message)


# --- pages ----------------------------------------------------------------------


@permission_required(access.VIEW_INCIDENTS)
@require_GET
def alert_list(request: HttpRequest) -> HttpResponse:
    waiting = list(
        AlertGroup.objects.filter(triage=AlertGroup.Triage.WAITING, firing=True)
        .select_related("source")
        .prefetch_related("alerts")
        .order_by("-updated_at")[:100]
    )
    rows = Alert.objects.select_related(
        "group__source", "group__incident", "group__playbook"
    )
    # Every firing alert (one that has fired for hours stays listed after a storm
    # of newer ones), and the latest resolved ones.
    firing = list(rows.filter(status=Alert.Status.FIRING).order_by("-starts_at")[:500])
    resolved = list(
        rows.filter(status=Alert.Status.RESOLVED).order_by("-last_seen", "-id")[:100]
    )
    playbooks = list(Playbook.objects.current().order_by("number"))
    for group in waiting:
        group.candidate_playbooks = [
            p for p in playbooks if p.number in group.candidates
        ]
        group.firing_alerts = sorted(
            (a for a in group.alerts.all() if a.is_firing), key=lambda a: a.starts_at
        )
        group.since = group.firing_alerts[0].starts_at if group.firing_alerts else None
    context = {
        "waiting": waiting,
        "firing": firing,
        "resolved": resolved,
        "playbooks": playbooks,
        "can_triage": access.can(request.user, access.OPEN_INCIDENTS),
    }
    return render(request, "alerts/alert_list.html", context)


@permission_required(access.OPEN_INCIDENTS)
@require_POST
def triage_pick(request: HttpRequest, pk: int) -> HttpResponse:
    group = get_object_or_404(AlertGroup, pk=pk)
    wanted = request.POST.get("playbook", "")
    playbook = Playbook.objects.current().filter(slug=wanted).first()
    if playbook is None:
        return _triage_error(request, "Pick a playbook of the current runbook.")
    try:
        incident = triage.pick(
            group=group, playbook=playbook, actor=Actor.from_request(request)
        )
    except triage.TriageError as exc:
        return _triage_error(request, str(exc))
    return redirect(incident.get_absolute_url())


@permission_required(access.OPEN_INCIDENTS)
@require_POST
def triage_dismiss(request: HttpRequest, pk: int) -> HttpResponse:
    group = get_object_or_404(AlertGroup, pk=pk)
    try:
        triage.dismiss(
            group=group,
            reason=request.POST.get("reason", ""),
            actor=Actor.from_request(request),
        )
    except triage.TriageError as exc:
        return _triage_error(request, str(exc))
    return redirect("alerts:alert_list")


def _triage_error(request: HttpRequest, message: str) -> HttpResponse:
    return render(request, "alerts/triage_error.html", {"message": message}, status=400)
