"""Bad input never gives a 500: every view, every value it reads, hostile.

The walk comes from the URL patterns, so a new view without an entry in FIELDS
fails here until someone says what it reads. Each field is sent with each hostile
value while the others stay valid, with and without HTMX (HTMX answers read
`since` as well). A refusal (4xx) must leave the incidents, executions and audit
log exactly as they were: nothing half-written."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from incidents.actors import Actor
from incidents.models import AuditEvent, Command, Incident, StepExecution
from incidents.services import tick_step

HOSTILE = [
    "abc",
    "99999999999999999999999999",
    str(2**63),
    "-1",
    "",
    " ",
    "1.5",
    "ünïcode ✓ 日本語 \u202e",
    "a\x00b",
    "\x00",
    "x" * 100_000,
]

# What each view reads: method, then each field with a valid value. Path values are
# filled in by `concrete` and also tried out of range.
FIELDS: dict[str, tuple[str, dict[str, str]]] = {
    "playbook_list": ("get", {"q": "redis"}),
    "playbook_detail": ("get", {}),
    "playbook_access": ("get", {}),
    "playbook_grant": (
        "post",
        {"person": "{user}", "permission": "run_actions", "change": "grant"},
    ),
    "incident_list": ("get", {"status": "active", "severity": "high", "playbook": ""}),
    "incident_new": (
        "post",
        {"playbook": "{slug}", "title": "Hostile", "request_key": "k" * 32},
    ),
    "incident_detail": ("get", {}),
    "incident_status": ("post", {"status": "acknowledged", "since": "0"}),
    "incident_commander": ("post", {"commander": "{user}", "since": "0"}),
    "step_tick": (
        "post",
        {"state": "done", "expected": "", "reason": "why", "since": "0"},
    ),
    "note_add": (
        "post",
        {"text": "a note", "step": "1", "request_key": "n" * 32, "since": "0"},
    ),
    "incident_changes": ("get", {"since": "0"}),
    "incident_runs": ("get", {"step": "1", "page": "1"}),
    "command_run": (
        "post",
        {
            "confirmation": "",
            "preview": "",
            "break_glass_reason": "",
            "confirm_heavy": "1",
            "request_key": "r" * 32,
            "since": "0",
        },
    ),
    "command_preview": ("post", {"since": "0"}),
    "execution_detail": ("get", {}),
    "execution_decide": (
        "post",
        {"decision": "reject", "reason": "no", "since": "0"},
    ),
    "approval_queue": ("get", {}),
    "approval_decide": ("post", {"decision": "reject", "reason": "no"}),
    # Webhooks read a JSON body and a token (tests/alerts/test_hooks.py); here,
    # hostile form values without a token are refused and write only the denial.
    "alertmanager": ("post", {"status": "firing"}),
    "grafana": ("post", {"status": "firing"}),
    "alert_list": ("get", {}),
    "scenario_list": ("get", {}),
    "drill_start": ("post", {}),
    "drill_detail": ("get", {}),
    "drill_check": ("post", {}),
    "drill_abandon": ("post", {}),
    "drill_of_incident": ("get", {}),
    "command_simulate": ("post", {}),
    "triage_pick": ("post", {"playbook": "{slug}"}),
    "triage_dismiss": ("post", {"reason": "noise"}),
    "target_status": ("get", {}),
    "export_postmortem": ("get", {}),
    "export_json": ("get", {}),
    "export_csv": ("get", {}),
    "home": ("get", {}),
    "health_ready": ("get", {}),
    "health_live": ("get", {}),
    "login": ("post", {"username": "admin", "password": "wrong"}),
    "logout": ("post", {}),
    # Single sign-on's way in (SSO off here; tests/sso/ sends these with it on).
    "sso_sign_in": ("get", {"next": "/incidents/"}),
    "sso_callback": ("get", {"code": "c", "state": "s", "error": ""}),
    "password_change": (
        "post",
        {"old_password": "x", "new_password1": "y", "new_password2": "y"},
    ),
    "password_change_done": ("get", {}),
    "runbook_import": ("post", {"title": "Hostile", "allow_partial": "on"}),
    "runbook_import_confirm": ("post", {"review": "x"}),
    # Prometheus's scrape: a bearer token, never a session (tests/test_metrics.py).
    "metrics": ("get", {}),
    # Personal API tokens: a name and a scope.
    "api_tokens": ("post", {"name": "bot", "scope": "read"}),
    "api_token_revoke": ("post", {}),
    # The JSON API answers tokens, not sessions: here every hostile form value is a
    # 401 that writes only its denial. tests/api/test_api_hostile.py sends hostile
    # JSON to each operation with a token.
    **{
        name: ("get", {})
        for name in (
            "api-root",
            "openapi-json",
            "openapi-view",
            "list_playbooks",
            "read_playbook",
            "list_incidents",
            "read_incident",
            "list_executions",
            "read_execution",
            "read_timeline",
            "list_approvals",
            "list_alerts",
        )
    },
    **{
        name: ("post", {"text": "x"})
        for name in (
            "open_incident",
            "change_status",
            "change_commander",
            "tick_step",
            "add_note",
            "preview_action",
            "request_run",
            "decide",
        )
    },
}
# Signed out on purpose: signing in is what they do.
ANONYMOUS = {"login"}


def walk(patterns, prefix=""):  # noqa: ANN001, ANN201
    for p in patterns:
        if isinstance(p, URLResolver):
            if p.namespace == "admin":
                continue  # Django's own admin forms
            yield from walk(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield p.name, prefix + str(p.pattern)


# A refusal may record itself (that is the audit log's job), and nothing else.
REFUSALS = {"permission.denied", "login.failed", "login.locked_out"}


def counts() -> tuple[int, int, int]:
    return (
        Incident.objects.count(),
        StepExecution.objects.count(),
        AuditEvent.objects.exclude(verb__in=REFUSALS).count(),
    )


def awaiting(incident, requester) -> StepExecution:  # noqa: ANN001
    """A fresh action request waiting for a second person's approval."""
    action = Command.objects.filter(playbook=incident.playbook, kind="action").first()
    return StepExecution.objects.create(
        incident=incident,
        step=action.step,
        command=action,
        state=StepExecution.State.AWAITING_APPROVAL,
        requested_by=requester,
        command_text=action.text,
        fingerprint=action.fingerprint({}),
        approval_expires_at=timezone.now() + timedelta(minutes=15),
    )


