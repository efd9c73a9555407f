"""Drills as verbs, each taking an Actor: start one (inject the fault, fire the
alert through the console's own intake), simulate a manual step, check whether the
playbook's health probes pass, abandon one. Never outside the simulated stack:
every write refuses unless SANDBOX is on (production settings refuse SANDBOX)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from alerts import intake, sources
from alerts.models import AlertSource, digest
from alerts.payloads import PayloadError, parse
from incidents import access, audit
from incidents.actors import Actor
from incidents.models import Command, Incident
from incidents.services.execution import run_context
from probes import redaction
from probes.commands import display_text
from probes.commands import run as run_command
from probes.runtime import Result

from . import scorecards
from .models import Drill
from .scenarios import Scenario, ScenarioError, resolve
from .scenarios import get as get_scenario

log = logging.getLogger(__name__)
State = Drill.State
# Who the drills app acts as where no person does: the beat's health checks, the
# alert source it creates.
DRILLS = Actor.system("drills")
SOURCE_NAME = "drills"
# Starting a drill opens an incident (through the intake) and needs someone to
# command it: both permissions, from a role (a Commander) or the person's own.
START_PERMISSIONS = (access.OPEN_INCIDENTS, access.COMMAND_INCIDENTS)


class DrillRefused(ValueError):
    """A drill the console will not start or change, with the reason in words;
    `status` is the HTTP answer a view gives it."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


# --- who may ---------------------------------------------------------------------


def sandbox_refusal() -> str:
    """Why no drill can run here ("" when one can)."""
    if not getattr(settings, "SANDBOX", False):
        return (
            "Drills run only against the simulated Yomira stack, and it is off here "
            "(SANDBOX is not set; it never is in production)."
        )
    return ""


def start_refusal(user) -> str:  # noqa: ANN001
    """Why this person may not start drills ("" when they may)."""
    if user is None or not user.is_authenticated:
        return "Sign in first."
    missing = [p for p in START_PERMISSIONS if not access.can(user, p)]
    if missing:
        return (
            "Starting a drill opens an incident and commands it: it needs the "
            f"{' and '.join(p.split('.')[1] for p in missing)} permission "
            "(the Commander role has both)."
        )
    return ""


def refuse_without_sandbox(
    actor: Actor, what: str, incident: Incident | None = None
) -> None:
    """A drill asked for where there is no simulated stack (production): the
    denial audited, and refused in words (not a missing permission)."""
    why = sandbox_refusal()
    if why:
        audit.append(
            "permission.denied",
            actor=actor,
            incident=incident,
            data={"permission": "drills", "asked": what, "why": why},
        )
        raise DrillRefused(why, status=403)


def may_simulate(user, incident: Incident) -> bool:  # noqa: ANN001
    """A simulated step changes the stack as the real command would: the same
    right as running the playbook's actions."""
    return access.can_on_playbook(user, access.RUN_ACTIONS, incident.playbook)


def _check_starter(actor: Actor) -> None:
    if actor.is_system:
        access.refuse(
            actor, access.COMMAND_INCIDENTS, why="only a person starts a drill"
        )
    for perm in START_PERMISSIONS:
        access.check(actor, perm)


# --- the stack ---------------------------------------------------------------------


def stack():  # noqa: ANN201 - sandbox.stack.Stack
    """The simulated stack the console was started with."""
    from sandbox.stack import Stack

    return Stack(settings.SANDBOX_DIR)


def _faults():  # noqa: ANN202 - the sandbox.faults module
    from sandbox import faults

    return faults


# --- start ------------------------------------------------------------------------


def drill_source() -> AlertSource:
    """The alert source drills fire through, created on first use: a drill
    source, so the intake opens its incidents as drills."""
    found = AlertSource.objects.filter(name=SOURCE_NAME).first()
    if found is None:
        try:
            found, _token = sources.create(
                name=SOURCE_NAME,
                kind=AlertSource.Kind.ALERTMANAGER,
                actor=DRILLS,
                drill=True,
            )
        except IntegrityError:  # another start created it first
            found = AlertSource.objects.get(name=SOURCE_NAME)
    if not found.drill:
        raise DrillRefused(
            f"The alert source “{SOURCE_NAME}” exists and is not a drill source: its "
            "incidents would be real. Rename it in the admin, or mark it drill."
        )
    if not found.enabled:
        raise DrillRefused(
            f"The alert source “{SOURCE_NAME}” is disabled in the admin: enable it to "
            "run drills."
        )
    return found


