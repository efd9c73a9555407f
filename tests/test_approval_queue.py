"""/approvals/: each request with what it would run, its preview, who asked and who
may decide, decided in place; the header's badge; the step naming its approvers,
never offering the requester Approve (the step's HTML is cached and shared)."""

from __future__ import annotations

import re

import psycopg
import pytest
from django.core.cache import caches
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from incidents import access
from incidents.actors import Actor
from incidents.models import AuditEvent, Command, Playbook, StepExecution
from incidents.services import decide_approval, open_incident, request_run
from incidents.templatetags.approvals import approvals_waiting
from probes.commands import confirm_word
from tests.conftest import grant, signed_in
from tests.stack import console_server

State = StepExecution.State
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def targets_and_no_broker(monkeypatch):
    monkeypatch.setenv("TARGET_DATABASE_URL", TARGET)
    sent = []
    monkeypatch.setattr(
        "incidents.services.runs.dispatch",
        lambda pk, kind, task_id=None: sent.append(pk),
    )
    caches["fragments"].clear()
    return sent


TARGET = console_server("postgres")


@pytest.fixture
def backends():
    """Live backends on the target, so pg_terminate_backend's preview finds the
    pid it names (a pid nobody has is refused as nothing to act on)."""
    connections = [psycopg.connect(TARGET, autocommit=True) for _ in range(3)]
    yield [str(c.info.backend_pid) for c in connections]
    for c in connections:
        c.close()


@pytest.fixture
def world(yomira, make_user, backends):
    pool = Playbook.objects.current().get(number=5)
    people = {
        "gina": make_user("gina", "Commander"),  # asks
        "abe": make_user("abe", "Commander"),  # may approve on §5
        "ada": make_user("ada", is_superuser=True, is_staff=True),
        "cole": make_user("cole", "Commander"),  # may approve nothing
    }
    grant(people["gina"], "run_actions", playbooks=[pool])
    grant(people["abe"], "approve_actions", playbooks=[pool])
    incident = open_incident(
        playbook=pool, title="pool exhausted", actor=Actor.person(people["cole"])
    )
    terminate = pool.commands.get(text__startswith="SELECT pg_terminate")
    return type(
        "World",
        (),
        {
            "people": people,
            "incident": incident,
            "terminate": terminate,
            "pids": backends,
        },
    )


def ask(world, n: int = 0) -> StepExecution:  # noqa: ANN001
    """gina previews and confirms pg_terminate_backend (of live backend `n`)
    through the pages."""
    pid = world.pids[n]
    gina = signed_in(world.people["gina"])
    base = f"/incidents/{world.incident.pk}/commands/{world.terminate.pk}"
    shown = gina.post(f"{base}/preview", {"param-pid": pid}, **HTMX)
    assert shown.status_code == 200
    token = re.search(r'name="preview" value="([^"]+)"', shown.content.decode())
    assert token, "no confirmation form: the preview found nothing to act on"
    answer = gina.post(
        f"{base}/run",
        {
            "param-pid": pid,
            "preview": token.group(1),
            "confirmation": confirm_word(world.terminate),
        },
        **HTMX,
    )
    assert answer.status_code == 200
    return StepExecution.objects.get(
        command=world.terminate, parameters={"pid": pid}, state=State.AWAITING_APPROVAL
    )


def decide(world, who: str, execution, htmx: bool = True, **data):  # noqa: ANN001, ANN003, ANN201
    return signed_in(world.people[who]).post(
        f"/approvals/{execution.pk}/decide", data, **(HTMX if htmx else {})
    )


def row_of(page: str, execution: StepExecution) -> str:
    found = re.search(
        rf'<article class="approval[^"]*" id="approval-{execution.pk}".*?</article>',
        page,
        re.S,
    )
    assert found, page
    return found.group(0)


def test_an_approver_sees_what_would_run_its_preview_who_asked_and_who_may(world):
    waiting = ask(world)
    previewed = AuditEvent.objects.get(verb="execution.previewed")
    page = signed_in(world.people["abe"]).get("/approvals/").content.decode()
    mine = page.split('id="approvals-mine"')[1].split("approvals-others")[0]
    row = row_of(mine, waiting)
    assert "SELECT pg_terminate_backend(pid)" in row  # as the runbook writes it
    assert f"pid = {world.pids[0]}" in row
    assert previewed.data["headline"] and previewed.data["headline"] in row
    assert f"#{world.incident.pk} pool exhausted" in row
    assert re.search(r"gina at <time[^>]*>\d\d:\d\d:\d\d</time> UTC", row)
    assert "abe or ada" in row  # the requester is not among them
    assert "Approve and run" in row and 'name="reason"' in row and "required" in row
    assert "Nothing is waiting for you" not in page


