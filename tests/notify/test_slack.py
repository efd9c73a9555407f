"""Slack: the Block Kit message when an incident opens (link, severity, status,
playbook, the Diagnosis results), text from people and alerts escaped, a short
line for the later changes, and a first message that waits a little for
Diagnosis probes still running."""

from __future__ import annotations

import pytest

from incidents.models import Command, StepExecution
from notify import services
from notify.models import Notification

from .conftest import SLACK_PATH, assert_secret_nowhere, bodies, events, move, open_


@pytest.fixture
def accepting(httpserver):
    httpserver.expect_request(SLACK_PATH, method="POST").respond_with_data("ok")
    return httpserver


def diagnosis_run(incident, state: str, summary: str = "", text: str = ""):  # noqa: ANN001, ANN201
    command = Command.objects.filter(
        playbook=incident.playbook, step__isnull=True, kind="probe"
    ).first()
    return StepExecution.objects.create(
        incident=incident,
        step=None,
        command=command,
        state=state,
        summary=summary,
        command_text=text or command.text,
    )


def all_text(message: dict) -> str:
    """Every text of a Block Kit message that Slack reads as markup, in order."""
    found = [message["text"]]
    for block in message["blocks"]:
        if "text" in block and block["text"]["type"] == "mrkdwn":
            found.append(block["text"]["text"])
        found += [field["text"] for field in block.get("fields", [])]
        found += [element["text"] for element in block.get("elements", [])]
    return "\n".join(found)


def test_the_opening_message_links_the_incident_and_carries_its_diagnosis(
    yomira, slack, accepting, committed, commander_actor
):
    from incidents.services import open_incident

    from .conftest import playbook

    with committed():
        incident = open_incident(
            playbook=playbook(2), title="p95 at 2 s", actor=commander_actor
        )
        diagnosis_run(
            incident,
            "succeeded",
            "min 0.1 max 0.4 avg 0.2",
            "docker compose exec redis redis-cli --latency-history -i 1",
        )

    (message,) = bodies(accepting, SLACK_PATH)
    url = f"https://console.yomira.test/incidents/{incident.pk}/"
    header, summary, diagnosis, footer = message["blocks"]
    assert header == {
        "type": "header",
        "text": {"type": "plain_text", "text": f"Incident #{incident.pk} p95 at 2 s"},
    }
    assert summary["text"]["text"] == (
        f":rotating_light: *<{url}|#{incident.pk} p95 at 2 s>* (opened by cole)"
    )
    assert [f["text"] for f in summary["fields"]] == [
        "*Severity*\nwarning",
        "*Status*\nopen",
        "*Playbook*\n§2 High API Latency",
    ]
    assert diagnosis["text"]["text"] == (
        "*Diagnosis*\n• `docker compose exec redis redis-cli --latency-history -i 1`"
        " succeeded: min 0.1 max 0.4 avg 0.2"
    )
    assert url in footer["elements"][0]["text"]
    assert (
        message["text"] == f":rotating_light: WARNING <{url}|#{incident.pk} p95 at 2 s>"
    )
    assert Notification.objects.get(incident=incident).state == "sent"
    assert_secret_nowhere()


def test_text_from_people_and_alerts_cannot_become_markup(
    yomira, slack, accepting, committed, commander_actor
):
    from incidents.services import open_incident

    from .conftest import playbook

    title = "<!channel> ping & <https://evil.test|click>"
    with committed():
        incident = open_incident(
            playbook=playbook(2), title=title, actor=commander_actor
        )
        diagnosis_run(incident, "failed", "error: <@U123> & <!here>")

    (message,) = bodies(accepting, SLACK_PATH)
    text = all_text(message)
    assert "<!channel>" not in text and "<!here>" not in text and "<@U123>" not in text
    assert "<https://evil.test" not in text
    escaped = "&lt;!channel&gt; ping &amp; &lt;https://evil.test|click&gt;"
    assert f"|#{incident.pk} {escaped}>" in message["blocks"][1]["text"]["text"]
    assert "error: &lt;@U123&gt; &amp; &lt;!here&gt;" in text
    # plain_text is never parsed: the header keeps the title as it is.
    assert message["blocks"][0]["text"]["text"] == f"Incident #{incident.pk} {title}"


def test_acknowledge_and_resolve_post_a_short_line(
    yomira, slack, accepting, committed, commander_actor
):
    incident = open_(committed, commander_actor, 2, "Slow")
    move(committed, incident, "acknowledged", commander_actor)
    move(committed, incident, "resolved", commander_actor)

    _, acknowledged, resolved = bodies(accepting, SLACK_PATH)
    link = f"<https://console.yomira.test/incidents/{incident.pk}/|#{incident.pk} Slow>"
    assert acknowledged["text"] == f":eyes: {link}: acknowledged by cole"
    assert resolved["text"] == f":white_check_mark: {link}: resolved by cole"
    assert len(resolved["blocks"]) == 1


def test_a_first_message_waits_for_diagnosis_still_running(
    yomira, slack, accepting, committed, commander_actor, settings
):
    settings.NOTIFY_SEND = False  # make the row, send nothing yet
    incident = open_(committed, commander_actor, 2)
    row = Notification.objects.get(incident=incident)
    Notification.objects.filter(pk=row.pk).update(state="queued")
    settings.NOTIFY_SEND = True
    diagnosis_run(incident, "running")

    assert services.deliver(row.pk) == services.Outcome("queued", wait=5.0)
    assert services.deliver(row.pk, waited=2).state == "sent"  # waited enough
    assert accepting.log and "running" in all_text(bodies(accepting, SLACK_PATH)[0])