def alert_body(scenario: Scenario, drill: Drill) -> bytes:
    """The scenario's alert as Alertmanager (webhook version 4) sends it. The
    drill's id is a label, so each drill is its own alert group and incident."""
    labels = {**scenario.labels, "drill_id": str(drill.pk)}
    annotations = {
        "description": scenario.description.strip(),
        **scenario.annotations,
    }
    group_labels = {"alertname": labels["alertname"], "drill_id": str(drill.pk)}
    alert = {
        "status": "firing",
        "labels": labels,
        "annotations": annotations,
        "startsAt": timezone.now().isoformat(),
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": scenario.generator_url,
    }
    body = {
        "version": "4",
        "receiver": SOURCE_NAME,
        "status": "firing",
        "groupKey": "{}:{"
        + ", ".join(f'{k}="{v}"' for k, v in group_labels.items())
        + "}",
        "groupLabels": group_labels,
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": "",
        "truncatedAlerts": 0,
        "alerts": [alert],
    }
    return json.dumps(body).encode()


def start_drill(*, scenario: Scenario | str, actor: Actor) -> Drill:
    """Inject the scenario's faults into the simulated stack, then fire its alert
    through the console's own intake (a drill source): routing, diagnosis and
    escalation run as for a real alert, and the incident is a drill.
    One running drill per scenario. Audited: drill.started, drill.alert_fired."""
    refuse_without_sandbox(actor, "start a drill")
    _check_starter(actor)
    if isinstance(scenario, str):
        try:
            scenario = get_scenario(scenario)
        except ScenarioError as exc:
            raise DrillRefused(str(exc)) from None
    try:
        resolved = resolve(scenario)
    except ScenarioError as exc:
        raise DrillRefused(str(exc)) from None
    source = drill_source()

    try:
        with transaction.atomic():
            drill = Drill.objects.create(
                scenario=scenario.slug,
                title=scenario.title[:200],
                playbook_number=resolved.playbook.number,
                started_by=actor.user,
            )
            audit.append(
                "drill.started",
                actor=actor,
                obj=drill,
                data={
                    "scenario": scenario.slug,
                    "title": scenario.title,
                    "playbook": resolved.playbook.number,
                    "faults": [f.name for f in scenario.faults],
                },
            )
    except IntegrityError:
        running = Drill.objects.of_scenario(scenario.slug).running().first()
        raise DrillRefused(
            f"A drill of “{scenario.title}” is already running"
            + (f" (drill #{running.pk})" if running else "")
            + ": finish or abandon it first."
        ) from None

    injected = []
    try:
        the_stack, faults = stack(), _faults()
        for fault in scenario.faults:
            said = faults.inject(the_stack, fault.name, **fault.params)
            injected.append({"fault": fault.name, "params": fault.params, "did": said})
    except Exception as exc:  # noqa: BLE001 - the stack's failure, said in words
        log.exception("drill %s: injecting the faults failed", drill.pk)
        _heal(scenario, injected)
        _end(
            drill, State.ABANDONED, actor, why=f"the fault could not be injected: {exc}"
        )
        raise DrillRefused(
            f"The fault could not be injected into the simulated stack: {exc}"
        ) from None
    Drill.objects.filter(pk=drill.pk).update(injected=injected)

    body = alert_body(scenario, drill)
    try:
        notification = parse(AlertSource.Kind.ALERTMANAGER, body)
    except PayloadError as exc:  # the file's labels: refused by the intake's rules
        _heal(scenario, injected)
        _end(drill, State.ABANDONED, actor, why=f"the alert was refused: {exc}")
        raise DrillRefused(f"The scenario's alert was refused: {exc}") from None
    try:
        _fire(drill, scenario, source, body, notification, injected, actor)
    except Exception as exc:  # noqa: BLE001 - the stack must not stay broken
        log.exception("drill %s: firing the alert failed", drill.pk)
        _heal(scenario, injected)
        _end(drill, State.ABANDONED, actor, why=f"the alert could not be fired: {exc}")
        raise DrillRefused(
            f"The alert could not be fired through the intake ({exc}); the fault "
            "was healed."
        ) from None
    drill.refresh_from_db()
    return drill


