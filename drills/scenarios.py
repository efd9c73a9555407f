"""Drill scenarios as data: one TOML file each, in drills/scenarios/ (bundled) and in
the directory a team names with the DRILL_SCENARIOS_DIR setting (a file there with
the same name as a bundled one replaces it).

A file that cannot be used is refused with its path, the field and what is wrong
(`billing.toml: alert.labels.alertname: missing`); the others still load. Reading
a file checks its shape only; `resolve` checks it against the current runbook
(its playbook, its probes, its manual commands), since a team's runbook may differ
from the bundled one."""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings

from incidents.models import Command, Playbook

BUNDLED_DIR = Path(__file__).resolve().parent / "scenarios"
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,79}$")
# A scenario file is small; a huge one is a mistake (or someone's log file).
MAX_FILE_BYTES = 64 * 1024
TOP_LEVEL = {
    "title",
    "description",
    "playbook",
    "faults",
    "alert",
    "health",
    "simulate",
}
EXPECTATIONS = {
    "ok",
    "contains",
    "lacks",
    "says",
    "data",
    "below",
    "rows",
    "first_row",
    "number",
}
SIMULATIONS = {"heal", "start", "says"}
PARTS = ("database", "redis", "api", "s3", "smtp")
# The output's spaces and quotes go before `says` compares: `"redis": "ok"` in a
# JSON document and `redis: ok` in text say the same thing.
NORMALISE = re.compile(r"[\s\"']+")


class ScenarioError(ValueError):
    """A scenario that cannot be used: `where` is file:field."""

    def __init__(self, path: Path | str, where: str, message: str) -> None:
        self.path = str(path)
        self.field = where
        self.message = message
        name = Path(path).name
        super().__init__(
            f"{name}: {where}: {message}" if where else f"{name}: {message}"
        )


@dataclass(frozen=True)
class Fault:
    name: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Expectation:
    """What a health probe's result must show for the part to count as healthy.
    Every given condition must hold (an empty one holds when the probe succeeds)."""

    ok: bool = True
    contains: tuple[str, ...] = ()
    lacks: tuple[str, ...] = ()
    says: tuple[str, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)
    below: dict[str, float] = field(default_factory=dict)
    rows: int | None = None
    # Text in the first row of the first result table (an SQL probe's newest row).
    first_row: tuple[str, ...] = ()
    # (regular expression with one group holding a number, the number must be below)
    number: tuple[str, float] | None = None

    def failures(self, ok: bool, text: str, data: dict, structured: dict) -> list[str]:
        """What in this result is not healthy yet, in words (empty: healthy)."""
        wrong = []
        if ok != self.ok:
            wrong.append("the probe failed" if self.ok else "the probe succeeded")
        for needle in self.contains:
            if needle not in text:
                wrong.append(f"no “{needle}” in its output")
        for needle in self.lacks:
            if needle in text:
                wrong.append(f"its output still shows “{needle}”")
        flat = NORMALISE.sub("", text.lower())
        for claim in self.says:
            if NORMALISE.sub("", claim.lower()) not in flat:
                wrong.append(f"it does not say “{claim}”")
        for key, wanted in self.data.items():
            if data.get(key) != wanted:
                wrong.append(f"{key} is {data.get(key)!r}, not {wanted!r}")
        for key, limit in self.below.items():
            have = data.get(key)
            if not isinstance(have, int | float) or have >= limit:
                wrong.append(f"{key} is {have!r}, not below {limit:g}")
        if self.rows is not None:
            tables = structured.get("tables") or []
            have = len(tables[0].get("rows", [])) if tables else None
            if have != self.rows:
                wrong.append(
                    f"{have if have is not None else 'no'} rows, not {self.rows}"
                )
        if self.first_row:
            tables = structured.get("tables") or []
            rows = tables[0].get("rows", []) if tables else []
            first = " ".join(str(c) for c in rows[0] if c is not None) if rows else ""
            for needle in self.first_row:
                if needle not in first:
                    wrong.append(f"its first row does not show “{needle}”")
        if self.number is not None:
            pattern, limit = self.number
            found = re.search(pattern, text)
            if found is None:
                wrong.append(f"no match for {pattern!r} in its output")
            elif float(found.group(1)) >= limit:
                wrong.append(f"{found.group(0)!r}: not below {limit:g}")
        return wrong


