"""`migrate up [N]`, `down N` and `goto V` against the target database, step by
step as golang-migrate runs them (migrate.go runMigrations): for each migration,
record its target version dirty (committed), run the file, record it clean. A
migration that fails leaves the version dirty, with the database's error in the
result, exactly what a person would find after the real tool failed.

A file is sent as one query, as the postgres driver sends it: PostgreSQL runs a
multi-statement query as one implicit transaction, so each migration applies whole
or not at all (and a file that opens its own BEGIN/COMMIT behaves as it would with
the real tool)."""

from __future__ import annotations

import re
import time

import psycopg
from psycopg import errors

from ... import targets
from ...runtime import Context, Deadline, Result, clip, first_line
from . import source, table
from .plan import Plan, PlanError, Step, plan

WITH_FILES = frozenset({"up", "down", "goto"})  # the rest need no files
DID = {"up": "applied", "down": "rolled back"}


def argument_of(spec: dict, params: dict[str, str]) -> str | None:
    """The command's N or V; `{name}` in the runbook is the responder's value."""
    argument = spec.get("argument")
    if argument is None:
        return None
    m = re.fullmatch(r"\{([A-Za-z_][\w.-]*)\}", str(argument))
    if m and m.group(1) in params:
        return params[m.group(1)].strip()
    return str(argument)


def dirty_refusal(subcommand: str, version: int, found: source.Migrations) -> str:
    before = found.prev(version)
    # A failed up leaves its own version dirty; a failed down the one below it.
    hint = f" (after a failed up, {before})" if before is not None else ""
    return (
        f"Refused: the database is dirty at version {version}: a migration failed "
        "half-way, and migrate runs nothing until it is clean. Undo any partial "
        f"change, then `force` the last version that applied cleanly{hint}, and "
        f"run `{subcommand}` again."
    )


def run(command, params: dict[str, str], ctx: Context) -> Result:  # noqa: ANN001
    """Raises TargetMissing before anything is sent; every other failure is a
    Result."""
    spec = command.spec
    subcommand = spec["subcommand"]
    try:
        found = source.read(spec)
    except source.SourceError as exc:
        return Result(False, str(exc))
    dsn = targets.require(spec.get("target") or "DATABASE_URL")
    argument = argument_of(spec, params)
    deadline = Deadline(ctx, grace=0.5)  # statement_timeout first
    progress = Progress()
    try:
        with (
            deadline,
            psycopg.connect(
                dsn,
                connect_timeout=max(1, int(ctx.connect_timeout)),
                application_name="yomira-console",
                autocommit=True,  # each step commits as golang-migrate's do
            ) as conn,
        ):
            deadline.on_expiry(conn.cancel_safe)
            conn.execute(f"SET statement_timeout = {int(ctx.remaining() * 1000)}")
            if not table.try_lock(conn):
                return Result(
                    False,
                    "Another migrate is at work on this database (its lock is "
                    "held): nothing was run. Check `version` when it is done.",
                )
            table.ensure(conn)
            version, dirty = table.state(conn)
            if dirty:
                return Result(
                    False,
                    dirty_refusal(subcommand, version, found),
                    data={"version": version, "dirty": True},
                )
            try:
                steps = plan(subcommand, argument, version, found)
            except PlanError as exc:
                return Result(False, str(exc), data={"version": version})
            progress.was = table.shown(version, False)
            return _apply(conn, steps, progress, ctx)
    except errors.QueryCanceled as exc:
        return progress.failed(exc, ctx, timed_out=True)
    except psycopg.OperationalError as exc:
        if progress.step is None and not deadline.expired:
            return Result(False, f"Cannot reach the target database: {first_line(exc)}")
        return progress.failed(exc, ctx, timed_out=deadline.expired, lost=True)
    except psycopg.Error as exc:
        return progress.failed(exc, ctx)


class Progress:
    """How far a run got: what a failure must say (which file, what is left dirty)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.done: list[Step] = []
        self.step: Step | None = None
        self.was = ""

    def failed(
        self,
        exc: BaseException,
        ctx: Context,
        *,
        timed_out: bool = False,
        lost: bool = False,
    ) -> Result:
        if self.step is None:
            why = f"{type(exc).__name__}: {first_line(exc)}"
            return Result(False, why, clip(str(exc), ctx), timed_out=timed_out)
        step = self.step
        left = table.shown(step.target, True)
        if timed_out:
            what = f"did not finish within {ctx.timeout:g} s"
        else:
            what = f"failed: {type(exc).__name__}: {first_line(exc)}"
        state = (
            f"schema_migrations is probably at {left}: check with `version`"
            if lost
            else f"schema_migrations left at {left}"
        )
        summary = (
            f"{step.label} {what}. {state}; fix it, then `force` the last good version."
        )
        self.lines += [f"error in {step.label}:", str(exc).strip(), state]
        return Result(
            False,
            summary,
            clip("\n".join(self.lines), ctx),
            {
                "version": step.target,
                "dirty": True,
                "failed": step.version,
                "applied": [s.version for s in self.done],
                "was": self.was,
            },
            timed_out=timed_out,
        )


def _apply(conn, steps: Plan, progress: Progress, ctx: Context) -> Result:  # noqa: ANN001
    if not steps.steps:
        said = f"no change: nothing to run from {progress.was}"
        return Result(True, said, said, {"applied": [], "was": progress.was})
    try:  # every file read before the first runs: none is left half-way for that
        bodies = [s.file.body() if s.file else None for s in steps.steps]
    except (OSError, UnicodeDecodeError, source.SourceError) as exc:
        return Result(False, f"Nothing was run: {exc}")
    for step, body in zip(steps.steps, bodies, strict=True):
        progress.step = step
        started = time.monotonic()
        table.set_version(conn, step.target, True)
        if body is not None and body.strip():
            conn.execute(body)  # no parameters: one simple query, one transaction
        table.set_version(conn, step.target, False)
        took = (time.monotonic() - started) * 1000
        title = step.file.title if step.file else "(no file)"
        progress.lines.append(
            f"{step.version}/{step.direction[0]} {title} ({took:.1f}ms)"
        )
        progress.done.append(step)
    progress.step = None
    last = steps.steps[-1]
    now = table.shown(last.target, False)
    verb = DID[last.direction]  # one direction per run, as in golang-migrate
    names = ", ".join(s.label.rsplit("/", 1)[-1] for s in steps.steps)
    summary = f"{verb} {names}: version {now}, clean (was {progress.was})"
    data = {
        "version": None if last.target == table.NIL else last.target,
        "dirty": False,
        "applied": [s.version for s in steps.steps],
        "was": progress.was,
    }
    if steps.short:
        # golang-migrate stops with "limit N short": fewer files than asked for.
        summary += f"; {steps.short} fewer than asked: no more migrations in the files"
        progress.lines.append(f"error: limit {steps.short} short")
        return Result(False, summary, clip("\n".join(progress.lines), ctx), data)
    progress.lines.append(f"version {now}")
    return Result(True, summary, clip("\n".join(progress.lines), ctx), data)
