"""Execution pieces without a worker: targets, redaction, what a person sees of a
command, the run view's checks, the execution fragment, the targets page."""

from __future__ import annotations

import pytest

from incidents.models import AuditEvent, Command, StepExecution
from probes import redaction, targets
from probes.commands import confirm_word, display_text, missing_targets


@pytest.fixture
def env(monkeypatch):
    monkeypatch.setenv(
        "TARGET_DATABASE_URL", "postgres://app:s3cr3t-pw@db.internal:5432/yomira"
    )
    monkeypatch.setenv("TARGET_ADMIN_TOKEN", "tok-abcdef123456")
    monkeypatch.setenv(
        "TARGET_HOSTS",
        "api.yomira.app=http://127.0.0.1:8001, cdn.yomira.app = http://127.0.0.1:8002",
    )
    monkeypatch.delenv("TARGET_REDIS_URL", raising=False)


def test_targets_come_from_the_environment(env):
    assert targets.value("ADMIN_TOKEN") == "tok-abcdef123456"
    assert targets.expand("Bearer ${ADMIN_TOKEN}") == "Bearer tok-abcdef123456"
    assert targets.host_map() == {
        "api.yomira.app": "http://127.0.0.1:8001",
        "cdn.yomira.app": "http://127.0.0.1:8002",
    }
    assert (
        targets.rewrite("https://api.yomira.app/api/v1/x?y=1")
        == "http://127.0.0.1:8001/api/v1/x?y=1"
    )
    assert (
        targets.rewrite("https://elsewhere.example/x") == "https://elsewhere.example/x"
    )
    with pytest.raises(
        targets.TargetMissing, match="set TARGET_REDIS_URL in the worker's environment"
    ):
        targets.expand("${REDIS_URL}")


def test_redaction_removes_every_kind_of_secret(env):
    text = (
        "dsn postgres://app:s3cr3t-pw@db.internal:5432/yomira password s3cr3t-pw\n"
        "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig tok-abcdef123456\n"
        "AKIAIOSFODNN7EXAMPLE aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"
        "redis://:hunter22@cache:6379/0 api_key=zzzz-1234"
    )
    clean = redaction.redact(text)
    for secret in [
        "s3cr3t-pw",
        "eyJhbGci",
        "tok-abcdef123456",
        "AKIAIOSFODNN7EXAMPLE",
        "wJalrXUtnFEMI",
        "hunter22",
        "zzzz-1234",
    ]:
        assert secret not in clean, secret
    assert (
        "@cache:6379/0" in clean
    )  # an unconfigured URL keeps its host, loses its password
    assert redaction.redact_data({"a": ["tok-abcdef123456"]}) == {"a": ["••••"]}


def test_display_text_keeps_runbook_hosts_fills_parameters_and_masks(env, yomira):
    revoke = Command.objects.get(playbook__number=12, executor="http")
    shown = display_text(revoke, {"userId": "u-42"})
    # The runbook's text: its own host, not where TARGET_HOSTS sends it.
    assert shown.startswith(
        "curl -X POST https://api.yomira.app/api/v1/admin/users/u-42/sessions"
    )
    assert "${ADMIN_TOKEN}" in shown and "tok-abcdef" not in shown
    sql = Command.objects.get(
        playbook__number=12, text__startswith="UPDATE users.session"
    )
    assert display_text(sql, {"$1": "u-42"}).endswith("-- bound: $1 = 'u-42'")


def test_each_action_has_a_word_from_its_own_command(yomira):
    def word(start: str) -> str:
        return confirm_word(Command.objects.get(kind="action", text__startswith=start))

    assert word("SELECT pg_cancel_backend(pid);") == "cancel"
    assert word("SELECT pg_terminate_backend(pid);") == "terminate"
    assert word("DROP TABLE IF EXISTS") == "drop"
    assert word("VACUUM FULL") == "vacuum"
    assert (
        word("curl -X POST https://api.yomira.app/api/v1/admin/crawler/pause")
        == "pause"
    )
    assert (
        word("curl -X POST https://api.yomira.app/api/v1/admin/users/{userId}")
        == "revoke-all"
    )
    assert word("PATCH /admin/crawler/sources/:id") == "sources"
    assert word('redis-cli -u "${REDIS_URL}" config set') == "config"
    assert (
        word(
            'migrate -database "${DATABASE_URL}" -path src/common/DML/migrations force'
        )
        == "force"
    )