@dataclass(frozen=True)
class HealthCheck:
    """A probe of the runbook, named by the start of its text, and what it must
    show. `playbook`: another playbook's probe (default: the scenario's own)."""

    command: str
    expect: Expectation
    playbook: int | str | None = None


@dataclass(frozen=True)
class Simulation:
    """What "simulate" does for a manual command whose text starts with `prefix`:
    heal one of the scenario's faults, or start a part of the stack."""

    prefix: str
    heal: str = ""
    start: str = ""
    says: str = ""

    def describe(self) -> str:
        if self.says:
            return self.says
        return f"healed {self.heal}" if self.heal else f"started the {self.start}"


@dataclass(frozen=True)
class Scenario:
    slug: str
    path: Path
    title: str
    description: str
    playbook: int | str
    faults: tuple[Fault, ...]
    labels: dict[str, str]
    annotations: dict[str, str]
    generator_url: str
    health: tuple[HealthCheck, ...]
    simulate: tuple[Simulation, ...]

    @property
    def bundled(self) -> bool:
        return self.path.parent == BUNDLED_DIR

    def fault(self, name: str) -> Fault | None:
        return next((f for f in self.faults if f.name == name), None)

    def simulation_for(self, text: str) -> Simulation | None:
        """The simulation of a manual command (the longest matching prefix)."""
        found = [s for s in self.simulate if text.strip().startswith(s.prefix)]
        return max(found, key=lambda s: len(s.prefix), default=None)


# --- reading one file ----------------------------------------------------------------


