"""The JSON API (/api/v1/): tokens, scopes, the pages' own checks, one error shape,
the rate limit, and four eyes that no script can get around."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.utils import timezone

from alerts.models import Alert, AlertGroup, AlertSource
from api import tokens
from api.models import ApiToken
from incidents.actors import Actor
from incidents.models import AuditEvent, Incident, Playbook, StepExecution
from incidents.services import open_incident
from tests.conftest import grant
from tests.stack import console_server
from tests.test_safety_matrix import live_pid


@pytest.fixture(autouse=True)
def targets_and_no_broker(monkeypatch):
    monkeypatch.setenv("TARGET_REDIS_URL", "redis://127.0.0.1:6379/14")
    monkeypatch.setenv("TARGET_DATABASE_URL", console_server("postgres"))
    sent: list[int] = []
    monkeypatch.setattr(
        "incidents.services.runs.dispatch",
        lambda pk, kind, task_id=None: sent.append(pk),
    )
    return sent


@pytest.fixture
def people(yomira, make_user):
    found = {
        "viewer": make_user("vera", "Viewer"),
        "responder": make_user("rita", "Responder"),
        "commander": make_user("cole", "Commander"),
        "granted": make_user("gina", "Commander"),
        "approver": make_user("abe", "Commander"),
        "nobody": make_user("nora"),
    }
    pool = Playbook.objects.current().get(number=5)
    grant(found["granted"], "run_actions", playbooks=[pool])
    grant(found["approver"], "approve_actions", playbooks=[pool])
    return found


def token_for(user, scope: str = "write", name: str = "script") -> str:  # noqa: ANN001
    return tokens.create(user=user, name=name, scope=scope, actor=Actor.person(user))[1]


class Api:
    """A client that sends one person's token."""

    def __init__(self, secret: str) -> None:
        # As a script: no CSRF cookie, and Django's CSRF check on (a token is not
        # a cookie a browser sends on its own, so the API needs none).
        self.client = Client(enforce_csrf_checks=True)
        self.headers = {"Authorization": f"Bearer {secret}"}

    def get(self, path: str, **query: object):  # noqa: ANN201
        return self.client.get(f"/api/v1{path}", query, headers=self.headers)

    def post(self, path: str, body: object = None):  # noqa: ANN201
        return self.client.post(
            f"/api/v1{path}",
            json.dumps(body if body is not None else {}),
            content_type="application/json",
            headers=self.headers,
        )


def as_(user, scope: str = "write") -> Api:  # noqa: ANN001
    return Api(token_for(user, scope))


def error_of(response) -> dict:  # noqa: ANN001
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"status", "code", "message", "fields"}
    assert body["error"]["status"] == response.status_code
    return body["error"]


# --- tokens ------------------------------------------------------------------------


def test_a_token_is_shown_once_stored_as_its_hash_and_audited(people):
    user = people["responder"]
    token, secret = tokens.create(
        user=user, name="  chat   bot ", scope="read", actor=Actor.person(user)
    )
    assert secret.startswith("yom_") and len(secret) > 40
    stored = ApiToken.objects.get(pk=token.pk)
    assert stored.name == "chat bot"
    assert secret not in repr(stored.__dict__)
    assert stored.sha256 == tokens.digest(secret) != secret
    made = AuditEvent.objects.filter(verb="api_token.created").latest("seq")
    assert made.data == {"name": "chat bot", "scope": "read", "owner": "rita"}
    assert secret not in json.dumps(made.data)


@pytest.mark.parametrize(
    ("name", "scope", "words"),
    [
        ("", "read", "Name the token"),
        ("x" * 61, "read", "Name the token"),
        ("a\x00b", "read", "printable"),
        ("bell\x07", "read", "printable"),
        ("bot", "admin", "Choose a scope"),
    ],
)
def test_a_token_needs_a_name_and_a_known_scope(people, name, scope, words):
    user = people["viewer"]
    with pytest.raises(tokens.TokenRefused, match=words):
        tokens.create(user=user, name=name, scope=scope, actor=Actor.person(user))
    assert not ApiToken.objects.exists()


