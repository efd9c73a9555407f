"""Scenario files: every bundled one loads, points at a playbook and at probes and
manual commands of the bundled runbook, and its alert routes to its playbook
through the intake's own rules; a bad file is refused with file:field."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from alerts import routing
from alerts.payloads import Alert
from drills import scenarios
from drills.scenarios import ScenarioError, load_file
from incidents.models import Command, Playbook

GOOD = """
title = "Redis stopped"
playbook = 4
[[faults]]
name = "redis_down"
[alert]
labels = { alertname = "HealthCheckFailing", severity = "critical", component = "redis" }
[[health]]
command = 'redis-cli -u "${REDIS_URL}" ping'
expect = { contains = "PONG" }
[simulate]
"docker compose restart redis" = { start = "redis" }
"""


def write(tmp_path: Path, text: str, name: str = "mine.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def refusal(tmp_path: Path, text: str, name: str = "mine.toml", **kw) -> str:
    with pytest.raises(ScenarioError) as caught:
        load_file(write(tmp_path, text, name), **kw)
    return str(caught.value)


def test_every_bundled_scenario_loads():
    loaded = scenarios.load_all([scenarios.BUNDLED_DIR])
    assert loaded.problems == []
    assert len(loaded.scenarios) >= 12


def test_there_is_a_scenario_for_each_of_the_twelve_playbooks(yomira):
    loaded = scenarios.load_all([scenarios.BUNDLED_DIR])
    covered = {scenarios.resolve(s).playbook.number for s in loaded.scenarios.values()}
    assert covered == set(range(1, 13))


def test_each_names_probes_and_manual_commands_of_the_runbook(yomira):
    for scenario in scenarios.load_all([scenarios.BUNDLED_DIR]).scenarios.values():
        resolved = scenarios.resolve(scenario)
        assert resolved.health, scenario.slug
        for check, command in resolved.health:
            assert command.kind == Command.Kind.PROBE, scenario.slug
            assert command.text.startswith(check.command), scenario.slug
            assert not command.parameters, scenario.slug
        for simulation in scenario.simulate:
            found = scenarios.find_command(
                resolved.playbook, simulation.prefix, [Command.Kind.MANUAL]
            )
            assert found is not None, (scenario.slug, simulation.prefix)


def test_each_alert_routes_to_its_playbook(yomira):
    playbooks = list(Playbook.objects.current())
    for scenario in scenarios.load_all([scenarios.BUNDLED_DIR]).scenarios.values():
        labels = {**scenario.labels, "drill_id": "1"}
        alert = Alert(
            status="firing",
            labels=labels,
            annotations=scenario.annotations,
            starts_at=datetime.now(UTC),
            ends_at=None,
            generator_url=scenario.generator_url,
            fingerprint="f",
        )
        routed = routing.route(alert, playbooks, [], prober=None)
        expected = scenarios.resolve(scenario).playbook
        assert routed.playbook == expected, (scenario.slug, routed.rule, routed.reason)


def test_the_alerts_exercise_several_routing_rules(yomira):
    """Not only the playbook label: alert names, the component label, runbook_url
    and the metric in generatorURL each route at least one drill."""
    playbooks = list(Playbook.objects.current())
    rules = set()
    for scenario in scenarios.load_all([scenarios.BUNDLED_DIR]).scenarios.values():
        alert = Alert(
            "firing",
            scenario.labels,
            scenario.annotations,
            datetime.now(UTC),
            None,
            scenario.generator_url,
            "f",
        )
        rules.add(routing.route(alert, playbooks, [], prober=None).rule)
    assert {"alertname", "label", "runbook_url", "metric"} <= rules


def test_a_good_file_loads(tmp_path):
    scenario = load_file(write(tmp_path, GOOD))
    assert scenario.slug == "mine"
    assert scenario.playbook == 4
    assert scenario.faults[0].name == "redis_down"
    assert scenario.simulation_for("docker compose restart redis").start == "redis"
    assert scenario.simulation_for("docker compose restart postgres") is None


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        ("title = 'x'\n", "playbook", "missing"),
        (GOOD.replace("playbook = 4", "playbook = true"), "playbook", "number"),
        (GOOD.replace("playbook = 4", "playbook = 0"), "playbook", "1 or more"),
        ("extra = 1\n" + GOOD, "extra", "unknown field"),
        (
            GOOD.replace('alertname = "HealthCheckFailing", ', ""),
            "alert.labels.alertname",
            "missing",
        ),
        (
            GOOD.replace('severity = "critical", ', ""),
            "alert.labels.severity",
            "missing",
        ),
        (
            GOOD.replace('component = "redis"', "component = 3"),
            "alert.labels.component",
            "string",
        ),
        (
            GOOD.replace('component = "redis"', 'drill_id = "9"'),
            "alert.labels.drill_id",
            "per drill",
        ),
        (
            GOOD.replace(
                'expect = { contains = "PONG" }', 'expect = { contain = "PONG" }'
            ),
            "health[0].expect.contain",
            "unknown field",
        ),
        (
            GOOD.replace('expect = { contains = "PONG" }', "expect = { ok = 1 }"),
            "health[0].expect.ok",
            "true or false",
        ),
        (
            GOOD.replace(
                'expect = { contains = "PONG" }',
                "expect = { number = { pattern = 'x', below = 1 } }",
            ),
            "health[0].expect.number.pattern",
            "group",
        ),
        (
            GOOD.replace(
                'expect = { contains = "PONG" }',
                "expect = { number = { pattern = '(', below = 1 } }",
            ),
            "health[0].expect.number.pattern",
            "regular expression",
        ),
        (
            GOOD.replace('{ start = "redis" }', '{ start = "kafka" }'),
            'simulate."docker compose restart redis".start',
            "not a part",
        ),
        (
            GOOD.replace('{ start = "redis" }', '{ heal = "disk_full" }'),
            'simulate."docker compose restart redis".heal',
            "not one of this scenario's faults",
        ),
        (
            GOOD.replace('{ start = "redis" }', "{ }"),
            'simulate."docker compose restart redis"',
            "one of heal",
        ),
        (GOOD.replace('name = "redis_down"', ""), "faults[0].name", "missing"),
        (
            GOOD.replace('[[faults]]\nname = "redis_down"', "faults = []"),
            "faults",
            "non-empty",
        ),
        ("title = \n", "", "not valid TOML"),
    ],
)
def test_a_bad_file_is_refused_with_its_field(tmp_path, text, field, words):
    message = refusal(tmp_path, text)
    assert message.startswith(f"mine.toml: {field}: " if field else "mine.toml: ")
    assert words in message


def test_an_unknown_fault_is_refused_when_the_stack_is_known(tmp_path):
    message = refusal(tmp_path, GOOD, known_faults={"database_down"})
    assert message.startswith("mine.toml: faults[0].name: no fault 'redis_down'")
    assert "database_down" in message


def test_a_file_name_that_is_not_a_slug_is_refused(tmp_path):
    assert "slug" in refusal(tmp_path, GOOD, name="My Drill.toml")


def test_a_file_that_is_not_utf8_is_refused(tmp_path):
    path = tmp_path / "bin.toml"
    path.write_bytes(b"title = '\xff'\n")
    with pytest.raises(ScenarioError, match="not UTF-8"):
        load_file(path)


def test_one_bad_file_does_not_hide_the_others(tmp_path):
    write(tmp_path, GOOD, "good.toml")
    write(tmp_path, "title = 'broken'\n", "broken.toml")
    loaded = scenarios.load_all([tmp_path])
    assert list(loaded.scenarios) == ["good"]
    assert [str(p) for p in loaded.problems] == ["broken.toml: playbook: missing"]


def test_a_teams_directory_adds_and_replaces_scenarios(tmp_path, settings):
    write(
        tmp_path, GOOD.replace("Redis stopped", "Our Redis drill"), "redis-stopped.toml"
    )
    write(tmp_path, GOOD, "our-own.toml")
    settings.DRILL_SCENARIOS_DIR = str(tmp_path)
    loaded = scenarios.load_all()
    assert loaded.scenarios["redis-stopped"].title == "Our Redis drill"
    assert not loaded.scenarios["redis-stopped"].bundled
    assert "our-own" in loaded.scenarios and "api-5xx" in loaded.scenarios


def test_a_missing_teams_directory_is_a_problem_not_a_crash(tmp_path, settings):
    settings.DRILL_SCENARIOS_DIR = str(tmp_path / "nowhere")
    loaded = scenarios.load_all()
    assert "api-5xx" in loaded.scenarios
    assert "not a directory" in str(loaded.problems[0])


def test_resolve_refuses_a_playbook_or_probe_the_runbook_lacks(yomira, tmp_path):
    other = load_file(write(tmp_path, GOOD.replace("playbook = 4", "playbook = 40")))
    with pytest.raises(
        ScenarioError,
        match="mine.toml: playbook: the current runbook has no playbook 40",
    ):
        scenarios.resolve(other)
    wrong = load_file(write(tmp_path, GOOD.replace("ping'", "pong'")))
    with pytest.raises(ScenarioError, match=r"health\[0\]\.command: §4 has no probe"):
        scenarios.resolve(wrong)
    action = load_file(
        write(
            tmp_path,
            GOOD.replace(
                "'redis-cli -u \"${REDIS_URL}\" ping'",
                "'redis-cli -u \"${REDIS_URL}\" config set'",
            ),
        )
    )
    with pytest.raises(ScenarioError, match="no probe"):
        scenarios.resolve(action)


def test_expectations_judge_a_result():
    expect = scenarios.Expectation(
        contains=("PONG",),
        says=("redis: ok",),
        data={"dirty": False},
        below={"x": 5},
        rows=0,
    )
    healthy = expect.failures(
        True,
        'PONG {"redis": "ok"}',
        {"dirty": False, "x": 1},
        {"tables": [{"rows": []}]},
    )
    assert healthy == []
    sick = expect.failures(
        False, "nothing", {"dirty": True, "x": 9}, {"tables": [{"rows": [[1]]}]}
    )
    assert len(sick) == 6
    leak = scenarios.Expectation(number=(r"total (\d+)", 1000))
    assert leak.failures(True, "goroutine profile: total 12", {}, {}) == []
    assert leak.failures(True, "goroutine profile: total 5000", {}, {})