class _Reader:
    """Field checks that name the file and the field in their refusal."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, where: str, message: str) -> ScenarioError:
        return ScenarioError(self.path, where, message)

    def table(self, value: object, where: str) -> dict:
        if not isinstance(value, dict):
            raise self.fail(where, f"must be a table, not {_kind(value)}")
        return value

    def text(self, value: object, where: str, *, empty: bool = False) -> str:
        if not isinstance(value, str):
            raise self.fail(where, f"must be a string, not {_kind(value)}")
        if not empty and not value.strip():
            raise self.fail(where, "must not be empty")
        if "\x00" in value:
            raise self.fail(where, "holds a NUL character")
        return value

    def texts(self, value: object, where: str) -> tuple[str, ...]:
        """A string or a list of strings."""
        if isinstance(value, str):
            return (self.text(value, where),)
        if not isinstance(value, list) or not value:
            raise self.fail(where, "must be a string or a list of strings")
        return tuple(self.text(v, f"{where}[{i}]") for i, v in enumerate(value))

    def number(self, value: object, where: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(where, f"must be a number, not {_kind(value)}")
        if not math.isfinite(value):
            raise self.fail(where, "must be a finite number")
        return value

    def only(self, table: dict, allowed: Iterable[str], where: str) -> None:
        unknown = sorted(set(table) - set(allowed))
        if unknown:
            prefix = f"{where}." if where else ""
            raise self.fail(
                f"{prefix}{unknown[0]}",
                f"unknown field (allowed: {', '.join(sorted(allowed))})",
            )


def _kind(value: object) -> str:
    return {
        dict: "a table",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
    }.get(type(value), type(value).__name__)


def load_file(path: Path, known_faults: Iterable[str] | None = None) -> Scenario:
    """One scenario file, checked; ScenarioError names what is wrong. With
    `known_faults`, a fault or a heal naming another is refused too."""
    path = Path(path)
    read = _Reader(path)
    slug = path.stem
    if not SLUG.match(slug):
        raise read.fail(
            "", "the file name must be a slug (lower-case letters, digits, hyphens)"
        )
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise read.fail("", f"cannot be read ({exc.strerror or exc})") from None
    if len(raw) > MAX_FILE_BYTES:
        raise read.fail("", f"is over {MAX_FILE_BYTES // 1024} KB")
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise read.fail("", "is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise read.fail("", f"is not valid TOML ({exc})") from None
    read.only(data, TOP_LEVEL, "")
    for required in ("title", "playbook", "faults", "alert", "health"):
        if required not in data:
            raise read.fail(required, "missing")

    playbook = data["playbook"]
    if isinstance(playbook, bool) or not isinstance(playbook, int | str):
        raise read.fail("playbook", "must be the playbook's number or its slug")
    if isinstance(playbook, int) and playbook < 1:
        raise read.fail("playbook", "must be a playbook number (1 or more)")
    if isinstance(playbook, str):
        playbook = read.text(playbook, "playbook").strip()

    faults = _faults(read, data["faults"], known_faults)
    labels, annotations, generator_url = _alert(read, data["alert"])
    health = _health(read, data["health"])
    simulate = _simulate(read, data.get("simulate", {}), faults)
    return Scenario(
        slug=slug,
        path=path,
        title=read.text(data["title"], "title").strip(),
        description=read.text(data.get("description", ""), "description", empty=True),
        playbook=playbook,
        faults=faults,
        labels=labels,
        annotations=annotations,
        generator_url=generator_url,
        health=health,
        simulate=simulate,
    )


def _faults(
    read: _Reader, value: object, known: Iterable[str] | None
) -> tuple[Fault, ...]:
    if not isinstance(value, list) or not value:
        raise read.fail("faults", "must be a non-empty list of [[faults]] tables")
    known = set(known) if known is not None else None
    found = []
    for i, item in enumerate(value):
        where = f"faults[{i}]"
        item = read.table(item, where)
        read.only(item, {"name", "params"}, where)
        if "name" not in item:
            raise read.fail(f"{where}.name", "missing")
        name = read.text(item["name"], f"{where}.name").strip()
        if known is not None and name not in known:
            raise read.fail(
                f"{where}.name",
                f"no fault {name!r} in the simulated stack "
                f"(it has: {', '.join(sorted(known))})",
            )
        params = read.table(item.get("params", {}), f"{where}.params")
        for key, param in params.items():
            if isinstance(param, dict | list):
                raise read.fail(
                    f"{where}.params.{key}", "must be a string, number or boolean"
                )
        found.append(Fault(name, dict(params)))
    return tuple(found)


def _alert(read: _Reader, value: object) -> tuple[dict, dict, str]:
    alert = read.table(value, "alert")
    read.only(alert, {"labels", "annotations", "generator_url"}, "alert")
    if "labels" not in alert:
        raise read.fail("alert.labels", "missing")
    labels = read.table(alert["labels"], "alert.labels")
    annotations = read.table(alert.get("annotations", {}), "alert.annotations")
    for name, table in (("labels", labels), ("annotations", annotations)):
        for key, item in table.items():
            read.text(item, f"alert.{name}.{key}")
    for required in ("alertname", "severity"):
        if required not in labels:
            raise read.fail(f"alert.labels.{required}", "missing")
    if "drill_id" in labels:
        raise read.fail("alert.labels.drill_id", "is set by the console, per drill")
    generator_url = read.text(
        alert.get("generator_url", ""), "alert.generator_url", empty=True
    )
    return dict(labels), dict(annotations), generator_url


def _health(read: _Reader, value: object) -> tuple[HealthCheck, ...]:
    if not isinstance(value, list) or not value:
        raise read.fail("health", "must be a non-empty list of [[health]] tables")
    checks = []
    for i, item in enumerate(value):
        where = f"health[{i}]"
        item = read.table(item, where)
        read.only(item, {"command", "expect", "playbook"}, where)
        if "command" not in item:
            raise read.fail(f"{where}.command", "missing")
        command = read.text(item["command"], f"{where}.command").strip()
        other = item.get("playbook")
        if other is not None and (
            isinstance(other, bool) or not isinstance(other, int | str)
        ):
            raise read.fail(f"{where}.playbook", "must be a number or a slug")
        checks.append(
            HealthCheck(
                command, _expectation(read, item.get("expect", {}), where), other
            )
        )
    return tuple(checks)


def _expectation(read: _Reader, value: object, at: str) -> Expectation:
    where = f"{at}.expect"
    expect = read.table(value, where)
    read.only(expect, EXPECTATIONS, where)
    ok = expect.get("ok", True)
    if not isinstance(ok, bool):
        raise read.fail(f"{where}.ok", "must be true or false")
    below = read.table(expect.get("below", {}), f"{where}.below")
    number = None
    if "number" in expect:
        spec = read.table(expect["number"], f"{where}.number")
        read.only(spec, {"pattern", "below"}, f"{where}.number")
        for key in ("pattern", "below"):
            if key not in spec:
                raise read.fail(f"{where}.number.{key}", "missing")
        pattern = read.text(spec["pattern"], f"{where}.number.pattern")
        try:
            groups = re.compile(pattern).groups
        except re.error as exc:
            raise read.fail(
                f"{where}.number.pattern", f"is not a regular expression ({exc})"
            ) from None
        if groups < 1:
            raise read.fail(
                f"{where}.number.pattern", "needs a group around the number"
            )
        number = (pattern, read.number(spec["below"], f"{where}.number.below"))
    rows = expect.get("rows")
    if rows is not None and (isinstance(rows, bool) or not isinstance(rows, int)):
        raise read.fail(f"{where}.rows", "must be a whole number")
    return Expectation(
        ok=ok,
        contains=_optional_texts(read, expect, "contains", where),
        lacks=_optional_texts(read, expect, "lacks", where),
        says=_optional_texts(read, expect, "says", where),
        first_row=_optional_texts(read, expect, "first_row", where),
        data=dict(read.table(expect.get("data", {}), f"{where}.data")),
        below={k: read.number(v, f"{where}.below.{k}") for k, v in below.items()},
        rows=rows,
        number=number,
    )


def _optional_texts(
    read: _Reader, table: dict, key: str, where: str
) -> tuple[str, ...]:
    return read.texts(table[key], f"{where}.{key}") if key in table else ()


def _simulate(
    read: _Reader, value: object, faults: tuple[Fault, ...]
) -> tuple[Simulation, ...]:
    table = read.table(value, "simulate")
    names = {f.name for f in faults}
    found = []
    for prefix, item in table.items():
        where = f'simulate."{prefix}"'
        if not prefix.strip():
            raise read.fail(where, "a command's text prefix must not be empty")
        item = read.table(item, where)
        read.only(item, SIMULATIONS, where)
        heal = read.text(item.get("heal", ""), f"{where}.heal", empty=True).strip()
        start = read.text(item.get("start", ""), f"{where}.start", empty=True).strip()
        if bool(heal) == bool(start):
            raise read.fail(where, "needs one of heal (a fault) or start (a part)")
        if heal and heal not in names:
            raise read.fail(
                f"{where}.heal", f"{heal!r} is not one of this scenario's faults"
            )
        if start and start not in PARTS:
            raise read.fail(
                f"{where}.start", f"{start!r} is not a part ({', '.join(PARTS)})"
            )
        says = read.text(item.get("says", ""), f"{where}.says", empty=True).strip()
        found.append(Simulation(prefix.strip(), heal, start, says))
    return tuple(found)


# --- every file ------------------------------------------------------------------------


def directories() -> list[Path]:
    """The bundled directory, then the team's (DRILL_SCENARIOS_DIR), if set."""
    found = [BUNDLED_DIR]
    extra = getattr(settings, "DRILL_SCENARIOS_DIR", None)
    if extra:
        found.append(Path(extra))
    return found


