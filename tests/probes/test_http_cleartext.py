"""`curl` to a plain `http://` host (issue 13): credentials are sent in clear text
only to a loopback or private address, or where the operator sends the host on
purpose (TARGET_HOSTS, a `${NAME}` base URL); otherwise the request is refused
before anything is sent. A request without credentials goes as written."""

from __future__ import annotations

import pytest
from pytest_httpserver import HTTPServer

from probes.commands import run
from probes.families import family
from probes.families.http.runner import cleartext_problem, credentials_in
from probes.runtime import Context
from tests.probes.bound import bind


@pytest.fixture
def token(monkeypatch) -> str:
    monkeypatch.setenv("TARGET_ADMIN_TOKEN", "tok-cleartext-123456")
    monkeypatch.delenv("TARGET_HOSTS", raising=False)
    return "tok-cleartext-123456"


@pytest.fixture
def server():
    with HTTPServer(host="127.0.0.1", port=0) as httpserver:
        httpserver.expect_request("/health").respond_with_data("ok")
        yield httpserver


def test_a_token_to_a_public_host_over_http_is_refused_before_sending(token):
    command = bind(
        'curl -H "Authorization: Bearer ${ADMIN_TOKEN}" '
        "http://api.example.com/admin/health"
    )
    result = run(command, {}, Context(connect_timeout=1, timeout=2))
    assert not result.ok
    assert result.summary == (
        "Refused: this request carries the Authorization header and would send it "
        "in clear text over http:// to api.example.com. Nothing was sent. Use "
        "https, or map the host in TARGET_HOSTS to where it should go."
    )
    assert token not in result.summary + result.output


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ("curl -u admin:${ADMIN_TOKEN} http://h.example.com/x", "a user and password"),
        ('curl -H "Cookie: s=1" http://h.example.com/x', "the Cookie header"),
        ('curl -H "X-Api-Key: abc" http://h.example.com/x', "the X-Api-Key header"),
        ('curl -H "X-Trace: ${ADMIN_TOKEN}" http://h.example.com/x', "X-Trace header"),
        (
            "curl http://h.example.com/x?token=${ADMIN_TOKEN}",
            "a target value in its URL",
        ),
        ("curl -d 'k=${ADMIN_TOKEN}' http://h.example.com/x", "in its body"),
    ],
)
def test_what_counts_as_a_credential(text, what, token):
    command = bind(text)
    assert what in credentials_in(command.spec)
    assert cleartext_problem(command.spec, command.spec["url"]).startswith("Refused")


def test_https_and_credential_free_requests_are_not_refused(token):
    with_token = bind(
        'curl -H "Authorization: Bearer ${ADMIN_TOKEN}" https://h.example.com/x'
    )
    assert cleartext_problem(with_token.spec, with_token.spec["url"]) == ""
    plain = bind("curl -s http://status.example.com/health")
    assert credentials_in(plain.spec) == ""
    assert cleartext_problem(plain.spec, plain.spec["url"]) == ""


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "localhost", "10.1.2.3", "192.168.0.9", "[::1]", "api.localhost"],
)
def test_a_loopback_or_private_address_may_carry_credentials(host, token):
    command = bind(f'curl -H "Authorization: Bearer ${{ADMIN_TOKEN}}" http://{host}/x')
    assert cleartext_problem(command.spec, command.spec["url"]) == ""


def test_a_token_to_a_loopback_server_is_sent(server, token):
    command = bind(
        'curl -H "Authorization: Bearer ${ADMIN_TOKEN}" '
        f"http://127.0.0.1:{server.port}/health"
    )
    result = run(command, {}, Context())
    assert result.ok, result.summary
    (request, _), *_ = server.log
    assert request.headers["Authorization"] == f"Bearer {token}"


def test_a_host_the_operator_maps_with_target_hosts_is_sent(server, token, monkeypatch):
    monkeypatch.setenv(
        "TARGET_HOSTS", f"api.example.com=http://127.0.0.1:{server.port}"
    )
    command = bind(
        'curl -H "Authorization: Bearer ${ADMIN_TOKEN}" http://api.example.com/health'
    )
    result = run(command, {}, Context())
    assert result.ok, result.summary
    assert len(server.log) == 1


def test_a_variable_base_url_is_the_operators_choice(server, token, monkeypatch):
    monkeypatch.setenv("TARGET_ES_URL", f"http://127.0.0.1:{server.port}")
    command = bind('curl -H "Authorization: Bearer ${ADMIN_TOKEN}" "${ES_URL}/health"')
    result = run(command, {}, Context())
    assert result.ok, result.summary


def test_an_actions_preview_says_it_would_be_refused(token):
    command = bind(
        'curl -X POST -H "Authorization: Bearer ${ADMIN_TOKEN}" '
        "http://api.example.com/admin/crawler/pause"
    )
    assert command.kind == "action"
    shown = family("http").preview(command, {}, Context())
    assert any(f.startswith("Refused: this request carries") for f in shown.facts)
    assert all(token not in f for f in shown.facts)
