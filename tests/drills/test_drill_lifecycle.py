"""A drill's life around the end-to-end path, against the real simulated stack:
one running drill per scenario, abandoning heals the stack, "simulate" through
the checklist's form (its permission, its refusals), a health check that is not
healthy yet, the scorecard compared with the drill before, and the scorecard in
the post-mortem export."""

from __future__ import annotations

import time

import pytest
from django.urls import reverse

from drills import services
from drills.models import Drill
from drills.tasks import check_running_drills
from incidents.actors import Actor
from incidents.models import AuditEvent, Command
from incidents.services import change_status
from tests.conftest import grant, signed_in
from tests.drills.conftest import restore

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("worker_at_rest"),
]
RESTART = "docker compose restart redis"


@pytest.fixture
def stack(sandbox_on):  # noqa: ANN001, ANN201
    yield sandbox_on
    restore(sandbox_on)


def start(user) -> Drill:  # noqa: ANN001
    return services.start_drill(
        scenario="redis-stopped", actor=Actor.person(user, "10.0.0.7")
    )


def manual(drill: Drill, prefix: str) -> Command:
    return drill.incident.playbook.commands.get(kind="manual", text__startswith=prefix)


def simulate_url(drill: Drill, command: Command) -> str:
    return reverse("drills:command_simulate", args=[drill.incident_id, command.pk])


def test_one_running_drill_per_scenario(stack, drillers):
    cole, _ana = drillers
    first = start(cole)
    assert not stack.part("redis").running()
    with pytest.raises(services.DrillRefused, match="already running"):
        start(cole)
    page = signed_in(cole).post(reverse("drills:drill_start", args=["redis-stopped"]))
    assert page.status_code == 409
    assert b"already running" in page.content
    assert Drill.objects.count() == 1
    assert Drill.objects.get() == first


def test_abandoning_heals_the_stack(stack, drillers):
    cole, _ana = drillers
    drill = start(cole)
    assert not stack.part("redis").running()
    response = signed_in(cole).post(reverse("drills:drill_abandon", args=[drill.pk]))
    assert response.status_code == 302
    drill.refresh_from_db()
    assert drill.state == Drill.State.ABANDONED and drill.ended_at is not None
    assert stack.part("redis").running()
    event = AuditEvent.objects.get(verb="drill.abandoned", incident=drill.incident)
    assert event.actor_name == "cole" and event.incident_id == drill.incident_id
    # The scenario is free again.
    assert start(cole).is_running