def known_faults() -> set[str] | None:
    """The simulated stack's fault names (None when it is not installed here)."""
    try:
        from sandbox import faults
    except ImportError:
        return None
    return set(getattr(faults, "FAULTS", {}) or {}) or None


@dataclass
class Loaded:
    scenarios: dict[str, Scenario]
    problems: list[ScenarioError]


def load_all(dirs: Iterable[Path] | None = None) -> Loaded:
    """Every scenario by slug, and what was refused (one bad file never hides the
    others). A later directory's file replaces an earlier one of the same name."""
    faults = known_faults()
    loaded = Loaded({}, [])
    for directory in dirs if dirs is not None else directories():
        if not directory.is_dir():
            loaded.problems.append(
                ScenarioError(directory, "", "is not a directory (DRILL_SCENARIOS_DIR)")
            )
            continue
        for path in sorted(directory.glob("*.toml")):
            try:
                scenario = load_file(path, faults)
            except ScenarioError as exc:
                loaded.problems.append(exc)
                loaded.scenarios.pop(path.stem, None)
                continue
            loaded.scenarios[scenario.slug] = scenario
    return loaded


def get(slug: str) -> Scenario:
    """One scenario by slug; ScenarioError if it does not exist or is refused."""
    loaded = load_all()
    if slug in loaded.scenarios:
        return loaded.scenarios[slug]
    for problem in loaded.problems:
        if Path(problem.path).stem == slug:
            raise problem
    raise ScenarioError(f"{slug}.toml", "", "no such scenario")