def test_missing_targets_name_the_variables(env, yomira):
    ping = Command.objects.get(playbook__number=4, text__contains="ping")
    assert missing_targets(ping) == ["TARGET_REDIS_URL"]
    select = Command.objects.get(playbook__number=3, text__contains="SELECT 1")
    assert missing_targets(select) == []


def test_the_targets_page_says_what_is_set_never_the_value(env, viewer_client, yomira):
    page = viewer_client.get("/targets/").content.decode()
    assert "TARGET_DATABASE_URL ✓ set" in page and "TARGET_REDIS_URL ✗ not set" in page
    assert "api.yomira.app → mapped" in page
    assert "s3cr3t" not in page and "tok-abcdef" not in page


def run_url(incident, command) -> str:  # noqa: ANN001
    return f"/incidents/{incident.pk}/commands/{command.pk}/run"


def test_viewers_cannot_run_and_responders_cannot_run_actions(
    env, incident, viewer_client, responder_client
):
    ping = Command.objects.get(playbook=incident.playbook, text__contains="ping")
    policy = Command.objects.get(
        playbook=incident.playbook, text__contains="config set"
    )
    assert viewer_client.post(run_url(incident, ping)).status_code == 403
    assert (
        responder_client.post(
            run_url(incident, policy), {"confirmation": "config"}
        ).status_code
        == 403
    )
    denied = AuditEvent.objects.filter(verb="permission.denied").values_list(
        "data", flat=True
    )
    assert {d["permission"] for d in denied} == {
        "incidents.run_probes",
        "incidents.run_actions",
    }
    assert StepExecution.objects.count() == 0


def test_a_command_from_another_playbook_is_404(
    env, incident, commander_client, yomira
):
    other = Command.objects.filter(playbook__number=5).exclude(kind="manual").first()
    assert commander_client.post(run_url(incident, other)).status_code == 404


def test_a_refused_run_explains_itself(env, incident, responder_client):
    ping = Command.objects.get(playbook=incident.playbook, text__contains="ping")
    response = responder_client.post(run_url(incident, ping), HTTP_HX_REQUEST="true")
    assert response.status_code == 400
    assert "Not configured: set TARGET_REDIS_URL" in response.content.decode()


def test_the_execution_fragment_polls_until_terminal_then_answers_286(
    incident, commander, responder_client
):
    ping = Command.objects.get(playbook=incident.playbook, text__contains="ping")
    execution = StepExecution.objects.create(
        incident=incident,
        step=ping.step,
        command=ping,
        state="running",
        requested_by=commander,
    )
    url = f"/incidents/{incident.pk}/executions/{execution.pk}"
    running = responder_client.get(url)
    assert (
        running.status_code == 200
        and 'hx-trigger="every 400ms"' in running.content.decode()
    )
    StepExecution.objects.filter(pk=execution.pk).update(
        state="succeeded", summary="PING: PONG", output="PONG <script>x</script>"
    )
    done = responder_client.get(url)
    html = done.content.decode()
    assert done.status_code == 286 and "hx-trigger" not in html
    assert "PING: PONG" in html and "&lt;script&gt;" in html and "<script>x" not in html


def test_an_execution_of_another_incident_is_404(incident, commander, responder_client):
    ping = Command.objects.get(playbook=incident.playbook, text__contains="ping")
    execution = StepExecution.objects.create(
        incident=incident,
        step=ping.step,
        command=ping,
        state="running",
        requested_by=commander,
    )
    assert (
        responder_client.get(
            f"/incidents/{incident.pk + 1}/executions/{execution.pk}"
        ).status_code
        == 404
    )
