"""Each bundled scenario end to end, against the real simulated stack and a real
worker: start -> the alert through the intake -> a DRILL incident on the right
playbook -> the playbook's probe shows the fault -> the playbook's actions (or a
simulated manual step) -> the health probes pass (the worker checks after each
run) -> resolved -> the scorecard, compared with the drill before."""

from __future__ import annotations

import os
import time

import pytest

from alerts.models import AlertSource
from drills import scenarios, services
from drills.models import Drill
from drills.tasks import check_running_drills
from incidents.actors import Actor
from incidents.models import AuditEvent, Command, Incident, StepExecution
from incidents.services import change_status, decide_approval, request_run
from probes.commands import confirm_word
from tests.drills.conftest import restore
from tests.integration.conftest import wait_for

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("worker_at_rest"),
]
SAMPLE_USER_ID = "7d1f3c2a-5b8e-4f6a-9c0d-2e4b6a8c1f3e"  # sandbox.seed's uploader

# What the team does in each drill, after looking: ("run", text prefix, parameters)
# through the console's run services, or ("simulate", text prefix) for a manual step.
PLAYS: dict[str, list[tuple]] = {
    "api-5xx": [("simulate", "flyctl deploy --image")],
    "api-slow": [
        ("run", "curl -X PUT https://api.yomira.app/api/v1/admin/settings", {})
    ],
    "database-stopped": [("simulate", "docker compose restart postgres")],
    "redis-stopped": [("simulate", "docker compose restart redis")],
    "idle-in-transaction": [
        ("run", "curl -X POST https://api.yomira.app/api/v1/admin/crawler/pause", {})
    ],
    "crawler-stuck": [
        ("run", "curl -X POST https://api.yomira.app/api/v1/admin/crawler/jobs", {})
    ],
    "smtp-broken": [("simulate", "flyctl secrets set MAIL_PROVIDER=smtp")],
    "storage-unreachable": [
        ("run", "PUT /admin/settings", {}),
        ("simulate", "flyctl secrets list | grep S3"),
    ],
    "disk-full": [("run", "DROP TABLE IF EXISTS analytics.pageview_2025_01;", {})],
    "memory-leak": [("simulate", "# fly.toml")],
    "dirty-migration": [
        (
            "run",
            'migrate -database "${DATABASE_URL}" -path src/common/DML/migrations force 4',
            {},
        )
    ],
    "token-reuse": [
        (
            "run",
            "curl -X POST https://api.yomira.app/api/v1/admin/users/{userId}",
            {"userId": SAMPLE_USER_ID},
        )
    ],
}
# Scenarios the simulated stack cannot end yet (slug -> why): run all the same,
# expected to fail. None today.
NOT_YET: dict[str, str] = {}


# What the alert's Diagnosis probes show (only §2 and §6 have Diagnosis probes).
DIAGNOSIS_SHOWS = {
    "api-slow": ("latency", "search"),
    "crawler-stuck": ("6 rows",),
}


def bundled() -> list[str]:
    return sorted(scenarios.load_all([scenarios.BUNDLED_DIR]).scenarios)


def test_every_bundled_scenario_has_a_play():
    assert sorted(PLAYS) == bundled()


def command_of(incident: Incident, prefix: str, kinds: list[str]) -> Command:
    found = scenarios.find_command(incident.playbook, prefix, kinds)
    assert found is not None, prefix
    return found


def run(incident: Incident, command: Command, params: dict, cole, ana) -> StepExecution:  # noqa: ANN001
    result = request_run(
        incident=incident,
        command=command,
        params=params,
        actor=Actor.person(cole, "10.0.0.7"),
        confirmation=confirm_word(command) if command.kind == "action" else "",
    )
    execution = result.execution
    if execution.state == StepExecution.State.AWAITING_APPROVAL:
        execution = decide_approval(
            execution=execution, approve=True, actor=Actor.person(ana, "10.0.0.8")
        )
    return wait_for(execution, seconds=30)


def wait_healed(drill: Drill, stack, seconds: float = 60) -> Drill:  # noqa: ANN001
    """The worker checks the drill after each run on its incident (and after a
    simulated step); past a few seconds, the beat's task is sent as the beat
    would (a part just restarted may not have been listening at that check)."""
    started = time.monotonic()
    beat = started + 5
    while time.monotonic() < started + seconds:
        drill.refresh_from_db()
        if drill.state != Drill.State.RUNNING:
            return drill
        if time.monotonic() > beat:
            check_running_drills.delay()
            beat = time.monotonic() + 3
        time.sleep(0.2)
    raise AssertionError(
        f"drill {drill.pk} still running after {seconds} s: {drill.last_check}; "
        f"stack {stack.running()}, api {stack.refresh()['parts'].get('api')}, "
        f"TARGET_HOSTS {os.environ.get('TARGET_HOSTS', '')[:80]}"
    )


