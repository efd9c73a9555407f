"""The "simulate" form the checklist includes on a drill incident's manual
commands: offered only in a running drill, only for a command its scenario maps,
and only as a button to those who may run the playbook's actions."""

from __future__ import annotations

from django.template.loader import render_to_string
from django.urls import reverse

from drills.models import Drill
from incidents.actors import Actor
from incidents.models import Playbook
from incidents.services import open_incident

TEMPLATE = "drills/partials/simulate.html"


def drill_incident(commander, state=Drill.State.RUNNING):  # noqa: ANN001, ANN201
    playbook = Playbook.objects.current().get(number=4)
    incident = open_incident(
        playbook=playbook, title="Practice", actor=Actor.person(commander), drill=True
    )
    Drill.objects.create(
        scenario="redis-stopped",
        title="Redis stopped",
        playbook_number=4,
        incident=incident,
        state=state,
    )
    return incident


def drawn(incident, text: str, actions: bool = True) -> str:  # noqa: ANN001
    command = incident.playbook.commands.get(text__startswith=text)
    return render_to_string(
        TEMPLATE,
        {"incident": incident, "command": command, "can": {"actions": actions}},
    )


def test_offered_on_a_mapped_manual_command_of_a_running_drill(yomira, commander):
    incident = drill_incident(commander)
    html = drawn(incident, "docker compose restart redis")
    command = incident.playbook.commands.get(text__startswith="docker compose restart")
    url = reverse("drills:command_simulate", args=[incident.pk, command.pk])
    assert f'action="{url}"' in html and f'hx-post="{url}"' in html
    assert ">Simulate</button>" in html
    assert "restarted the Redis container" in html


def test_a_person_without_the_playbooks_actions_is_told_why(yomira, commander):
    html = drawn(drill_incident(commander), "docker compose restart redis", False)
    assert "<button" not in html
    assert "needs the run_actions grant" in html


def test_not_offered_elsewhere(yomira, commander, incident):
    assert drawn(incident, "docker compose restart redis").strip() == ""  # real
    running = drill_incident(commander)
    assert drawn(running, 'redis-cli -u "${REDIS_URL}" ping').strip() == ""  # probe
    healed = drill_incident(commander, state=Drill.State.HEALED)
    assert drawn(healed, "docker compose restart redis").strip() == ""
