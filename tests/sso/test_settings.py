"""Single sign-on's settings in production: on only with an issuer and a client id,
never against a plain-http issuer, and `check --deploy` stays clean with it on."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT

PRODUCTION = {
    "DEBUG": "false",
    "SANDBOX": "false",
    "HTTPS": "true",
    "SECRET_KEY": "sso-settings-test-" + "x" * 40,
    "AUDIT_HMAC_KEY": "audit",
    "ALLOWED_HOSTS": "console.example.com",
    "DATABASE_URL": "postgres://u@db.example.com/yomira",
}
SSO = {
    "OIDC_ISSUER": "https://login.example.com/realms/ops",
    "OIDC_RP_CLIENT_ID": "yomira-console",
    "OIDC_RP_CLIENT_SECRET": "s3cret",
}
SHOW = (
    "from django.conf import settings as s; "
    "print(s.SSO_ENABLED, s.AUTHENTICATION_BACKENDS[-1], s.LOCAL_ACCOUNTS)"
)


def run(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    # The test run's own switch (async-unsafe ORM for Playwright) is not production's.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("OIDC_") and k != "DJANGO_ALLOW_ASYNC_UNSAFE"
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**env, **PRODUCTION, **extra},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_deploy_checks_are_clean_with_single_sign_on_on():
    done = run("check", "--deploy", "--fail-level", "WARNING", **SSO)
    assert done.returncode == 0, done.stderr


def test_it_is_on_with_an_issuer_and_a_client_id_only():
    on = run("shell", "-c", SHOW, **SSO, LOCAL_ACCOUNTS="false")
    assert on.stdout.splitlines()[-1].split() == [
        "True",
        "sso.backend.SSOBackend",
        "False",
    ], on.stderr
    off = run("shell", "-c", SHOW, OIDC_ISSUER=SSO["OIDC_ISSUER"])
    assert off.stdout.splitlines()[-1].split()[0::2] == ["False", "True"], off.stderr


def test_production_refuses_a_plain_http_issuer():
    done = run("check", **{**SSO, "OIDC_ISSUER": "http://login.example.com"})
    assert done.returncode != 0
    assert "OIDC_ISSUER must be an https:// address" in done.stderr
