"""An action waiting for four eyes is told to those who may approve it: Slack (the
playbook's channel, or one marked for every approval request) gets what would run,
its parameters and preview, who asked, who may approve and the link to decide;
email goes to each approver with an address. Sent by the worker, on the timeline;
never through PagerDuty; nothing once the request was decided."""

from __future__ import annotations

from email import message_from_bytes

import psycopg
import pytest
from django.core.exceptions import ValidationError

from incidents.actors import Actor
from incidents.models import StepExecution
from incidents.services import decide_approval, preview_action, request_run
from notify import approvals, services
from notify.models import Channel, Notification
from probes.commands import confirm_word
from tests.conftest import grant
from tests.stack import console_server

from .conftest import SLACK_PATH, assert_secret_nowhere, bodies, events, open_, playbook

TARGET = console_server("postgres")


@pytest.fixture
def accepting(httpserver):
    httpserver.expect_request(SLACK_PATH, method="POST").respond_with_data("ok")
    return httpserver


@pytest.fixture(autouse=True)
def target(monkeypatch):
    monkeypatch.setenv("TARGET_DATABASE_URL", TARGET)


@pytest.fixture
def backend():
    """A live backend on the target, so pg_terminate_backend's preview finds it."""
    connection = psycopg.connect(TARGET, autocommit=True)
    yield str(connection.info.backend_pid)
    connection.close()


@pytest.fixture
def people(yomira, make_user):
    pool = playbook(5)
    found = {
        "gina": make_user("gina", "Commander", email="gina@yomira.test"),
        "abe": make_user("abe", "Commander", email="abe@yomira.test"),
        "ada": make_user("ada", is_superuser=True, is_staff=True),
        "cole": make_user("cole", "Commander", email="cole@yomira.test"),
    }
    grant(found["gina"], "run_actions", playbooks=[pool])
    grant(found["abe"], "approve_actions", playbooks=[pool])
    return found


def terminate(incident):  # noqa: ANN001, ANN201
    return incident.playbook.commands.get(text__startswith="SELECT pg_terminate")


def ask(committed, incident, people, pid: str, *, previewed: bool = True):  # noqa: ANN001, ANN201
    """gina asks to terminate a backend; what waits for the commit runs."""
    command = terminate(incident)
    actor = Actor.person(people["gina"])
    token = None
    if previewed:
        token = preview_action(
            incident=incident, command=command, params={"pid": pid}, actor=actor
        ).token
    with committed():
        asked = request_run(
            incident=incident,
            command=command,
            params={"pid": pid},
            actor=actor,
            confirmation=confirm_word(command),
            preview=token,
        ).execution
    assert asked.state == StepExecution.State.AWAITING_APPROVAL
    return asked


def asking(httpserver) -> list[dict]:
    return [m for m in bodies(httpserver, SLACK_PATH) if "Approval needed" in m["text"]]


def test_slack_is_asked_with_what_would_run_and_where_to_decide(
    people, slack, accepting, committed, backend
):
    playbook(5, ["Slack"])
    incident = open_(
        committed, Actor.person(people["cole"]), 5, title="pool <!channel> gone"
    )
    asked = ask(committed, incident, people, backend)

    (message,) = asking(accepting)
    url = f"https://console.yomira.test/incidents/{incident.pk}/"
    head, command, preview, footer = message["blocks"]
    assert message["text"] == (
        f":raised_hand: Approval needed on <{url}|#{incident.pk} pool &lt;!channel&gt; "
        f"gone>: step {asked.step.number}: {asked.step.title}, asked by gina"
    )
    assert head["text"]["text"] == message["text"]
    assert command["text"]["text"] == (
        "*Command* (as the runbook writes it)\n```SELECT pg_terminate_backend(pid);```"
    )
    assert [f["text"] for f in command["fields"]] == [
        "*May approve*\nabe or ada",
        f"*Expires*\n{asked.approval_expires_at:%H:%M} UTC",
        f"*Parameters*\npid = {backend}",
        "*Playbook*\n§5 DB Connection Pool Exhausted",
    ]
    assert preview["text"]["text"].startswith("*Preview*\n")
    assert f"backend {backend}" in preview["text"]["text"]
    assert footer["elements"][0]["text"].startswith(
        f"<https://console.yomira.test/approvals/#approval-{asked.pk}|Approve or reject"
    )

    notice = Notification.objects.get(event="approval")
    assert (notice.execution, notice.channel, notice.state) == (asked, slack, "sent")
    sent = [e for e in events("notification.sent") if e.data["event"] == "approval"]
    assert [(e.incident_id, e.data["channel"]) for e in sent] == [
        (incident.pk, "Slack")
    ]
    assert_secret_nowhere()