@pytest.fixture
def world(incident, admin_user, settings):
    settings.RUN_WAIT_SECONDS = 0  # no waiting for a worker that is not there
    first, second = incident.playbook.steps.order_by("number")[:2]
    ticked = tick_step(
        incident=incident,
        step=first,
        state="done",
        expected=None,
        actor=Actor.person(admin_user),
    ).execution
    probe = Command.objects.filter(playbook=incident.playbook, kind="probe").first()
    return {
        "<int:pk>": str(incident.pk),
        # Nobody has ticked it: `expected` then names a tick that does not exist.
        "<int:number>": str(second.number),
        "<slug:slug>": incident.playbook.slug,
        "<slug>": incident.playbook.slug,
        "<int:command_id>": str(probe.pk),
        "<int:execution_id>": str(ticked.pk),
        "{slug}": incident.playbook.slug,
        "<slug:source>": "prod-am",
        "{user}": str(admin_user.pk),
    }


def fill(text: str, world: dict[str, str]) -> str:
    for placeholder, value in world.items():
        text = text.replace(placeholder, value)
    return text


def test_every_view_answers_hostile_values_without_a_500_or_a_half_write(
    world, admin_user, incident, commander
):
    routes = sorted(set(walk(get_resolver().url_patterns)))
    assert {name for name, _ in routes} == set(FIELDS), "say what each view reads"
    failures = []
    tried = 0

    def attempt(name, method, url, data, htmx, what):  # noqa: ANN001, ANN202
        nonlocal tried
        client = Client(raise_request_exception=False)
        if name not in ANONYMOUS:
            client.force_login(admin_user)
        if name in ("execution_decide", "approval_decide"):
            # A decision ends a request: each attempt decides a fresh one, so
            # every value reaches the code that reads it.
            fresh = awaiting(incident, commander)
            for where in ("executions", "approvals"):
                url = url.replace(
                    f"/{where}/{world['<int:execution_id>']}/",
                    f"/{where}/{fresh.pk}/",
                )
        before = counts()
        headers = {"HX-Request": "true"} if htmx else {}
        response = getattr(client, method)(url, data, headers=headers)
        tried += 1
        status = response.status_code
        if status >= 500:
            failures.append(f"{status} {method.upper()} {url} {what} htmx={htmx}")
        elif status >= 400 and counts() != before:
            failures.append(
                f"{status} but wrote: {before} -> {counts()} {url} {what} htmx={htmx}"
            )

    for name, route in routes:
        method, fields = FIELDS[name]
        url = fill("/" + route, world)
        assert "<" not in url, f"teach this test the converter in {route}"
        valid = {field: fill(value, world) for field, value in fields.items()}
        for htmx in (False, True):
            for field in valid:
                for value in HOSTILE:
                    data = {**valid, field: value}
                    attempt(name, method, url, data, htmx, f"{field}={value[:20]!r}")
            # Path numbers out of range or absent: a 404, never a crash.
            for placeholder in ("<int:pk>", "<int:number>", "<int:command_id>"):
                if placeholder in route:
                    for value in ("0", "99999999999999999999999999"):
                        bad = fill("/" + route.replace(placeholder, value), world)
                        attempt(name, method, bad, valid, htmx, placeholder)
            if "<int:execution_id>" in route:
                bad = fill("/" + route.replace("<int:execution_id>", str(2**70)), world)
                attempt(name, method, bad, valid, htmx, "execution_id")
    assert tried > 500
    assert not failures, "\n".join(failures)
    # The decisions reached the service (not just a 404 in front of it).
    rejected = StepExecution.objects.filter(state=StepExecution.State.REJECTED)
    assert rejected.count() > 10


