"""The way in through the identity provider (sso/authenticate/, sso/callback/) and
the way out (accounts/logout/), which ends the provider's session too where it
offers RP-initiated logout."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import auth, messages
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render, resolve_url
from django.utils.module_loading import import_string
from django.views.generic import View
from mozilla_django_oidc.views import (
    OIDCAuthenticationCallbackView,
    OIDCAuthenticationRequestView,
)

from . import config
from .backend import BACKEND, SignInRefused, SSOBackend, record_refusal

NOT_CONFIGURED = "Single sign-on is not configured on this console."


def _refused(request: HttpRequest, message: str) -> HttpResponse:
    """Back to the sign-in page, which says why."""
    messages.error(request, message)
    return redirect(settings.LOGIN_URL)


class SignInView(OIDCAuthenticationRequestView):
    """Sends the browser to the provider, with a state, a nonce and a PKCE
    challenge kept in the session (the library's view, with discovered endpoints)."""

    get_settings = staticmethod(config.get_setting)

    def __init__(self, **kwargs: Any) -> None:
        # Not the library's __init__: it reads the endpoint settings when the view
        # is made, before we know whether the provider answers.
        View.__init__(self, **kwargs)

    def get(self, request: HttpRequest) -> HttpResponse:
        if not config.enabled():
            return _refused(request, NOT_CONFIGURED)
        try:
            provider = config.provider()
        except config.DiscoveryError as exc:
            refusal = SignInRefused(
                "provider_unavailable", f"Single sign-on is unavailable: {exc}."
            )
            record_refusal(request, refusal)
            return _refused(request, refusal.message)
        self.OIDC_OP_AUTH_ENDPOINT = provider.authorization_endpoint
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID
        return super().get(request)


class CallbackView(OIDCAuthenticationCallbackView):
    """Where the provider sends the browser back. Every way this can go wrong (the
    provider's error, a state this browser did not start, a refused code, a token
    that fails a check, a person with no role) ends on the sign-in page with the
    reason, audited; never a 500 and never a session."""

    get_settings = staticmethod(config.get_setting)

    def get(self, request: HttpRequest) -> HttpResponse:
        if not config.enabled():
            return _refused(request, NOT_CONFIGURED)
        state = request.GET.get("state", "")
        states = request.session.get("oidc_states")
        entry = None
        if isinstance(states, dict) and state in states:
            # Good for one answer, even an error: a replayed callback finds nothing.
            entry = states.pop(state)
            request.session["oidc_states"] = states
        error = request.GET.get("error", "")
        if error:
            refusal = SignInRefused(
                "provider_error",
                f"The identity provider did not sign you in ({error[:100]}).",
                error=error[:100],
            )
            record_refusal(request, refusal)
            return _refused(request, refusal.message)
        if not isinstance(entry, dict):
            refusal = SignInRefused(
                "bad_state",
                "This sign-in expired or was started in another browser: sign in "
                "again.",
            )
            record_refusal(request, refusal)
            return _refused(request, refusal.message)
        backend = SSOBackend()
        try:
            user = backend.sign_in(
                request,
                nonce=entry.get("nonce"),
                code_verifier=entry.get("code_verifier"),
            )
        except SignInRefused as refusal:  # audited by sign_in
            return _refused(request, refusal.message)
        next_url = request.session.get("oidc_login_next")
        user.backend = BACKEND
        auth.login(request, user)
        # After login: signing in as another person flushes the session.
        request.session["oidc_id_token"] = backend.id_token
        return HttpResponseRedirect(
            next_url or resolve_url(settings.LOGIN_REDIRECT_URL)
        )


def provider_logout(request: HttpRequest) -> str | None:
    """The provider's end-session address for this session (the ID token as
    `id_token_hint`, back to the sign-in page afterwards), or None: not signed in
    through the provider, or it has no end_session_endpoint, or it cannot be
    asked now (then the console's own sign-out still happens)."""
    id_token = request.session.get("oidc_id_token")
    if not id_token or not config.enabled():
        return None
    try:
        endpoint = config.provider().end_session_endpoint
    except config.DiscoveryError:
        return None
    if not endpoint:
        return None
    query = urlencode(
        {
            "id_token_hint": id_token,
            "post_logout_redirect_uri": request.build_absolute_uri(
                resolve_url(settings.LOGIN_URL)
            ),
            "client_id": settings.OIDC_RP_CLIENT_ID,
        }
    )
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"


def provider_logout_url(request: HttpRequest) -> str:
    """mozilla-django-oidc's OIDC_OP_LOGOUT_URL_METHOD: where to go after signing
    out (the provider's end-session address, else the sign-in page)."""
    return provider_logout(request) or resolve_url(settings.LOGOUT_REDIRECT_URL)


class LogoutView(auth_views.LogoutView):
    """Django's sign-out, then, for a person who signed in through a provider that
    supports it, on to its end-session page. Not a redirect: the sign-out is a
    form, and the Content-Security-Policy's form-action 'self' forbids a form's
    redirect to another origin, so the page sends the browser on itself."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        target = None
        if request.user.is_authenticated:
            hook = import_string(settings.OIDC_OP_LOGOUT_URL_METHOD)
            target = hook(request)
            if target == resolve_url(settings.LOGOUT_REDIRECT_URL):
                target = None
        if target is None:
            return super().post(request, *args, **kwargs)
        auth.logout(request)
        response = render(
            request,
            "sso/signed_out.html",
            {"provider_url": target, "provider_name": config.provider_name()},
        )
        response["Refresh"] = f"0;url={target}"
        return response
