"""`manage.py alert_source`: the contract scripts rely on. `add` and `rotate` print
the token alone on the last line (`| tail -n 1`), it works at the webhook at once
(and a rotated one stops working), `list` never shows a token, and mistakes are
CommandErrors that say what to do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.test import Client

from alerts.models import AlertSource, digest
from incidents.models import AuditEvent
from tests.stack import database_url

from .test_hooks import grafana_body
from .test_routing import am_alert, am_body

ROOT = settings.BASE_DIR


def run(*args: str) -> list[str]:
    out = StringIO()
    call_command("alert_source", *args, stdout=out)
    return out.getvalue().splitlines()


def post(kind: str, name: str, token: str, body: dict) -> int:
    return (
        Client()
        .post(
            f"/hooks/{kind}/{name}",
            data=json.dumps(body),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {token}",
        )
        .status_code
    )


def test_add_prints_the_token_last_and_it_works(db, django_capture_on_commit_callbacks):
    lines = run("add", "grafana-prod", "--kind", "grafana")
    token = lines[-1]
    assert token == token.strip() and " " not in token and len(token) >= 43
    assert lines[:-1] == [
        "Created grafana source grafana-prod.",
        "Webhook: POST /hooks/grafana/grafana-prod with Authorization: Bearer <token>.",
        "The token (shown once):",
    ]
    source = AlertSource.objects.get(name="grafana-prod")
    assert source.kind == "grafana" and source.enabled
    assert source.token_sha256 == digest(token)
    assert source.rate_limit_per_minute == 600 and source.hmac_secret_env == ""
    created = AuditEvent.objects.get(verb="alert_source.created")
    assert created.actor_name == "manage.py alert_source"
    assert created.data == {"name": "grafana-prod", "kind": "grafana", "drill": False}
    with django_capture_on_commit_callbacks(execute=False):
        assert post("grafana", "grafana-prod", token, grafana_body()) == 202
        # The URL is the kind's: the Alertmanager hook does not know this source.
        assert post("alertmanager", "grafana-prod", token, am_body(am_alert())) == 401


def test_add_defaults_to_alertmanager_and_takes_its_options(db):
    lines = run(
        "add",
        "am-eu",
        "--rate-limit",
        "50",
        "--kind",
        "grafana",
        "--hmac-secret-env",
        "GRAFANA_EU_HMAC_SECRET",
    )
    source = AlertSource.objects.get(name="am-eu")
    assert (source.kind, source.rate_limit_per_minute, source.hmac_secret_env) == (
        "grafana",
        50,
        "GRAFANA_EU_HMAC_SECRET",
    )
    assert source.token_sha256 == digest(lines[-1])
    run("add", "am-us")
    assert AlertSource.objects.get(name="am-us").kind == "alertmanager"


def test_rotate_prints_a_new_token_and_the_old_one_stops(
    db, django_capture_on_commit_callbacks
):
    old = run("add", "prod-am")[-1]
    lines = run("rotate", "prod-am")
    new = lines[-1]
    assert new != old and len(new) >= 43
    assert lines[0] == "New token for prod-am; the old one no longer works."
    assert lines[-2] == "The token (shown once):"
    assert AlertSource.objects.get(name="prod-am").token_sha256 == digest(new)
    with django_capture_on_commit_callbacks(execute=False):
        assert post("alertmanager", "prod-am", old, am_body(am_alert())) == 401
        assert post("alertmanager", "prod-am", new, am_body(am_alert())) == 202
    rotated = AuditEvent.objects.get(verb="alert_source.token_rotated")
    assert rotated.data == {"name": "prod-am"}
    assert rotated.actor_name == "manage.py alert_source"


def test_list_shows_names_and_kinds_never_tokens(db):
    tokens = [run("add", "b-grafana", "--kind", "grafana")[-1], run("add", "a-am")[-1]]
    AlertSource.objects.filter(name="b-grafana").update(enabled=False)
    lines = run("list")
    assert len(lines) == 2
    assert lines[0].startswith("a-am\talertmanager\tenabled\ttoken set ")
    assert lines[0].endswith("\t600/min")
    assert lines[1].startswith("b-grafana\tgrafana\tdisabled\ttoken set ")
    text = "\n".join(lines)
    for token in tokens:
        assert token not in text
        assert digest(token) not in text


def test_list_with_no_sources(db):
    assert run("list") == ["No alert sources."]


def test_adding_a_name_that_exists_is_a_command_error(db):
    first = run("add", "prod-am")[-1]
    with pytest.raises(CommandError) as refused:
        run("add", "prod-am", "--kind", "grafana")
    assert str(refused.value) == (
        "A source named 'prod-am' exists: `alert_source rotate prod-am` gives it a "
        "new token."
    )
    source = AlertSource.objects.get(name="prod-am")
    assert source.kind == "alertmanager" and source.token_sha256 == digest(first)
    assert AuditEvent.objects.filter(verb="alert_source.created").count() == 1


@pytest.mark.parametrize(
    "name",
    ["prod am", "prod/am", "", "a" * 65, "é-source"],
    # Plain ids: mutmut hands them back to pytest, which cannot find escaped ones.
    ids=["space", "slash", "empty", "too-long", "non-ascii"],
)
def test_an_invalid_name_is_a_command_error(db, name):
    with pytest.raises(CommandError) as refused:
        run("add", name)
    assert str(refused.value).startswith(f"{name!r} is not a valid source name: ")
    assert not AlertSource.objects.exists()


def test_rotating_an_unknown_source_is_a_command_error(db):
    with pytest.raises(CommandError) as refused:
        run("rotate", "nope")
    assert str(refused.value) == "No alert source is named 'nope'."


def test_an_unknown_kind_is_refused(db):
    with pytest.raises(CommandError) as refused:
        run("add", "x", "--kind", "pagerduty")
    assert "invalid choice: 'pagerduty'" in str(refused.value)
    assert not AlertSource.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_as_a_real_command_with_tail(tmp_path):
    """What a deploy script does: `manage.py alert_source add ... | tail -n 1`."""
    db = settings.DATABASES["default"]
    url = database_url(db)
    env = {**os.environ, "DATABASE_URL": url}
    manage = f"{sys.executable} {ROOT / 'manage.py'}"
    script = f"set -o pipefail; {manage} alert_source add ci-grafana --kind grafana | tail -n 1"
    done = subprocess.run(
        ["bash", "-c", script],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    token = done.stdout.rstrip("\n")
    assert "\n" not in token and len(token) >= 43
    source = AlertSource.objects.get(name="ci-grafana")
    assert source.kind == "grafana" and source.token_sha256 == digest(token)
    assert post("grafana", "ci-grafana", token, grafana_body()) == 202

    again = subprocess.run(
        ["bash", "-c", f"{manage} alert_source add ci-grafana"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 1
    assert again.stdout == ""
    assert "A source named 'ci-grafana' exists" in again.stderr
    assert AlertSource.objects.count() == 1


def test_the_hmac_secret_must_be_named_as_one(db):
    """A source cannot be pointed at the console's own keys (or any other
    variable): the name must end in _HMAC_SECRET, which the redaction masks."""
    for wrong in ("SECRET_KEY", "AUDIT_HMAC_KEY", "grafana_hmac_secret"):
        with pytest.raises(CommandError, match="_HMAC_SECRET"):
            run("add", "g", "--kind", "grafana", "--hmac-secret-env", wrong)
    assert not AlertSource.objects.exists()


def test_grafana_headers_can_be_named(db):
    run(
        "add",
        "g",
        "--kind",
        "grafana",
        "--hmac-secret-env",
        "G_HMAC_SECRET",
        "--signature-header",
        "X-Signature",
        "--timestamp-header",
        "",
    )
    source = AlertSource.objects.get(name="g")
    assert (source.signature_header, source.timestamp_header) == ("X-Signature", "")