def test_a_poll_with_a_bad_since_is_a_400_in_words(viewer_client, incident):
    response = viewer_client.get(f"/incidents/{incident.pk}/changes?since=abc")
    assert response.status_code == 400
    assert "'since' must be an event number" in response.content.decode()
    ok = viewer_client.get(
        f"/incidents/{incident.pk}/changes?since=0", headers={"HX-Request": "true"}
    )
    assert ok.status_code == 200 and "Redis is refusing" in ok.content.decode()


def test_a_tick_expecting_a_tick_nobody_made_is_refused_in_words(
    responder_client, incident
):
    before = counts()
    response = responder_client.post(
        f"/incidents/{incident.pk}/steps/2/tick",
        {"state": "done", "expected": "5"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert "Nobody has ticked step 2 yet" in response.content.decode()
    assert counts() == before


def test_a_bad_list_filter_is_a_400_in_words_not_everything(viewer_client, incident):
    response = viewer_client.get("/incidents/", {"status": "abc"})
    page = response.content.decode()
    assert response.status_code == 400
    assert "That filter is not valid: status: Select a valid choice" in page
    assert incident.title not in page  # not quietly the unfiltered list
    assert viewer_client.get("/incidents/", {"status": "open"}).status_code == 200


def test_an_over_long_search_is_a_400_in_words(viewer_client, yomira):
    response = viewer_client.get("/playbooks/", {"q": "redis " * 100})
    assert response.status_code == 400
    assert "Search for at most 200 characters." in response.content.decode()