def test_after_its_waits_the_message_goes_with_what_there_is(
    yomira, slack, accepting, committed, commander_actor
):
    from incidents.services import open_incident

    from .conftest import playbook

    with committed():
        incident = open_incident(playbook=playbook(2), title="t", actor=commander_actor)
        diagnosis_run(incident, "queued")
    (message,) = bodies(accepting, SLACK_PATH)
    assert "queued" in message["blocks"][2]["text"]["text"]
    assert [e.data["attempt"] for e in events()] == [1]  # waiting is no attempt


def test_a_finished_diagnosis_or_an_old_row_sends_at_once(
    yomira, slack, accepting, committed, commander_actor, settings
):
    settings.NOTIFY_SEND = False
    incident = open_(committed, commander_actor, 2)
    row = Notification.objects.get(incident=incident)
    run = diagnosis_run(incident, "running")
    assert services.diagnosis_wait(row, 0) == 5.0
    run.state = "succeeded"
    run.save()
    assert services.diagnosis_wait(row, 0) is None
    run.state = "running"
    run.save()
    Notification.objects.filter(pk=row.pk).update(
        created_at=row.created_at.replace(year=2020)
    )
    row.refresh_from_db()
    assert services.diagnosis_wait(row, 0) is None


def test_an_unset_webhook_url_fails_with_the_variable_to_set(
    yomira, slack, accepting, committed, commander_actor, monkeypatch
):
    monkeypatch.delenv("SLACK_WEBHOOK_URL")
    open_(committed, commander_actor, 2)
    (failed,) = events()
    assert failed.data["error"] == (
        "Set SLACK_WEBHOOK_URL (the webhook URL of the channel 'Slack') in the "
        "environment of the console and its workers: it is not set."
    )
    assert failed.data["will_retry"] is False and accepting.log == []


def test_slacks_refusal_is_stored_without_the_webhook_url(
    yomira, slack, httpserver, committed, commander_actor, monkeypatch
):
    # A server that echoes the URL it was called on: the answer must not keep it.
    def echo(request):  # noqa: ANN001, ANN202
        from werkzeug import Response

        return Response(f"no_service for {request.url}", status=404)

    httpserver.expect_request(SLACK_PATH, method="POST").respond_with_handler(echo)
    incident = open_(committed, commander_actor, 2)
    row = Notification.objects.get(incident=incident)
    assert (row.state, row.status_code) == ("failed", 404)
    assert row.answer.startswith("no_service for ") and "••••" in row.answer
    assert_secret_nowhere()


def test_an_alert_opened_incident_waits_for_its_diagnosis_to_be_queued(
    yomira, slack, committed, settings
):
    from incidents.actors import Actor
    from incidents.services import open_incident

    from .conftest import playbook

    settings.NOTIFY_SEND = False
    with committed():
        incident = open_incident(
            playbook=playbook(2),
            title="HighLatency",
            actor=Actor.system("alert-intake"),
        )
    row = Notification.objects.get(incident=incident)
    assert services.diagnosis_wait(row, 0) == 5.0  # its probes are not queued yet
    diagnosis_run(incident, "succeeded", "ok")
    assert services.diagnosis_wait(row, 0) is None


def test_nothing_to_wait_for_once_diagnosis_started_with_nothing_to_run(
    yomira, slack, committed, settings, monkeypatch
):
    """§6's one Diagnosis probe needs a target this console lacks: once its
    diagnosis has started (and skipped it), the first message goes at once
    instead of waiting the delay out."""
    monkeypatch.delenv("TARGET_DATABASE_URL", raising=False)
    from incidents.actors import Actor
    from incidents.services import DIAGNOSIS, open_incident, run_diagnosis

    from .conftest import playbook

    settings.NOTIFY_SEND = False
    with committed():
        incident = open_incident(
            playbook=playbook(6, ["Slack"]),
            title="Crawler jobs stuck",
            actor=Actor.system("alert-intake"),
        )
    row = Notification.objects.get(incident=incident)
    assert services.diagnosis_wait(row, 0) == 5.0  # not started yet
    assert run_diagnosis(incident=incident, actor=DIAGNOSIS).skipped
    assert services.diagnosis_wait(row, 0) is None


def test_a_malformed_webhook_url_is_a_recorded_failure_with_the_secret_masked(
    yomira, db, monkeypatch, committed, commander_actor
):
    """An admin's typo in SLACK_WEBHOOK_URL (an unclosed `[`): the send fails, and
    the failure is recorded with the URL's token masked; masking the error used to
    parse the same URL and raise again, leaving the notification `sending`."""
    from notify.models import Channel

    from .conftest import open_

    token_path = "/services/T0/B0/malformed-token-8c1d"
    monkeypatch.setenv("SLACK_WEBHOOK_URL", f"http://[yomira-hooks.test{token_path}")
    Channel.objects.create(name="Slack", kind="slack", secret_env="SLACK_WEBHOOK_URL")
    incident = open_(committed, commander_actor, 2)
    (sent,) = Notification.objects.filter(incident=incident)
    assert sent.state == "failed"
    failed = incident.events.get(verb="notification.failed")
    assert "malformed-token-8c1d" not in str(failed.data) + sent.answer
    assert services.mask(f"POST {token_path} refused", "http://[x" + token_path) == (
        f"POST {services.redaction.MASK} refused"
    )