def _fire(
    drill: Drill,
    scenario: Scenario,
    source: AlertSource,
    body: bytes,
    notification,  # noqa: ANN001 - alerts.payloads.Notification
    injected: list[dict],
    actor: Actor,
) -> None:
    """The alert through the intake, the drill linked to the incident it opened.
    One transaction for the receipt and its processing: the drain task the
    receipt sends on commit finds it applied, so the incident is known here."""
    with transaction.atomic():
        receipt = intake.receive(source=source, body=body, notification=notification)
        intake.process(receipt.pk)
        group = source.groups.filter(key_sha256=digest(notification.group_key)).first()
        incident = group.incident if group is not None else None
        Drill.objects.filter(pk=drill.pk).update(incident=incident)
        audit.append(
            "drill.alert_fired",
            actor=actor,
            incident=incident,
            obj=drill,
            data={
                "drill": drill.pk,
                "scenario": scenario.slug,
                "alert": scenario.labels["alertname"],
                "receipt": receipt.pk,
                "injected": [i["did"] for i in injected],
                "incident": incident.pk if incident else None,
                "routed": group.rule if group else "",
            },
        )


def _heal(scenario: Scenario, injected: list[dict]) -> list[str]:
    """Undo what was injected (best effort: the stack's own words, or the error)."""
    said = []
    faults = _faults()
    the_stack = stack()
    for item in reversed(injected):
        try:
            # A fault's heal takes no injection parameters: it undoes what is there.
            said.append(faults.heal(the_stack, item["fault"]))
        except Exception as exc:  # noqa: BLE001
            log.exception("healing %s failed", item["fault"])
            said.append(f"could not heal {item['fault']}: {exc}")
    return said


def _end(drill: Drill, state: str, actor: Actor, *, why: str = "") -> bool:
    now = timezone.now()
    with transaction.atomic():
        changed = Drill.objects.filter(pk=drill.pk, state=State.RUNNING).update(
            state=state, ended_at=now
        )
        if changed:
            drill.refresh_from_db()
            audit.append(
                f"drill.{state}",
                actor=actor,
                incident=drill.incident,
                obj=drill,
                data={"drill": drill.pk, "scenario": drill.scenario, "why": why},
            )
    return bool(changed)


def abandon_drill(*, drill: Drill, actor: Actor) -> Drill:
    """Stop a running drill: its faults are healed (the stack is left healthy for
    the next one) and it is marked abandoned. Its incident stays as it is."""
    access.check(actor, access.COMMAND_INCIDENTS)
    if not drill.is_running:
        raise DrillRefused(
            f"This drill is {drill.get_state_display().lower()}: only a running "
            "drill can be abandoned."
        )
    healed = []
    try:
        scenario = get_scenario(drill.scenario)
        healed = _heal(scenario, drill.injected or [])
    except ScenarioError:
        healed = ["the scenario file is gone: heal the stack by hand (make clean)"]
    _end(drill, State.ABANDONED, actor, why="; ".join(healed))
    drill.refresh_from_db()
    return drill


# --- simulate ---------------------------------------------------------------------


@dataclass
class Simulated:
    drill: Drill
    command: Command
    did: str


def simulate(*, drill: Drill, command: Command, actor: Actor) -> Simulated:
    """Do to the simulated stack what a manual command would do (the scenario's
    `simulate` map says what), and record it on the incident's timeline as
    simulated. Only in a running drill, only for a manual command of its playbook
    that the scenario maps."""
    incident = drill.incident
    refuse_without_sandbox(actor, "simulate a step", incident)
    if incident is None:
        raise DrillRefused("This drill has no incident.")
    if not actor.is_system and not may_simulate(actor.user, incident):
        access.refuse(
            actor,
            access.RUN_ACTIONS,
            incident,
            why="simulating a step changes the stack as the command would",
        )
    if not drill.is_running:
        raise DrillRefused(
            f"The drill is {drill.get_state_display().lower()}: there is nothing "
            "left to simulate."
        )
    if (
        command.playbook_id != incident.playbook_id
        or command.kind != Command.Kind.MANUAL
    ):
        raise DrillRefused(
            "Only a manual command of this incident's playbook can be simulated."
        )
    try:
        scenario = get_scenario(drill.scenario)
    except ScenarioError as exc:
        raise DrillRefused(str(exc)) from None
    simulation = scenario.simulation_for(command.text)
    if simulation is None:
        raise DrillRefused(
            "This drill's scenario does not say what this command would do: do it "
            "in your head, then tick the step."
        )
    try:
        if simulation.heal:
            said = _faults().heal(stack(), simulation.heal)
        else:
            stack().part(simulation.start).start()
            said = f"started the {simulation.start}"
    except Exception as exc:  # noqa: BLE001 - the stack's failure, in words
        log.exception("drill %s: simulating %r failed", drill.pk, command.text[:80])
        raise DrillRefused(f"The simulated stack could not do it: {exc}") from None
    did = simulation.describe()
    audit.append(
        "drill.simulated",
        actor=actor,
        incident=incident,
        obj=command,
        data={
            "drill": drill.pk,
            "step": command.step.number if command.step_id else None,
            "command": display_text(command, {})[:300],
            "did": did,
            "stack": str(said)[:300],
        },
    )
    return Simulated(drill, command, did)


