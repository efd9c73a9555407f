"""The simulated API answers bad input with a clear 4xx, as the real one should;
its health document reports the mail relay; maintenance mode takes its load off."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from sandbox import faults, seed

from .helpers import run


def call(stack, method: str, path: str, body: bytes | None = None, token: bool = True):  # noqa: ANN001, ANN201
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {stack.refresh()['admin_token']}"
    request = urllib.request.Request(
        f"http://127.0.0.1:{stack.port('api')}{path}", data=body, headers=headers,
        method=method,
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "says"),
    [
        ("PATCH", "/api/v1/admin/crawler/sources/abc", b'{"isactive": false}', 400,
         "source id must be a number"),
        ("PATCH", "/api/v1/admin/crawler/sources/999", b'{"isactive": false}', 404,
         "no crawler source 999"),
        ("PATCH", "/api/v1/admin/crawler/sources/3", b'{"isactive": "no"}', 400,
         "isactive"),
        ("POST", "/api/v1/admin/users/not-a-uuid/sessions/revoke-all", None, 400,
         "must be a UUID"),
        ("POST", f"/api/v1/admin/users/{seed.SAMPLE_USER_ID[:-1]}0/sessions/revoke-all",
         None, 404, "no user"),
        ("PUT", "/api/v1/admin/settings", b"{not json", 400, "not JSON"),
        ("PUT", "/api/v1/admin/settings", b'{"key": "site.nothing", "value": "1"}', 404,
         "no setting"),
        ("PUT", "/api/v1/admin/settings", b'["key"]', 400, "JSON object"),
        ("POST", "/api/v1/admin/mail/send", b'{"to": "x"}', 400, "expected"),
        ("DELETE", "/api/v1/admin/crawler/pause", None, 404, "not found"),
    ],
)  # fmt: skip
def test_bad_input_gets_a_clear_4xx(sandbox_stack, method, path, body, status, says):  # noqa: ANN001, PLR0913
    got, answer = call(sandbox_stack, method, path, body)
    assert got == status and says in answer["error"]


def test_admin_endpoints_need_the_bearer_token(sandbox_stack):  # noqa: ANN001
    status, answer = call(
        sandbox_stack, "POST", "/api/v1/admin/crawler/pause", token=False
    )
    assert (status, answer) == (401, {"error": "unauthorized"})


def health(stack) -> tuple[int, dict]:  # noqa: ANN001
    return call(stack, "GET", "/health/ready", token=False)


def test_a_broken_mail_relay_shows_in_the_health_document_as_degraded(sandbox_stack):  # noqa: ANN001
    status, document = health(sandbox_stack)
    assert (status, document["status"], document["smtp"]) == (200, "ok", "ok")
    faults.inject(sandbox_stack, "smtp_broken")  # the relay refuses MAIL FROM
    try:
        status, document = health(sandbox_stack)
        # Mail is not the API's to serve (§7 step 5): degraded, still 200.
        assert status == 200
        assert document["smtp"] == "error" and document["status"] == "degraded"
        assert document["database"] == "ok"
        # What the drills' check reads: the §1 probe's output.
        probe = run(1, "curl https://api.yomira.app/health/ready")
        assert probe.ok and '"smtp": "error"' in probe.output
    finally:
        faults.heal(sandbox_stack, "smtp_broken")
    assert health(sandbox_stack)[1]["smtp"] == "ok"
    assert '"smtp": "ok"' in run(1, "curl https://api.yomira.app/health/ready").output


def test_a_stopped_mail_relay_is_an_smtp_error_too(sandbox_stack):  # noqa: ANN001
    sandbox_stack.part("smtp").stop()
    try:
        status, document = health(sandbox_stack)
        assert (status, document["smtp"], document["status"]) == (
            200,
            "error",
            "degraded",
        )
    finally:
        sandbox_stack.part("smtp").start()
    assert health(sandbox_stack)[1]["smtp"] == "ok"


def delayed(stack) -> float:  # noqa: ANN001
    """How many answers the API has held back by the injected delay."""
    url = f"http://127.0.0.1:{stack.port('api')}/metrics"
    with urllib.request.urlopen(url, timeout=10) as answer:
        text = answer.read().decode()
    return float(text.split("\nhttp_requests_delayed_total ")[1].split()[0])


def test_maintenance_mode_takes_the_injected_delay_off(sandbox_stack):  # noqa: ANN001
    faults.inject(sandbox_stack, "api_slow", delay_ms=400)
    try:
        before = delayed(sandbox_stack)
        assert health(sandbox_stack)[0] == 200
        assert delayed(sandbox_stack) == before + 1  # slow: the load is on
        # §2 step 5, as the runbook sends it: the setting in the database.
        assert run(2, "curl -X PUT https://api.yomira.app/api/v1/admin/settings").ok
        held = delayed(sandbox_stack)
        assert health(sandbox_stack)[0] == 200
        status, answer = call(sandbox_stack, "GET", "/api/v1/status", token=False)
        assert (status, answer["error"]) == (503, "maintenance")
        assert delayed(sandbox_stack) == held  # neither answer was held back
    finally:
        said = faults.heal(sandbox_stack, "api_slow")
    assert "maintenance mode off" in said  # the site reopens with the fix undone
    assert call(sandbox_stack, "GET", "/api/v1/status", token=False)[0] == 200


def test_a_slow_api_drill_starts_with_the_site_out_of_maintenance(sandbox_stack):  # noqa: ANN001
    # An earlier drill's fix left maintenance on: the load would be off already.
    assert run(2, "curl -X PUT https://api.yomira.app/api/v1/admin/settings").ok
    try:
        said = faults.inject(sandbox_stack, "api_slow", delay_ms=300)
        assert said.endswith("maintenance mode was on: turned off")
        before = delayed(sandbox_stack)
        assert call(sandbox_stack, "GET", "/api/v1/status", token=False)[0] == 200
        assert delayed(sandbox_stack) == before + 1
    finally:
        faults.heal(sandbox_stack, "api_slow")
