"""Hostile JSON to every API operation, with a token that may do everything: each
field of each body given every hostile value and every wrong type, and each path
number out of range. Never a 500, and a refusal writes nothing but its record."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import get_resolver

from api.tokens import create
from incidents.actors import Actor
from incidents.models import AuditEvent, Command, Incident, StepExecution
from tests.test_hostile_input import HOSTILE, walk

# Each operation's fields with a valid value ({...} filled in below).
BODIES: dict[str, dict[str, object]] = {
    "open_incident": {"playbook": "{slug}", "title": "t", "request_key": "k" * 12},
    "change_status": {"status": "acknowledged"},
    "change_commander": {"commander": "{username}"},
    "tick_step": {"state": "done", "reason": "r", "expected": 0},
    "add_note": {"text": "n", "step": 1, "request_key": "n" * 12},
    "preview_action": {"parameters": {"pid": "1"}},
    "request_run": {
        "parameters": {},
        "confirmation": "",
        "preview": "",
        "break_glass": False,
        "break_glass_reason": "",
        "confirm_heavy": False,
        "request_key": "r" * 12,
    },
    "decide": {"decision": "reject", "reason": "no"},
}
QUERIES: dict[str, dict[str, str]] = {
    "list_incidents": {
        "status": "active",
        "severity": "x",
        "playbook": "",
        "page": "1",
    },
    "list_alerts": {"status": "firing"},
}
WRONG_TYPES: list[object] = [None, 0, -1, 2**70, 1.5, True, [], ["a"], {}, {"a": 1}]
REFUSALS = {"permission.denied", "login.failed"}


def counts() -> tuple[int, int, int]:
    return (
        Incident.objects.count(),
        StepExecution.objects.count(),
        AuditEvent.objects.exclude(verb__in=REFUSALS).count(),
    )


@pytest.fixture
def world(incident, admin_user, commander, settings):
    settings.RUN_WAIT_SECONDS = 0
    settings.API_RATE_LIMIT_PER_MINUTE = 10**9
    probe = Command.objects.filter(playbook=incident.playbook, kind="probe").first()
    action = Command.objects.filter(playbook=incident.playbook, kind="action").first()
    waiting = StepExecution.objects.create(
        incident=incident,
        step=action.step,
        command=action,
        state=StepExecution.State.AWAITING_APPROVAL,
        requested_by=commander,
        command_text=action.text,
        fingerprint=action.fingerprint({}),
    )
    secret = create(
        user=admin_user, name="hostile", scope="write", actor=Actor.person(admin_user)
    )[1]
    return {
        "secret": secret,
        "<int:pk>": str(incident.pk),
        "<int:number>": "1",
        "<slug>": incident.playbook.slug,
        "<int:command_id>": str(probe.pk),
        "<int:execution_id>": str(waiting.pk),
        "{slug}": incident.playbook.slug,
        "{username}": commander.get_username(),
    }


def fill(value: object, world: dict[str, str]) -> object:
    if isinstance(value, str):
        for placeholder, real in world.items():
            value = value.replace(placeholder, real)
    return value


def test_every_operation_answers_hostile_json_without_a_500_or_a_half_write(world):
    client = Client(raise_request_exception=False)
    headers = {"Authorization": f"Bearer {world['secret']}"}
    routes = [
        (name, "/" + route)
        for name, route in sorted(set(walk(get_resolver().url_patterns)))
        if route.startswith("api/v1/") and name not in ("openapi-json", "openapi-view")
    ]
    assert len(routes) >= 15
    failures: list[str] = []
    tried = 0

    def attempt(method: str, url: str, payload: object, what: str) -> None:
        nonlocal tried
        before = counts()
        if method == "post":
            body = payload if isinstance(payload, str) else json.dumps(payload)
            response = client.post(
                url, body, content_type="application/json", headers=headers
            )
        else:
            response = client.get(url, payload, headers=headers)
        tried += 1
        if response.status_code >= 500:
            failures.append(f"{response.status_code} {method} {url} {what}")
        elif response.status_code >= 400:
            if counts() != before:
                failures.append(f"{response.status_code} but wrote: {url} {what}")
            if response.status_code != 404 or url.startswith("/api/v1/incidents"):
                problem = response.json().get("error", {})
                if not problem.get("message"):
                    failures.append(f"no error message: {url} {what}")

    for name, route in routes:
        url = str(fill(route, world))
        assert "<" not in url, f"teach this test the converter in {route}"
        if name in BODIES:
            valid = {k: fill(v, world) for k, v in BODIES[name].items()}
            for field in valid:
                for value in [*HOSTILE, *WRONG_TYPES]:
                    attempt(
                        "post", url, {**valid, field: value}, f"{field}={value!r:.20}"
                    )
            for raw in ("", "{", "[]", "null", '"x"', "{" * 5000, "\x00"):
                attempt("post", url, raw, f"body={raw[:10]!r}")
        else:
            valid = QUERIES.get(name, {})
            for field in valid:
                for value in HOSTILE:
                    attempt("get", url, {**valid, field: value}, f"{field}={value:.20}")
            attempt("get", url, valid, "valid")
        for placeholder in ("<int:pk>", "<int:number>", "<int:command_id>"):
            if placeholder in route:
                for value in ("0", "99999999999999999999999999"):
                    bad = str(fill(route.replace(placeholder, value), world))
                    method = "post" if name in BODIES else "get"
                    attempt(method, bad, BODIES.get(name, {}), placeholder)
    assert not failures, "\n".join(failures[:40])
    assert tried > 500
