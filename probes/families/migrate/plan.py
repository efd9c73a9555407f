"""Which migrations `up [N]`, `down N` and `goto V` run, in order: golang-migrate's
own reading of the files (migrate.go readUp, readDown, read), so the preview and the
run agree with what the real tool would do from the same version.

Each step names the file it runs and the version schema_migrations holds after it:
going up, the file's own version; going down, the version before it (none below
the first)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .source import File, Migrations

NIL = -1  # golang-migrate's "no version" (an empty schema_migrations)


class PlanError(Exception):
    """What golang-migrate would refuse before running anything, in words."""


@dataclass(frozen=True)
class Step:
    version: int  # the migration's version
    target: int  # the version recorded once it ran (NIL: none)
    direction: str  # "up" or "down"
    file: File | None  # None: no file for that direction, only the version moves

    @property
    def label(self) -> str:
        if self.file is not None:
            return self.file.shown
        return f"version {self.version} ({self.direction}: no file, the version alone)"


@dataclass
class Plan:
    steps: list[Step] = field(default_factory=list)
    short: int = (
        0  # how many fewer than N the files allow (golang-migrate's "limit N short")
    )


def number(argument: str | None, what: str) -> int:
    if argument is None or not argument.isdigit():
        raise PlanError(f"{what} must be a whole number, not {argument!r}.")
    return int(argument)


def plan(
    subcommand: str, argument: str | None, current: int, found: Migrations
) -> Plan:
    """The steps from `current` (NIL for no version). Raises PlanError."""
    if current != NIL and not found.has(current):
        raise PlanError(
            f"The database is at version {current}, which {found.folder} has no "
            "file for (another checkout? pull it, or check -path)."
        )
    if subcommand == "up":
        limit = None if argument is None else number(argument, "up's N")
        return _up(current, limit, found)
    if subcommand == "down":
        if argument is None:
            raise PlanError(
                "`down` without N would undo every migration (golang-migrate asks "
                "for confirmation): name how many, e.g. `down 1`."
            )
        return _down(current, number(argument, "down's N"), found)
    if subcommand == "goto":
        return _goto(current, number(argument, "goto's version"), found)
    raise PlanError(f"`{subcommand}` is not planned here.")


def _step(found: Migrations, version: int, target: int) -> Step:
    if target >= version:
        return Step(version, target, "up", found.up.get(version))
    return Step(version, target, "down", found.down.get(version))


def _up(current: int, limit: int | None, found: Migrations) -> Plan:
    steps: list[Step] = []
    at = current
    while limit is None or len(steps) < limit:
        following = found.first() if at == NIL else found.next(at)
        if following is None:
            break
        steps.append(_step(found, following, following))
        at = following
    short = 0 if limit is None else limit - len(steps)
    return Plan(steps, short if steps else 0)


def _down(current: int, limit: int, found: Migrations) -> Plan:
    steps: list[Step] = []
    at = current
    while at != NIL and len(steps) < limit:
        before = found.prev(at)
        target = NIL if before is None else before
        steps.append(_step(found, at, target))
        at = target
    return Plan(steps, limit - len(steps) if steps else 0)


def _goto(current: int, to: int, found: Migrations) -> Plan:
    if not found.has(to):
        raise PlanError(f"No migration for version {to} in {found.folder}.")
    steps: list[Step] = []
    at = current
    if at == NIL or at < to:
        while at == NIL or at < to:
            following = found.first() if at == NIL else found.next(at)
            if following is None:  # cannot happen: `to` is one of the versions
                break
            steps.append(_step(found, following, following))
            at = following
    else:
        while at > to:
            before = found.prev(at)
            if before is None:
                break
            steps.append(_step(found, at, before))
            at = before
    return Plan(steps)