def simulation_for(incident: Incident, command: Command) -> str:
    """What "simulate" would do for this command in this incident's drill, in
    words ("" when there is nothing to offer: not a running drill, not a manual
    command the scenario maps)."""
    if not incident.drill or command.kind != Command.Kind.MANUAL:
        return ""
    # One query and one read of the scenario files per drawing of the checklist,
    # not per manual command: kept on the incident object the template shares.
    if not hasattr(incident, "_drill_scenario"):
        drill = Drill.objects.filter(incident=incident, state=State.RUNNING).first()
        scenario = None
        if drill is not None:
            try:
                scenario = get_scenario(drill.scenario)
            except ScenarioError:
                scenario = None
        incident._drill_scenario = scenario
    scenario = incident._drill_scenario
    if scenario is None:
        return ""
    simulation = scenario.simulation_for(command.text)
    return simulation.describe() if simulation else ""


# --- health -----------------------------------------------------------------------


@dataclass
class HealthResult:
    drill: Drill
    healthy: bool
    checks: list[dict[str, Any]]
    healed_now: bool = False


def check_health(drill: Drill) -> HealthResult:
    """Run the scenario's health probes (read-only, in this process, through the
    probes engine) and, when every one shows what it must, mark the drill healed
    (once: a conditional UPDATE) with its scorecard. The check itself is kept on
    the drill, not in the audit log (the beat runs it every few seconds); the heal
    is audited."""
    if not drill.is_running:
        return HealthResult(
            drill, drill.state == State.HEALED, drill.last_check.get("checks", [])
        )
    try:
        resolved = resolve(get_scenario(drill.scenario))
    except ScenarioError as exc:
        checks = [{"command": "", "ok": False, "wrong": [str(exc)], "summary": ""}]
        _keep_check(drill, checks)
        return HealthResult(drill, False, checks)
    checks = []
    for check, command in resolved.health:
        try:
            result = run_command(command, {}, run_context())
        except Exception as exc:  # noqa: BLE001 - a probe that cannot run is unhealthy
            result = Result(False, f"{type(exc).__name__}: {exc}")
        summary = redaction.redact(result.summary)
        output = redaction.redact(result.output)
        wrong = check.expect.failures(
            result.ok, f"{summary}\n{output}", result.data, result.structured
        )
        checks.append(
            {
                "command": display_text(command, {})[:300],
                "playbook": command.playbook.number,
                "ok": not wrong,
                "wrong": wrong,
                "summary": summary[:300],
            }
        )
    healthy = all(c["ok"] for c in checks)
    if not healthy:
        _keep_check(drill, checks)
        drill.refresh_from_db()
        return HealthResult(drill, False, checks)
    now = timezone.now()
    with transaction.atomic():
        healed = Drill.objects.filter(pk=drill.pk, state=State.RUNNING).update(
            state=State.HEALED,
            healed_at=now,
            last_check={"checks": checks},
            last_checked_at=now,
        )
        drill.refresh_from_db()
        if healed:
            if drill.incident is not None and drill.incident.resolved_at is not None:
                drill.ended_at = now
            drill.scorecard = scorecards.scorecard(drill)
            drill.save(update_fields=["ended_at", "scorecard"])
            audit.append(
                "drill.healed",
                actor=DRILLS,
                incident=drill.incident,
                obj=drill,
                data={
                    "drill": drill.pk,
                    "scenario": drill.scenario,
                    "checks": [
                        {"command": c["command"][:200], "summary": c["summary"][:200]}
                        for c in checks
                    ],
                    "mitigation_seconds": drill.scorecard["times"].get("mitigation"),
                },
            )
    return HealthResult(drill, True, checks, healed_now=bool(healed))


def _keep_check(drill: Drill, checks: list[dict]) -> None:
    Drill.objects.filter(pk=drill.pk, state=State.RUNNING).update(
        last_check={"checks": checks}, last_checked_at=timezone.now()
    )


def incident_resolved(incident: Incident) -> None:
    """A drill's incident was resolved: a healed drill ends, its scorecard final."""
    drill = Drill.objects.filter(incident=incident, state=State.HEALED).first()
    if drill is None or drill.ended_at is not None:
        return
    drill.ended_at = timezone.now()
    drill.scorecard = scorecards.scorecard(drill)
    drill.save(update_fields=["ended_at", "scorecard"])