def test_simulate_needs_the_playbooks_actions(stack, make_user, yomira):
    cole = make_user("cole", "Commander")  # no run_actions grant
    drill = start(cole)
    response = signed_in(cole).post(
        simulate_url(drill, manual(drill, RESTART)), HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 403
    assert not stack.part("redis").running()
    assert not AuditEvent.objects.filter(
        verb="drill.simulated", incident=drill.incident
    ).exists()
    assert AuditEvent.objects.filter(
        verb="permission.denied",
        incident=drill.incident,
        data__permission="incidents.run_actions",
    ).exists()


def test_simulate_through_the_checklist_form(stack, drillers):
    cole, _ana = drillers
    drill = start(cole)
    client = signed_in(cole)
    command = manual(drill, RESTART)
    # Without JavaScript: back to the incident's page, the notice on top.
    response = client.post(simulate_url(drill, command))
    assert response.status_code == 302
    assert response["Location"].startswith(drill.incident.get_absolute_url())
    assert stack.part("redis").running()
    event = AuditEvent.objects.get(verb="drill.simulated", incident=drill.incident)
    assert event.actor_name == "cole"
    assert event.data["step"] == 3
    assert event.data["command"] == RESTART
    assert "restarted the Redis container" in event.data["did"]
    # The simulated step asks the worker for a health check at once: it lands.
    deadline = time.monotonic() + 20
    while drill.last_checked_at is None and time.monotonic() < deadline:
        time.sleep(0.1)
        drill.refresh_from_db()
    assert drill.last_checked_at is not None


def test_simulate_refuses_what_the_scenario_does_not_map(stack, drillers):
    cole, _ana = drillers
    drill = start(cole)
    # §4's only other manual step, as a team might have added it.
    command = Command.objects.create(
        playbook=drill.incident.playbook,
        step=manual(drill, RESTART).step,
        position=999,
        text="kubectl rollout restart deploy/redis",
        kind="manual",
    )
    response = signed_in(cole).post(
        simulate_url(drill, command), HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 409
    assert b"does not say what this command would do" in response.content
    assert not stack.part("redis").running()


def test_an_unhealthy_check_is_kept_and_heals_nothing(stack, drillers):
    cole, _ana = drillers
    drill = start(cole)
    result = services.check_health(drill)
    assert not result.healthy
    drill.refresh_from_db()
    assert drill.is_running
    assert drill.last_check["checks"][0]["ok"] is False
    assert "the probe failed" in drill.last_check["checks"][0]["wrong"]
    assert not AuditEvent.objects.filter(
        verb="drill.healed", incident=drill.incident
    ).exists()


def test_the_beat_task_checks_nothing_without_sandbox(stack, drillers, settings):
    cole, _ana = drillers
    drill = start(cole)
    stack.part("redis").start()  # healthy, but nobody may look: production
    settings.SANDBOX = False
    assert check_running_drills() == 0
    drill.refresh_from_db()
    assert drill.is_running
    settings.SANDBOX = True
    assert check_running_drills() == 1
    drill.refresh_from_db()
    assert drill.state == Drill.State.HEALED


def heal_one(cole) -> Drill:  # noqa: ANN001
    drill = start(cole)
    change_status(incident=drill.incident, to="acknowledged", actor=Actor.person(cole))
    services.simulate(
        drill=drill, command=manual(drill, RESTART), actor=Actor.person(cole)
    )
    services.check_health(drill)
    drill.refresh_from_db()
    assert drill.state == Drill.State.HEALED, drill.last_check
    change_status(incident=drill.incident, to="resolved", actor=Actor.person(cole))
    drill.refresh_from_db()
    return drill


def test_the_scorecard_compares_with_the_drill_before(stack, drillers):
    cole, _ana = drillers
    first = heal_one(cole)
    assert first.scorecard["compare"] == {"count": 0}
    second = heal_one(cole)
    compare = second.scorecard["compare"]
    assert compare["count"] == 1
    assert compare["previous"]["drill"] == first.pk
    assert compare["best"]["drill"] == first.pk
    assert set(compare["previous"]["difference"]) >= {
        "mitigation",
        "resolution",
        "acknowledge",
    }
    step = next(s for s in second.scorecard["steps"] if s["number"] == 3)
    assert step["simulated"][0]["by"] == "cole"

    page = signed_in(cole).get(second.get_absolute_url())
    assert page.status_code == 200
    assert f'href="{first.get_absolute_url()}"'.encode() in page.content
    listing = signed_in(cole).get(reverse("drills:scenario_list"))
    assert b"2 drills" in listing.content


def test_the_post_mortem_carries_the_scorecard(stack, drillers):
    cole, _ana = drillers
    drill = heal_one(cole)
    client = signed_in(cole)
    text = b"".join(
        client.get(
            reverse("incidents:export_postmortem", args=[drill.incident_id])
        ).streaming_content
    ).decode()
    assert "## Drill scorecard" in text
    assert "| to mitigation (healthy) |" in text
    assert "simulated by cole" in text


def test_a_drill_of_a_real_incident_is_never_offered(stack, commander, incident):
    """A real incident's manual command: the simulate form refuses it."""
    grant(commander, "run_actions")
    cole = commander
    command = incident.playbook.commands.get(kind="manual", text__startswith=RESTART)
    url = reverse("drills:command_simulate", args=[incident.pk, command.pk])
    response = signed_in(cole).post(url, HTTP_HX_REQUEST="true")
    assert response.status_code == 400
    assert stack.part("redis").running()


def test_a_fault_the_stack_cannot_inject_is_a_clear_refusal(
    stack, drillers, settings, tmp_path
):
    """A team's scenario with a parameter the fault does not take: said in words
    (409, never a 500), nothing left half-done, the scenario free again."""
    cole, _ana = drillers
    source = (scenarios_dir() / "redis-stopped.toml").read_text()
    (tmp_path / "ours.toml").write_text(
        source.replace('name = "redis_down"', 'name = "redis_down"\nparams = { x = 1 }')
    )
    settings.DRILL_SCENARIOS_DIR = str(tmp_path)
    response = signed_in(cole).post(reverse("drills:drill_start", args=["ours"]))
    assert response.status_code == 409
    assert b"could not be injected into the simulated stack" in response.content
    drill = Drill.objects.get()
    assert drill.state == Drill.State.ABANDONED and drill.incident is None
    assert stack.part("redis").running()


def scenarios_dir():  # noqa: ANN201
    from drills.scenarios import BUNDLED_DIR

    return BUNDLED_DIR