def test_the_requester_sees_their_request_waiting_for_someone_else(world):
    grant(world.people["gina"], "approve_actions", playbooks=[world.terminate.playbook])
    waiting = ask(world)
    page = signed_in(world.people["gina"]).get("/approvals/").content.decode()
    assert "Nothing is waiting for you" in page
    others = page.split('id="approvals-others"')[1]
    row = row_of(others, waiting)
    assert "abe or ada" in row
    assert "Approve and run" not in page and "Reject" not in page


def test_approving_in_place_runs_it_and_answers_with_the_row(
    world, targets_and_no_broker, django_capture_on_commit_callbacks
):
    waiting = ask(world)
    with django_capture_on_commit_callbacks(execute=True):
        answer = decide(world, "abe", waiting, decision="approve")
    assert answer.status_code == 200
    html = answer.content.decode()
    assert html.lstrip().startswith(
        f'<article class="approval approval-decided" id="approval-{waiting.pk}"'
    )
    assert "Approved: it runs now" in html and "Approve and run" not in html
    waiting.refresh_from_db()
    assert (waiting.state, waiting.approved_by) == (State.QUEUED, world.people["abe"])
    assert targets_and_no_broker == [waiting.pk]
    assert AuditEvent.objects.filter(
        verb="execution.approved", actor_name="abe"
    ).exists()


def test_rejecting_in_place_needs_a_reason_and_runs_nothing(
    world, targets_and_no_broker
):
    waiting = ask(world)
    refused = decide(world, "abe", waiting, decision="reject", reason="   ")
    assert refused.status_code == 409
    assert refused["X-Console-Explained"] == "1"
    assert "Say why you reject it." in refused.content.decode()
    waiting.refresh_from_db()
    assert waiting.state == State.AWAITING_APPROVAL

    answer = decide(world, "abe", waiting, decision="reject", reason="wrong pid")
    assert answer.status_code == 200
    assert "Rejected: nothing runs" in answer.content.decode()
    waiting.refresh_from_db()
    assert (waiting.state, waiting.summary) == (
        State.REJECTED,
        "Rejected by abe: wrong pid",
    )
    assert targets_and_no_broker == []


def test_a_refusal_stays_in_its_row_with_the_typed_reason(world):
    waiting = ask(world)
    # An admin rebinds the command after the request: it must be asked again.
    Command.objects.filter(pk=world.terminate.pk).update(text="SELECT 1")
    answer = decide(world, "abe", waiting, decision="reject", reason="wrong <pid>")
    assert answer.status_code == 409
    html = answer.content.decode()
    assert "The command (its text or binding) changed since it was requested" in html
    assert 'value="wrong &lt;pid&gt;"' in html  # kept, and escaped
    assert html.count("<article") == 1


def test_without_javascript_a_decision_returns_to_the_queue(world):
    waiting = ask(world)
    answer = decide(world, "abe", waiting, htmx=False, decision="reject", reason="no")
    assert (answer.status_code, answer["Location"]) == (302, "/approvals/")
    page = signed_in(world.people["abe"]).get("/approvals/").content.decode()
    # The message rides on the session of the client that decided.
    client = signed_in(world.people["abe"])
    other = ask(world, 1)
    answer = client.post(
        f"/approvals/{other.pk}/decide", {"decision": "reject", "reason": "no"}
    )
    page = client.get(answer["Location"]).content.decode()
    assert f"Rejected: nothing runs (#{world.incident.pk} pool exhausted)." in page


def test_without_javascript_a_refusal_is_the_queue_with_the_row_explained(world):
    waiting = ask(world)
    answer = decide(world, "abe", waiting, htmx=False, decision="reject", reason="")
    assert answer.status_code == 409
    row = row_of(answer.content.decode(), waiting)
    assert "Say why you reject it." in row and "Approve and run" in row


@pytest.mark.parametrize(
    ("who", "message", "why"),
    [
        (
            "cole",
            "You need the &#x27;approve_actions&#x27; permission on this playbook.",
            "no approve_actions on this playbook",
        ),
        (
            "gina",
            "Four eyes: someone else must approve your request.",
            "the requester cannot approve",
        ),
    ],
)
def test_those_who_may_not_decide_are_refused_and_audited(world, who, message, why):
    grant(world.people["gina"], "approve_actions", playbooks=[world.terminate.playbook])
    waiting = ask(world)
    answer = decide(world, who, waiting, decision="approve")
    assert answer.status_code == 403
    assert message in answer.content.decode()
    waiting.refresh_from_db()
    assert waiting.state == State.AWAITING_APPROVAL
    denial = AuditEvent.objects.filter(verb="permission.denied").last()
    assert (denial.actor_name, denial.data["why"]) == (who, why)