def wait_for_diagnosis(incident: Incident) -> list[StepExecution]:
    """The Diagnosis probes the alert queued, finished."""
    return [
        wait_for(e, seconds=30)
        for e in incident.executions.filter(step__isnull=True, requested_as="diagnosis")
    ]


@pytest.mark.parametrize("slug", bundled())
def test_a_drill_end_to_end(request, slug, sandbox_on, drillers):
    if slug in NOT_YET:
        # Run all the same: it passes (XPASS) the day the stack can end it.
        request.node.add_marker(pytest.mark.xfail(reason=NOT_YET[slug], strict=False))
    stack = sandbox_on
    cole, ana = drillers
    scenario = scenarios.get(slug)
    expected = scenarios.resolve(scenario)
    try:
        # Start: the fault in, the alert through the intake, a DRILL incident.
        drill = services.start_drill(
            scenario=slug, actor=Actor.person(cole, "10.0.0.7")
        )
        incident = drill.incident
        assert incident is not None, "the alert opened no incident"
        assert incident.drill
        assert incident.playbook_id == expected.playbook.pk
        opened = AuditEvent.objects.get(incident=incident, verb="incident.opened")
        assert opened.actor_name == "alert-intake"
        assert opened.data["origin"]["source"] == services.SOURCE_NAME
        assert AlertSource.objects.get(name=services.SOURCE_NAME).drill

        # Diagnosis ran at once, as for a real alert, and shows the fault.
        diagnosis = wait_for_diagnosis(incident)
        assert len(diagnosis) == len(DIAGNOSIS_SHOWS.get(slug, ())), slug
        for execution, says in zip(
            diagnosis, DIAGNOSIS_SHOWS.get(slug, ()), strict=True
        ):
            assert says in execution.summary + execution.output, (slug, says)

        change_status(
            incident=incident, to="acknowledged", actor=Actor.person(cole, "10.0.0.7")
        )
        # The playbook's own probe, run by a responder, shows the fault (a health
        # check borrowed from another playbook is run by the drill's own check).
        ran_probe = False
        for check, command in expected.health:
            if command.playbook_id != incident.playbook_id:
                continue
            seen = run(incident, command, {}, cole, ana)
            ran_probe = True
            wrong = check.expect.failures(
                seen.state == "succeeded",
                f"{seen.summary}\n{seen.output}",
                {},
                seen.result,
            )
            if not check.expect.below and not check.expect.data:
                assert wrong, (
                    f"{slug}: the probe did not show the fault: {seen.summary}"
                )
        looked = services.check_health(drill)
        assert not looked.healthy, f"{slug}: healthy before anything was done"
        drill.refresh_from_db()
        assert drill.is_running, drill.last_check

        for play in PLAYS[slug]:
            if play[0] == "run":
                command = command_of(
                    incident, play[1], [Command.Kind.ACTION, Command.Kind.PROBE]
                )
                done = run(incident, command, play[2], cole, ana)
                assert done.state == "succeeded", (play[1], done.summary)
            else:
                command = command_of(incident, play[1], [Command.Kind.MANUAL])
                services.simulate(
                    drill=drill, command=command, actor=Actor.person(cole, "10.0.0.7")
                )
                assert AuditEvent.objects.filter(
                    incident=incident, verb="drill.simulated"
                ).exists()

        drill = wait_healed(drill, stack, seconds=15 if slug in NOT_YET else 60)
        assert drill.state == Drill.State.HEALED, drill.last_check
        assert all(c["ok"] for c in drill.last_check["checks"])
        assert AuditEvent.objects.filter(
            incident=incident, verb="drill.healed"
        ).exists()

        for status in ("mitigated", "resolved"):
            change_status(
                incident=incident, to=status, actor=Actor.person(cole, "10.0.0.7")
            )
        drill.refresh_from_db()
        assert drill.ended_at is not None
        card = drill.scorecard
        for key in ("acknowledge", "mitigation", "resolution"):
            assert card["times"][key] is not None, key
        if ran_probe:
            assert card["times"]["first_probe"] is not None
            assert card["first_probe"]["by"] == "cole"
        assert "cole" in card["people"]
        assert len(card["steps"]) == expected.playbook.steps.count()
    finally:
        restore(stack)
