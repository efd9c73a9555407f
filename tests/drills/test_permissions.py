"""Who may start a drill, and where: a Commander (open + command incidents), only
with SANDBOX on. Every refusal is a 403 (or the login page), audited, and starts
nothing."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from drills import services
from drills.models import Drill
from incidents.actors import Actor
from incidents.models import AuditEvent
from tests.conftest import signed_in

START = reverse("drills:drill_start", args=["redis-stopped"])
LIST = reverse("drills:scenario_list")


@pytest.fixture
def sandbox(settings, tmp_path):  # noqa: ANN001, ANN201
    settings.SANDBOX = True
    settings.SANDBOX_DIR = tmp_path


def denials() -> list[dict]:
    """Denials of this test (the audit log outlives each test's flush)."""
    return [
        e.data
        for e in AuditEvent.objects.filter(verb="permission.denied").order_by("seq")
    ]


def test_someone_not_signed_in_is_sent_to_sign_in(client, yomira, sandbox):
    for response in (client.get(LIST), client.post(START)):
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))
    assert not Drill.objects.exists()


def test_someone_without_a_role_cannot_see_drills(nobody_client, yomira):
    assert nobody_client.get(LIST).status_code == 403


@pytest.mark.parametrize("role", ["viewer", "responder"])
def test_a_viewer_or_responder_cannot_start_one(request, yomira, sandbox, role):
    user = request.getfixturevalue(role)
    client = signed_in(user)
    page = client.get(LIST)
    assert page.status_code == 200
    assert b"Start drill" not in page.content
    assert b"the Commander role has both" in page.content
    response = client.post(START)
    assert response.status_code == 403
    assert not Drill.objects.exists()
    denied = denials()[-1]
    assert denied["path"] == START and denied["method"] == "POST"
    assert denied["permission"] in {
        "incidents.add_incident",
        "incidents.command_incident",
    }


def test_the_service_refuses_them_too(yomira, sandbox, responder):
    with pytest.raises(PermissionDenied):
        services.start_drill(scenario="redis-stopped", actor=Actor.person(responder))
    with pytest.raises(PermissionDenied):
        services.start_drill(scenario="redis-stopped", actor=Actor.system("drills"))
    assert not Drill.objects.exists()
    assert [d["permission"] for d in denials()[-2:]] == [
        "incidents.command_incident",  # a responder may open, not command
        "incidents.command_incident",  # a system identity never starts one
    ]


def test_with_sandbox_off_not_even_a_commander_can(commander_client, yomira, settings):
    settings.SANDBOX = False  # production settings never have it
    page = commander_client.get(LIST)
    assert b"Start drill" not in page.content
    assert b"SANDBOX is not set" in page.content
    response = commander_client.post(START)
    assert response.status_code == 403
    assert b"SANDBOX is not set" in response.content
    assert not Drill.objects.exists()
    assert "SANDBOX" in denials()[-1]["why"]


def test_with_sandbox_off_the_service_refuses(commander, yomira, settings):
    settings.SANDBOX = False
    with pytest.raises(services.DrillRefused, match="SANDBOX is not set"):
        services.start_drill(scenario="redis-stopped", actor=Actor.person(commander))
    assert not Drill.objects.exists()
    assert "SANDBOX" in denials()[-1]["why"]


def test_a_commander_sees_start_buttons(commander_client, yomira, sandbox):
    page = commander_client.get(LIST)
    assert page.status_code == 200
    assert page.content.count(b"Start drill") == 12
    for number in range(1, 13):
        assert f'id="pb-{number}"'.encode() in page.content


def test_an_unknown_scenario_is_a_clear_refusal(commander_client, yomira, sandbox):
    response = commander_client.post(reverse("drills:drill_start", args=["nope"]))
    assert response.status_code == 409
    assert b"nope.toml: no such scenario" in response.content
    assert not Drill.objects.exists()


def test_a_bad_team_scenario_is_listed_with_its_problem(
    commander_client, yomira, sandbox, settings, tmp_path
):
    team = tmp_path / "team"
    team.mkdir()
    (team / "broken.toml").write_text("title = 'Ours'\nplaybook = 4\n")
    settings.DRILL_SCENARIOS_DIR = str(team)
    page = commander_client.get(LIST)
    assert page.status_code == 200
    assert b"broken.toml: faults: missing" in page.content
    response = commander_client.post(reverse("drills:drill_start", args=["broken"]))
    assert response.status_code == 409
    assert b"broken.toml: faults: missing" in response.content


def test_a_drill_page_needs_a_role(nobody_client, viewer_client, yomira, commander):
    drill = Drill.objects.create(
        scenario="redis-stopped", title="Redis stopped", playbook_number=4,
        started_by=commander,
    )  # fmt: skip
    assert nobody_client.get(drill.get_absolute_url()).status_code == 403
    page = viewer_client.get(drill.get_absolute_url())
    assert page.status_code == 200
    assert b"Redis stopped" in page.content
    assert b"Abandon" not in page.content  # a viewer cannot command


@pytest.mark.parametrize("action", ["drill_abandon", "drill_check"])
def test_a_viewer_cannot_abandon_or_check(viewer_client, yomira, commander, action):
    drill = Drill.objects.create(
        scenario="redis-stopped", title="Redis stopped", playbook_number=4,
        started_by=commander,
    )  # fmt: skip
    response = viewer_client.post(reverse(f"drills:{action}", args=[drill.pk]))
    assert response.status_code == 403
    drill.refresh_from_db()
    assert drill.state == Drill.State.RUNNING


def test_simulate_is_refused_outside_a_drill(commander_client, incident):
    command = incident.playbook.commands.filter(kind="manual").first()
    url = reverse("drills:command_simulate", args=[incident.pk, command.pk])
    response = commander_client.post(url, HTTP_HX_REQUEST="true")
    assert response.status_code == 400
    assert b"not a drill" in response.content