def test_bad_requests_get_clear_answers(world):
    waiting = ask(world)
    assert decide(world, "abe", waiting, decision="maybe").status_code == 400
    assert (
        "Choose Approve or Reject."
        in decide(world, "abe", waiting, decision="maybe").content.decode()
    )
    abe = signed_in(world.people["abe"])
    assert (
        abe.post("/approvals/999999/decide", {"decision": "approve"}).status_code == 404
    )
    assert abe.get(f"/approvals/{waiting.pk}/decide").status_code == 405
    waiting.refresh_from_db()
    assert waiting.state == State.AWAITING_APPROVAL


def test_a_request_decided_elsewhere_says_who_decided_it(world):
    waiting = ask(world)
    decide_approval(
        execution=waiting,
        approve=False,
        reason="no",
        actor=Actor.person(world.people["ada"]),
    )
    answer = decide(world, "abe", waiting, decision="approve")
    assert answer.status_code == 409
    html = answer.content.decode()
    assert "ada already rejected this request" in html
    assert "Approve and run" not in html


def test_the_queue_costs_the_same_whatever_the_number_of_requests(world):
    ask(world)
    abe = signed_in(world.people["abe"])

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert abe.get("/approvals/").status_code == 200
        return len(captured)

    queries()  # the first also reads the person's grants into memory
    one = queries()
    ask(world, 1)
    ask(world, 2)
    assert queries() == one


def test_a_request_without_a_recorded_preview_says_so(world):
    request_run(
        incident=world.incident,
        command=world.terminate,
        params={"pid": "99"},
        actor=Actor.person(world.people["gina"]),
        confirmation=confirm_word(world.terminate),
    )
    page = signed_in(world.people["abe"]).get("/approvals/").content.decode()
    assert "Not recorded with this request." in page


# --- the header's badge ---------------------------------------------------------


def badge(user) -> int:  # noqa: ANN001
    request = RequestFactory().get("/")
    request.user = user
    access.can(user, access.VIEW_INCIDENTS)  # every page has loaded the grants
    return approvals_waiting({"request": request})


def test_the_badge_counts_what_this_person_may_decide(world):
    grant(world.people["gina"], "approve_actions", playbooks=[world.terminate.playbook])
    waiting = ask(world)
    ask(world, 1)
    people = world.people
    assert [badge(people[n]) for n in ("abe", "ada", "gina", "cole")] == [2, 2, 0, 0]
    decide_approval(
        execution=waiting, approve=False, reason="no", actor=Actor.person(people["ada"])
    )
    assert badge(people["abe"]) == 1
    page = signed_in(people["abe"]).get("/incidents/").content.decode()
    assert re.search(r'class="approvals-badge"[^>]*>.*?1<', page)
    assert (
        "approvals-badge"
        not in signed_in(people["cole"]).get("/incidents/").content.decode()
    )


def test_the_badge_asks_nothing_of_people_who_may_approve_nothing(world):
    ask(world)
    cole = world.people["cole"]
    access.can(cole, access.VIEW_INCIDENTS)
    with CaptureQueriesContext(connection) as captured:
        assert badge(cole) == 0
    assert len(captured) == 0
    abe = world.people["abe"]
    access.can(abe, access.VIEW_INCIDENTS)
    with CaptureQueriesContext(connection) as captured:
        assert badge(abe) == 1
    assert len(captured) == 1


def test_the_badge_leaves_out_expired_requests_and_resolved_incidents(world):
    from datetime import timedelta

    from django.utils import timezone

    waiting = ask(world)
    StepExecution.objects.filter(pk=waiting.pk).update(
        approval_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert badge(world.people["abe"]) == 0
    other = ask(world, 1)
    assert badge(world.people["abe"]) == 1
    world.incident.status = "resolved"
    world.incident.save(update_fields=["status"])
    assert badge(world.people["abe"]) == 0
    assert (
        "Nothing is waiting for you"
        in signed_in(world.people["abe"]).get("/approvals/").content.decode()
    )
    assert other.pk


# --- on the step ------------------------------------------------------------------


def test_the_step_names_who_may_approve_and_never_offers_the_requester_approve(world):
    grant(world.people["gina"], "approve_actions", playbooks=[world.terminate.playbook])
    ask(world)
    url = f"/incidents/{world.incident.pk}/"
    step = f"step-{world.terminate.step.number}"
    # abe draws (and caches) the step first; gina, who may approve too, comes next.
    abe = signed_in(world.people["abe"]).get(url).content.decode()
    gina = signed_in(world.people["gina"]).get(url).content.decode()
    ada = signed_in(world.people["ada"]).get(url).content.decode()
    for page in (abe, gina, ada):
        assert "Waiting for a second person" in page
        assert "abe or ada may approve it" in page
    assert "Approve and run" in abe and "Approve and run" in ada
    assert "Approve and run" not in gina
    assert step in gina
