"""A migrate action before anyone confirms it: the version schema_migrations is at
and what it will become; for `up`, `down` and `goto`, which files would run, in
order (read from the worker's checkout, planned as golang-migrate plans them), or
that there is nothing to run."""

from __future__ import annotations

import psycopg

from ... import targets
from ...binding import CommandLike
from ...family import Preview
from ...runtime import Context
from . import apply, source, table
from .plan import PlanError, plan

DETAIL_CHARS = 4000  # of the files' SQL shown under the list


def preview(command: CommandLike, params: dict[str, str], ctx: Context) -> Preview:
    spec = command.spec
    subcommand = spec.get("subcommand")
    found = None
    if subcommand in apply.WITH_FILES:
        try:
            found = source.read(spec)
        except source.SourceError as exc:
            return Preview(False, f"No preview: {exc}")
    dsn = targets.require(spec.get("target") or "DATABASE_URL")
    with psycopg.connect(dsn, connect_timeout=max(1, int(ctx.connect_timeout))) as conn:
        # A preview runs in the web request: a table locked by a migration must
        # not hold it.
        conn.execute("SET statement_timeout = 3000")
        version, dirty = table.state(conn)
    now = table.shown(version, dirty)
    if found is None:
        return Preview(
            False,
            f"schema_migrations is at {now}; will become "
            f"{spec.get('argument')}, dirty=false (no SQL runs)",
        )
    if dirty:
        refusal = apply.dirty_refusal(subcommand, version, found)
        return Preview(
            False,
            f"schema_migrations is at {now}. {refusal}",
            nothing=f"the database is dirty at version {version}: `{subcommand}` "
            "is refused until `force` sets a clean version",
        )
    try:
        steps = plan(subcommand, apply.argument_of(spec, params), version, found)
    except PlanError as exc:
        return Preview(False, f"schema_migrations is at {now}. No preview: {exc}")
    if not steps.steps:
        return Preview(
            False,
            f"schema_migrations is at {now}: nothing to apply.",
            nothing=f"nothing to apply: schema_migrations is at {now} and "
            f"{found.folder} has no migration to run from there",
        )
    return _would_run(now, steps, found)


def _would_run(now: str, steps, found: source.Migrations) -> Preview:  # noqa: ANN001
    last = steps.steps[-1]
    after = table.shown(last.target, False)
    verb = "apply" if last.direction == "up" else "roll back"
    count = len(steps.steps)
    facts = [
        f"{n}. {s.label} (then version {table.shown(s.target, False)})"
        for n, s in enumerate(steps.steps, start=1)
    ]
    if steps.short:
        facts.append(
            f"{steps.short} fewer than asked: no more files, so golang-migrate "
            f"stops with 'limit {steps.short} short' after these (a failed run)."
        )
    shown, used = [], 0
    for s in steps.steps:
        text = s.file.body() if s.file else "-- (no file: only the version moves)"
        shown.append(f"-- {s.label}\n{text.strip()}")
        used += len(shown[-1])
        if used > DETAIL_CHARS:
            break
    detail = "\n\n".join(shown)
    if len(detail) > DETAIL_CHARS:
        detail = detail[:DETAIL_CHARS] + "\n… (the rest is in the files)"
    return Preview(
        False,
        f"schema_migrations is at {now}; would {verb} {count} migration"
        f"{'s' if count != 1 else ''} from {found.folder}, each in its own "
        f"transaction, marked dirty while it runs; then version {after}.",
        detail,
        rows=None,
        facts=facts,
    )
