"""The simulated API answers bad input with a clear 4xx, as the real one should."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from sandbox import seed


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
