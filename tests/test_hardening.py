"""Sign-in lockout, Content-Security-Policy, and production settings."""

from __future__ import annotations

import os
import subprocess
import sys

from django.test import Client

from incidents.models import AuditEvent
from tests.conftest import PASSWORD, ROOT
from tests.http_client import csrf_of


def login(client, password: str, **extra):  # noqa: ANN001, ANN003, ANN201
    return client.post(
        "/accounts/login/", {"username": "rita", "password": password}, **extra
    )


def test_repeated_failures_lock_the_username_on_that_address(client, make_user):
    make_user("rita", "Responder")
    for _ in range(4):
        assert (
            login(client, "wrong").status_code == 200
        )  # the form again, with an error
    assert login(client, "wrong").status_code == 429  # the fifth failure locks
    locked = login(client, PASSWORD)  # even the right password, now
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.content.decode()
    assert "_auth_user_id" not in client.session
    assert AuditEvent.objects.filter(
        verb="login.locked_out", actor_name="rita"
    ).exists()
    # The same username from another address is not locked out with it.
    assert login(client, PASSWORD, REMOTE_ADDR="10.9.8.7").status_code == 302


def test_every_page_carries_a_strict_content_security_policy(
    responder_client, incident
):
    response = responder_client.get(f"/incidents/{incident.pk}/")
    policy = response["Content-Security-Policy"]
    assert "script-src 'self';" in policy and "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy and response["X-Frame-Options"] == "DENY"
    html = response.content.decode()
    # No inline script: every <script> has a src (htmx comes as a file).
    assert html.count("<script") == html.count("<script src=")
    assert "includeIndicatorStyles" in html  # htmx will not inject a <style> either


def test_production_settings_pass_the_deploy_check():
    # DJANGO_ALLOW_ASYNC_UNSAFE is the browser tests' own; production never sets it.
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env.update(
        DEBUG="false",
        HTTPS="true",
        ALLOWED_HOSTS="console.example.com",
        SECRET_KEY="a-long-random-production-secret-" + "x7Gq2" * 10,
        AUDIT_HMAC_KEY="audit-key",
        # `make run` writes SANDBOX=true into .env (a laptop's simulated stack),
        # which production settings refuse: a newcomer runs `make test` after it.
        SANDBOX="false",
    )
    proc = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no issues" in proc.stdout


def test_the_session_cookie_is_httponly_and_same_site(client, make_user):
    make_user("rita", "Responder")
    cookie = login(client, PASSWORD).cookies["sessionid"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"


def test_a_csrf_failure_is_audited_like_any_denial(responder, commander, incident):
    """Two real sessions: Cole's token with Rita's cookie is refused, recorded and
    answered with the console's own 403 page; Rita's own token still works."""
    rita, cole = Client(enforce_csrf_checks=True), Client(enforce_csrf_checks=True)
    rita.force_login(responder)
    cole.force_login(commander)
    rita_token = csrf_of(rita.get(f"/incidents/{incident.pk}/").content.decode())
    cole_token = csrf_of(cole.get(f"/incidents/{incident.pk}/").content.decode())
    url = f"/incidents/{incident.pk}/notes"
    before = AuditEvent.objects.count()
    refused = rita.post(url, {"text": "crossed", "csrfmiddlewaretoken": cole_token})
    assert refused.status_code == 403
    assert "Not allowed" in refused.content.decode()
    event = AuditEvent.objects.get(seq__gt=before, verb="permission.denied")
    assert event.actor_name == "rita" and event.data["permission"] == "csrf"
    assert event.data["path"] == url and "incorrect" in event.data["why"]
    assert not incident.events.filter(verb="note.added").exists()
    ok = rita.post(url, {"text": "mine", "csrfmiddlewaretoken": rita_token})
    assert ok.status_code in (200, 302)
    assert incident.events.filter(verb="note.added").count() == 1