# --- against the current runbook -------------------------------------------------------


@dataclass
class Resolved:
    """A scenario's playbook and commands in the current runbook."""

    scenario: Scenario
    playbook: Playbook
    health: list[tuple[HealthCheck, Command]]


def find_command(
    playbook: Playbook, prefix: str, kinds: Iterable[str]
) -> Command | None:
    """The playbook's first command of these kinds whose text starts with `prefix`."""
    for command in playbook.commands.filter(kind__in=list(kinds)).order_by("position"):
        if command.text.strip().startswith(prefix):
            return command
    return None


def playbook_of(wanted: int | str, playbooks: list[Playbook]) -> Playbook | None:
    text = str(wanted).strip().lstrip("§").lower()
    return next((p for p in playbooks if text in (str(p.number), p.slug.lower())), None)


def resolve(scenario: Scenario) -> Resolved:
    """Check the scenario against the current runbook: its playbook exists, every
    health check names a probe that needs no parameter, every simulation a manual
    command. ScenarioError otherwise (a team's runbook may differ)."""
    playbooks = list(Playbook.objects.current().select_related("runbook"))
    playbook = playbook_of(scenario.playbook, playbooks)
    if playbook is None:
        raise ScenarioError(
            scenario.path,
            "playbook",
            f"the current runbook has no playbook {scenario.playbook!r}",
        )
    health = []
    for i, check in enumerate(scenario.health):
        where = f"health[{i}]"
        owner = playbook
        if check.playbook is not None:
            owner = playbook_of(check.playbook, playbooks)
            if owner is None:
                raise ScenarioError(
                    scenario.path,
                    f"{where}.playbook",
                    f"the current runbook has no playbook {check.playbook!r}",
                )
        command = find_command(owner, check.command, [Command.Kind.PROBE])
        if command is None:
            raise ScenarioError(
                scenario.path,
                f"{where}.command",
                f"§{owner.number} has no probe starting with {check.command[:80]!r}",
            )
        if command.parameters:
            raise ScenarioError(
                scenario.path,
                f"{where}.command",
                "a health check cannot need parameters "
                f"({', '.join(command.parameters)})",
            )
        health.append((check, command))
    for simulation in scenario.simulate:
        if find_command(playbook, simulation.prefix, [Command.Kind.MANUAL]) is None:
            raise ScenarioError(
                scenario.path,
                f'simulate."{simulation.prefix}"',
                f"§{playbook.number} has no manual command starting with "
                f"{simulation.prefix[:80]!r}",
            )
    return Resolved(scenario, playbook, health)