def test_two_live_tokens_of_one_person_have_two_names(people):
    user = people["viewer"]
    token_for(user, "read", "bot")
    with pytest.raises(tokens.TokenRefused, match="already have a token named"):
        token_for(user, "read", "bot")
    tokens.revoke(token=ApiToken.objects.get(), actor=Actor.person(user))
    token_for(user, "read", "bot")  # the name is free again


def test_the_tokens_page_makes_shows_once_and_revokes(people):
    client = Client()
    client.force_login(people["responder"])
    page = client.post("/account/tokens/", {"name": "laptop", "scope": "write"})
    assert page.status_code == 200
    html = page.content.decode()
    secret = html.split("<code>yom_")[1].split("</code>")[0]
    assert Api("yom_" + secret).get("/playbooks").status_code == 200
    again = client.get("/account/tokens/").content.decode()
    assert secret not in again and "laptop" in again
    token = ApiToken.objects.get()
    assert client.post(f"/account/tokens/{token.pk}/revoke").status_code == 302
    assert Api("yom_" + secret).get("/playbooks").status_code == 401
    revoked = AuditEvent.objects.filter(verb="api_token.revoked").latest("seq")
    assert revoked.actor_name == "rita" and revoked.data["name"] == "laptop"


def test_the_tokens_page_refuses_in_words_and_keeps_the_input(people):
    client = Client()
    client.force_login(people["viewer"])
    page = client.post("/account/tokens/", {"name": "bot", "scope": "root"})
    assert page.status_code == 400
    assert "Choose a scope" in page.content.decode()
    assert 'value="bot"' in page.content.decode()


def test_nobody_revokes_another_persons_token(people):
    token_for(people["viewer"], "read", "mine")
    token = ApiToken.objects.get()
    client = Client()
    client.force_login(people["commander"])
    assert client.post(f"/account/tokens/{token.pk}/revoke").status_code == 404
    assert ApiToken.objects.get().live


def test_the_tokens_page_is_for_people_signed_in(db):
    assert Client().get("/account/tokens/").status_code == 302
    assert Client().post("/account/tokens/1/revoke").status_code == 302