def test_each_approver_with_an_address_is_emailed(people, mailbox, committed, backend):
    Channel.objects.create(name="Ops mail", kind="email", recipients="ops@yomira.test")
    playbook(5, ["Ops mail"])
    incident = open_(committed, Actor.person(people["cole"]), 5, title="pool gone")
    mailbox.messages.clear()  # the opening's own message
    asked = ask(committed, incident, people, backend)

    (envelope,) = mailbox.messages
    # abe may approve and has an address; ada may but has none; gina asked.
    assert envelope.rcpt_tos == ["abe@yomira.test"]
    message = message_from_bytes(envelope.content)
    assert message["Subject"] == (
        f"[Approval needed] #{incident.pk} pool gone: "
        f"step {asked.step.number}: {asked.step.title}"
    )
    body = message.get_payload(decode=True).decode()
    assert f"https://console.yomira.test/approvals/#approval-{asked.pk}" in body
    assert "    SELECT pg_terminate_backend(pid);" in body
    assert f"Parameter pid = {backend}" in body
    assert f"backend {backend}" in body
    assert "Asked by:    gina" in body
    assert "May approve: abe or ada" in body


def test_without_any_approver_address_the_channel_list_is_told(
    people, mailbox, committed
):
    people["abe"].email = ""
    people["abe"].save()
    Channel.objects.create(name="Ops mail", kind="email", recipients="ops@yomira.test")
    playbook(5, ["Ops mail"])
    incident = open_(committed, Actor.person(people["cole"]), 5)
    mailbox.messages.clear()
    ask(committed, incident, people, "4242", previewed=False)
    (envelope,) = mailbox.messages
    assert envelope.rcpt_tos == ["ops@yomira.test"]
    body = message_from_bytes(envelope.content).get_payload(decode=True).decode()
    assert "Preview:     none recorded" in body


def test_pagerduty_pages_for_incidents_never_for_approvals(
    people, pagerduty, slack, accepting, committed
):
    playbook(5, ["PagerDuty"])
    incident = open_(committed, Actor.person(people["cole"]), 5)
    ask(committed, incident, people, "4242", previewed=False)
    assert not Notification.objects.filter(event="approval").exists()

    # A channel marked for every approval request is asked whatever the playbook.
    slack.all_approvals = True
    slack.save()
    asked = ask(committed, incident, people, "4243", previewed=False)
    assert [
        (n.execution, n.channel) for n in Notification.objects.filter(event="approval")
    ] == [(asked, slack)]
    assert len(asking(accepting)) == 1


def test_a_request_decided_before_its_message_goes_out_is_not_sent(
    people, slack, accepting, committed, django_capture_on_commit_callbacks
):
    playbook(5, ["Slack"])
    incident = open_(committed, Actor.person(people["cole"]), 5)
    with django_capture_on_commit_callbacks(execute=False):
        asked = request_run(
            incident=incident,
            command=terminate(incident),
            params={"pid": "4242"},
            actor=Actor.person(people["gina"]),
            confirmation=confirm_word(terminate(incident)),
        ).execution
    (notice,) = approvals.queue(asked)
    decide_approval(
        execution=asked,
        approve=False,
        reason="wrong pid",
        actor=Actor.person(people["abe"]),
    )
    assert services.deliver(notice.pk).state == "suppressed"
    notice.refresh_from_db()
    assert notice.answer == (
        "the request is no longer waiting for approval (it is rejected)"
    )
    assert asking(accepting) == []
    (suppressed,) = [
        e for e in events("notification.suppressed") if e.data["event"] == "approval"
    ]
    assert suppressed.incident_id == incident.pk


def test_one_message_per_request_and_channel(people, slack, accepting, committed):
    playbook(5, ["Slack"])
    incident = open_(committed, Actor.person(people["cole"]), 5)
    first = ask(committed, incident, people, "4242", previewed=False)
    second = ask(committed, incident, people, "4243", previewed=False)
    assert approvals.queue(first) == []  # asked already: no second row
    assert sorted(
        Notification.objects.filter(event="approval").values_list(
            "execution_id", flat=True
        )
    ) == sorted([first.pk, second.pk])
    assert len(asking(accepting)) == 2


def test_only_slack_and_email_channels_take_every_approval_request(db):
    channel = Channel(
        name="PagerDuty",
        kind="pagerduty",
        secret_env="PAGERDUTY_ROUTING_KEY",
        all_approvals=True,
    )
    with pytest.raises(ValidationError) as refused:
        channel.full_clean()
    assert "all_approvals" in refused.value.message_dict
