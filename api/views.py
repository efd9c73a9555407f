"""/account/tokens/: a person's own API tokens, made and revoked in the console.
The secret is shown once, on the page that made it, and never again."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from incidents.actors import Actor

from . import tokens
from .models import ApiToken


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def token_list(request: HttpRequest) -> HttpResponse:
    made, error, status = None, "", 200
    if request.method == "POST":
        try:
            token, secret = tokens.create(
                user=request.user,
                name=request.POST.get("name", ""),
                scope=request.POST.get("scope", ""),
                actor=Actor.from_request(request),
            )
            made = {"token": token, "secret": secret}
        except tokens.TokenRefused as exc:
            error, status = str(exc), 400
    context = {
        "tokens": ApiToken.objects.filter(user=request.user),
        "made": made,
        "error": error,
        "scopes": ApiToken.Scope.choices,
        "kept": {
            "name": request.POST.get("name", "")[:60] if error else "",
            "scope": request.POST.get("scope", "read"),
        },
        "rate_limit": settings.API_RATE_LIMIT_PER_MINUTE,
    }
    return render(request, "api/tokens.html", context, status=status)


@login_required
@require_POST
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    # Only one's own: another person's token is not found (Admins revoke any
    # token from the admin).
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)
    tokens.revoke(token=token, actor=Actor.from_request(request))
    return redirect("api_tokens")