# --- authentication, scope, errors ---------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer ",
        "Bearer yom_not-a-token",
        "Basic eW9tOng=",
        "Bearer " + "yom_" + "x" * 500,
        "Bearer yom_\u00e9\u0000",
    ],
)
def test_no_token_a_wrong_one_or_garbage_is_a_401_in_the_one_shape(people, header):
    headers = {"Authorization": header} if header is not None else {}
    before = AuditEvent.objects.filter(verb="permission.denied").count()
    response = Client().get("/api/v1/incidents", headers=headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert error_of(response)["code"] == "unauthenticated"
    assert AuditEvent.objects.filter(verb="permission.denied").count() == before + 1
    denial = AuditEvent.objects.filter(verb="permission.denied").latest("seq")
    assert (
        denial.data["permission"] == "api"
        and denial.data["path"] == "/api/v1/incidents"
    )


def test_a_session_alone_does_not_open_the_api(people):
    client = Client()
    client.force_login(people["commander"])
    assert client.get("/api/v1/incidents").status_code == 401


def test_a_deactivated_owner_or_a_revoked_token_is_refused(people):
    user = people["commander"]
    api = as_(user)
    assert api.get("/incidents").status_code == 200
    user.is_active = False
    user.save()
    assert api.get("/incidents").status_code == 401


def test_a_read_token_reads_and_may_not_write(people):
    api = as_(people["commander"], "read")
    assert api.get("/playbooks").status_code == 200
    response = api.post(
        "/incidents", {"playbook": "redis-down-unreachable", "title": "x"}
    )
    assert response.status_code == 403
    problem = error_of(response)
    assert (
        problem["code"] == "read_only_token" and "may only read" in problem["message"]
    )
    assert not Incident.objects.exists()
    denial = AuditEvent.objects.filter(verb="permission.denied").latest("seq")
    assert denial.data["why"] == "a read-only token"
    assert denial.actor_name == "cole via API token “script”"


def test_the_token_has_its_owners_rights_and_no_more(people):
    viewer = as_(people["viewer"])
    assert viewer.get("/incidents").status_code == 200
    response = viewer.post(
        "/incidents", {"playbook": "redis-down-unreachable", "title": "x"}
    )
    assert response.status_code == 403
    assert error_of(response)["code"] == "forbidden"
    nobody = as_(people["nobody"])
    for path in ("/playbooks", "/incidents", "/alerts"):
        assert nobody.get(path).status_code == 403, path


def test_bad_bodies_and_parameters_are_400s_naming_the_field(people):
    api = as_(people["commander"])
    response = api.post("/incidents", {"playbook": "no-such", "title": " "})
    assert response.status_code == 400
    problem = error_of(response)
    assert problem["code"] == "invalid"
    assert set(problem["fields"]) == {"playbook", "title"}
    assert "no current playbook 'no-such'" in problem["message"]
    response = api.client.post(
        "/api/v1/incidents",
        "{not json",
        content_type="application/json",
        headers=api.headers,
    )
    assert response.status_code == 400 and error_of(response)["code"] == "invalid"
    response = api.post("/incidents", {"title": 5})
    assert response.status_code == 400
    assert error_of(response)["fields"] == {"title": ["Input should be a valid string"]}
    response = api.get("/incidents", page="x")
    assert response.status_code == 400 and "page" in error_of(response)["fields"]
    response = api.get("/incidents", status="sleeping")
    assert response.status_code == 400 and "status" in error_of(response)["fields"]
    assert api.get("/incidents/99999").status_code == 404
    assert error_of(api.get("/incidents/99999"))["code"] == "not_found"
    assert api.get("/alerts", status="x").status_code == 400
    assert (
        api.post("/incidents", {"playbook": "redis\u0000", "title": "t"}).status_code
        == 400
    )


def test_the_rate_limit_is_per_token_and_counted_in_the_database(people, settings):
    settings.API_RATE_LIMIT_PER_MINUTE = 3
    api = as_(people["viewer"], "read")
    other = Api(token_for(people["viewer"], "read", "other"))
    assert [api.get("/playbooks").status_code for _ in range(3)] == [200] * 3
    limited = api.get("/playbooks")
    assert limited.status_code == 429
    assert error_of(limited)["code"] == "rate_limited"
    assert 1 <= int(limited["Retry-After"]) <= 60
    assert other.get("/playbooks").status_code == 200
    assert ApiToken.objects.get(name="script").last_used_at is not None


# --- reading -------------------------------------------------------------------------


def test_playbooks_list_and_read(people):
    api = as_(people["viewer"], "read")
    listed = api.get("/playbooks").json()
    assert [p["number"] for p in listed] == sorted(p["number"] for p in listed)
    pool = next(p for p in listed if p["number"] == 5)
    assert "DBPoolExhausted" in " ".join(pool["alerts"])
    one = api.get(f"/playbooks/{pool['slug']}").json()
    assert one["title"] == pool["title"] and one["steps"]
    commands = [c for step in one["steps"] for c in step["commands"]]
    assert any(c["kind"] == "action" and "pid" in c["parameters"] for c in commands)
    assert api.get("/playbooks/nope").status_code == 404


def test_incidents_list_open_read_and_the_opener_commands(people):
    api = as_(people["commander"])
    opened = api.post(
        "/incidents",
        {
            "playbook": "redis-down-unreachable",
            "title": "redis gone",
            "request_key": "k" * 10,
        },
    )
    assert opened.status_code == 201
    body = opened.json()
    assert body["commander"] == "cole" and body["status"] == "open"
    assert body["steps"][0]["state"] == "pending"
    again = api.post(
        "/incidents",
        {
            "playbook": "redis-down-unreachable",
            "title": "redis gone",
            "request_key": "k" * 10,
        },
    )
    assert again.json()["id"] == body["id"] and Incident.objects.count() == 1
    event = AuditEvent.objects.get(verb="incident.opened")
    assert event.actor_name == "cole via API token “script”"
    assert event.actor_id == people["commander"].pk
    listed = api.get("/incidents", status="active").json()
    assert listed["count"] == 1 and listed["results"][0]["id"] == body["id"]
    assert api.get("/incidents", status="resolved").json()["count"] == 0
    assert (
        api.get(f"/incidents/{body['id']}")
        .json()["url"]
        .endswith(f"/incidents/{body['id']}/")
    )


def test_status_commander_tick_and_note_go_through_the_services(people):
    cole = as_(people["commander"])
    pk = cole.post(
        "/incidents", {"playbook": "redis-down-unreachable", "title": "r"}
    ).json()["id"]
    assert (
        cole.post(f"/incidents/{pk}/status", {"status": "acknowledged"}).json()[
            "status"
        ]
        == "acknowledged"
    )
    conflict = cole.post(f"/incidents/{pk}/status", {"status": "acknowledged"})
    assert conflict.status_code == 409 and error_of(conflict)["code"] == "conflict"
    refused = cole.post(f"/incidents/{pk}/commander", {"commander": "rita"})
    assert refused.status_code == 400 and "commander" in error_of(refused)["fields"]
    handed = cole.post(f"/incidents/{pk}/commander", {"commander": "abe"})
    assert handed.json()["commander"] == "abe"
    assert (
        cole.post(f"/incidents/{pk}/commander", {"commander": None}).json()["commander"]
        is None
    )
    rita = as_(people["responder"])
    assert (
        rita.post(f"/incidents/{pk}/status", {"status": "resolved"}).status_code == 403
    )
    ticked = rita.post(
        f"/incidents/{pk}/steps/1/tick", {"state": "done", "expected": 0}
    )
    assert ticked.json()["steps"][0]["state"] == "done"
    stale = rita.post(
        f"/incidents/{pk}/steps/1/tick", {"state": "reopened", "expected": 0}
    )
    assert (
        stale.status_code == 409
        and "while you were looking" in error_of(stale)["message"]
    )
    no_reason = rita.post(f"/incidents/{pk}/steps/1/tick", {"state": "skipped"})
    assert no_reason.status_code == 400 and "reason" in error_of(no_reason)["fields"]
    assert (
        rita.post(f"/incidents/{pk}/steps/999/tick", {"state": "done"}).status_code
        == 404
    )
    note = rita.post(f"/incidents/{pk}/notes", {"text": "cache cold", "step": 1})
    assert note.status_code == 201 and note.json()["text"] == "cache cold"
    assert rita.post(f"/incidents/{pk}/notes", {"text": "  "}).status_code == 400
    vera = as_(people["viewer"])
    assert vera.post(f"/incidents/{pk}/notes", {"text": "hi"}).status_code == 403
    timeline = vera.get(f"/incidents/{pk}/timeline")
    assert timeline.status_code == 200
    events = json.loads(b"".join(timeline.streaming_content))["events"]
    verbs = [e["verb"] for e in events]
    assert "note.added" in verbs and "step.done" in verbs
    assert any(e["actor"] == "rita via API token “script”" for e in events)


def test_alerts_are_listed(people):
    source = AlertSource.objects.create(
        name="am", kind="alertmanager", token_sha256="0" * 64
    )
    group = AlertGroup.objects.create(
        source=source, key_sha256="1" * 64, group_key="{}"
    )
    Alert.objects.create(
        group=group,
        fingerprint="f" * 16,
        starts_at=timezone.now(),
        status="firing",
        name="RedisDown",
        labels={"alertname": "RedisDown"},
    )
    api = as_(people["viewer"], "read")
    firing = api.get("/alerts").json()
    assert [a["name"] for a in firing] == ["RedisDown"] and firing[0]["source"] == "am"
    assert api.get("/alerts", status="resolved").json() == []


# --- runs and four eyes ----------------------------------------------------------------


@pytest.fixture
def pool(people):
    incident = open_incident(
        playbook=Playbook.objects.current().get(number=5),
        title="pool",
        actor=Actor.person(people["commander"]),
    )
    terminate = incident.playbook.commands.get(text__startswith="SELECT pg_terminate")
    return incident, terminate


def test_a_probe_runs_at_once_through_the_api(
    people, targets_and_no_broker, django_capture_on_commit_callbacks
):
    rita = as_(people["responder"])
    pk = rita.post(
        "/incidents", {"playbook": "redis-down-unreachable", "title": "r"}
    ).json()["id"]
    incident = Incident.objects.get(pk=pk)
    ping = incident.playbook.commands.get(text__contains="ping")
    with django_capture_on_commit_callbacks(execute=True):
        ran = rita.post(f"/incidents/{pk}/commands/{ping.pk}/runs", {})
    assert ran.status_code == 202
    execution = ran.json()["execution"]
    assert execution["state"] == "queued" and ran.json()["created"]
    assert targets_and_no_broker == [execution["id"]]
    read = rita.get(f"/incidents/{pk}/executions/{execution['id']}").json()
    assert read["command_text"] == execution["command_text"]
    assert [e["id"] for e in rita.get(f"/incidents/{pk}/executions").json()] == [
        execution["id"]
    ]
    assert rita.get(f"/incidents/{pk}/executions/999999").status_code == 404


def test_an_action_cannot_run_without_preview_word_and_approval(
    people, pool, targets_and_no_broker, django_capture_on_commit_callbacks
):
    incident, terminate = pool
    gina = as_(people["granted"])
    base = f"/incidents/{incident.pk}/commands/{terminate.pk}"
    pid = {"pid": live_pid()}
    # No word, no preview: refused, nothing queued.
    for body in (
        {"parameters": pid},
        {"parameters": pid, "confirmation": "terminate"},
        {"parameters": pid, "confirmation": "terminate", "preview": "forged"},
    ):
        response = gina.post(f"{base}/runs", body)
        assert response.status_code == 409, body
        assert error_of(response)["code"] == "refused"
    assert not StepExecution.objects.filter(command=terminate).exists()
    # A preview, then a run that carries it and the word: it waits for a second
    # person, whoever asked through whatever door.
    shown = gina.post(f"{base}/preview", {"parameters": pid}).json()
    assert shown["confirmation"] == "terminate" and shown["preview"]
    wrong_word = gina.post(
        f"{base}/runs",
        {"parameters": pid, "confirmation": "yes", "preview": shown["preview"]},
    )
    assert (
        wrong_word.status_code == 409 and "terminate" in error_of(wrong_word)["message"]
    )
    other_params = gina.post(
        f"{base}/runs",
        {
            "parameters": {"pid": "1"},
            "confirmation": "terminate",
            "preview": shown["preview"],
        },
    )
    assert other_params.status_code == 409
    ran = gina.post(
        f"{base}/runs",
        {"parameters": pid, "confirmation": "terminate", "preview": shown["preview"]},
    )
    assert ran.status_code == 202
    assert ran.json()["execution"]["state"] == StepExecution.State.AWAITING_APPROVAL
    # The same preview confirms nothing more.
    reuse = gina.post(
        f"{base}/runs",
        {
            "parameters": pid,
            "confirmation": "terminate",
            "preview": shown["preview"],
            "request_key": "another-key",
        },
    )
    assert reuse.status_code in (202, 409)
    assert StepExecution.objects.filter(command=terminate).count() == 1
    # Without the playbook's grant, no preview at all.
    cole = as_(people["commander"])
    assert cole.post(f"{base}/preview", {"parameters": pid}).status_code == 403
    # Four eyes: the requester cannot approve their own request, through the API
    # either; someone without approve_actions cannot; the approver can.
    execution_id = ran.json()["execution"]["id"]
    decision = f"/incidents/{incident.pk}/executions/{execution_id}/decision"
    own = gina.post(decision, {"decision": "approve"})
    assert own.status_code == 403
    assert "someone else must approve" in error_of(own)["message"]
    assert cole.post(decision, {"decision": "approve"}).status_code == 403
    assert gina.get("/approvals").json() == []
    abe = as_(people["approver"])
    assert [e["id"] for e in abe.get("/approvals").json()] == [execution_id]
    assert abe.post(decision, {"decision": "maybe"}).status_code == 400
    assert StepExecution.objects.get(pk=execution_id).state == "awaiting_approval"
    with django_capture_on_commit_callbacks(execute=True):
        approved = abe.post(decision, {"decision": "approve", "reason": "seen it"})
    assert approved.status_code == 200
    assert approved.json()["approved_by"] == "abe"
    assert approved.json()["state"] == "queued"
    assert targets_and_no_broker == [execution_id]
    again = abe.post(decision, {"decision": "approve"})
    assert again.status_code == 409 and "already approved" in error_of(again)["message"]


def test_breaking_glass_through_the_api_needs_a_reason_and_a_commander(people, pool):
    incident, terminate = pool
    gina = as_(people["granted"])
    base = f"/incidents/{incident.pk}/commands/{terminate.pk}"
    pid = {"pid": live_pid()}
    shown = gina.post(f"{base}/preview", {"parameters": pid}).json()
    no_reason = gina.post(
        f"{base}/runs",
        {
            "parameters": pid,
            "confirmation": "terminate",
            "preview": shown["preview"],
            "break_glass": True,
        },
    )
    assert no_reason.status_code == 409 and "reason" in error_of(no_reason)["message"]
    assert not StepExecution.objects.filter(command=terminate).exists()


def test_a_read_token_cannot_preview_or_run(people, pool):
    incident, terminate = pool
    reader = as_(people["granted"], "read")
    base = f"/incidents/{incident.pk}/commands/{terminate.pk}"
    assert (
        reader.post(f"{base}/preview", {"parameters": {"pid": "1"}}).status_code == 403
    )
    assert reader.post(f"{base}/runs", {"parameters": {"pid": "1"}}).status_code == 403
    assert not AuditEvent.objects.filter(verb="execution.previewed").exists()


def test_the_openapi_schema_and_docs_are_for_people_signed_in(people):
    assert Client().get("/api/v1/openapi.json").status_code == 302
    client = Client()
    client.force_login(people["viewer"])
    schema = client.get("/api/v1/openapi.json").json()
    paths = set(schema["paths"])
    assert "/api/v1/incidents/{pk}/commands/{command_id}/runs" in paths
    assert "Error" in schema["components"]["schemas"]
    docs = client.get("/api/v1/docs")
    assert docs.status_code == 200 and b"swagger" in docs.content.lower()


def test_an_admin_revokes_anyones_token_and_sees_no_hash(people, admin_user):
    secret = token_for(people["viewer"], "read", "bot")
    token = ApiToken.objects.get()
    client = Client()
    client.force_login(admin_user)
    page = client.get(f"/admin/api/apitoken/{token.pk}/change/").content.decode()
    assert "bot" in page and token.sha256 not in page and secret not in page
    assert client.get("/admin/api/apitoken/add/").status_code == 403
    assert client.get(f"/admin/api/apitoken/{token.pk}/delete/").status_code == 403
    client.post(
        "/admin/api/apitoken/",
        {"action": "revoke", "_selected_action": [token.pk]},
    )
    assert not ApiToken.objects.get().live
    assert Api(secret).get("/playbooks").status_code == 401
    revoked = AuditEvent.objects.filter(verb="api_token.revoked").latest("seq")
    assert revoked.actor_name == admin_user.username
    assert revoked.data["owner"] == "vera"


def test_with_the_database_down_the_api_answers_in_its_own_shape(db):
    """The offline middleware answers while PostgreSQL is unreachable: a script
    gets the API's error shape and a Retry-After, not the outage page."""
    from django.test import RequestFactory

    from yomira_console import offline

    for method in ("get", "post"):
        request = getattr(RequestFactory(), method)("/api/v1/incidents")
        response = offline.offline_answer(request)
        assert response.status_code == 503
        assert response["Retry-After"] == "30"
        assert response["X-Console-Database"] == "unreachable"
        problem = json.loads(response.content)["error"]
        assert problem["status"] == 503 and problem["code"] == "unavailable"
        assert "nothing was read, saved or run" in problem["message"]
    page = offline.offline_answer(RequestFactory().get("/incidents/"))
    assert page.status_code == 503 and page["Content-Type"].startswith("text/html")
