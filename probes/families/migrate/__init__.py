"""golang-migrate's schema_migrations table: `migrate ... version` is a probe;
force/up/down/goto/drop are actions. `force` sets the version and clears the dirty
flag (no SQL); `up [N]`, `down N` and `goto V` run the migration files of the
worker's checkout of the application repository (TARGET_MIGRATIONS_ROOT) as
golang-migrate does; `drop` stays with a person."""

from __future__ import annotations

import psycopg

from ...binding import ACTION, Binding, CommandLike
from ...family import BaseFamily, Call, Preview
from ...runtime import Context, Result, first_line
from ...text import DESTRUCTIVE
from . import apply, runner, source
from . import preview as migrate_preview
from .plan import PlanError, number
from .recognise import recognise_migrate


class MigrateFamily(BaseFamily):
    name = "migrate"
    label = "golang-migrate schema_migrations"
    programs = frozenset({"migrate"})
    examples = (
        ("bash", 'migrate -path ./migrations -database "${DATABASE_URL}" version'),
        ("bash", 'migrate -path ./migrations -database "${DATABASE_URL}" force 41'),
        ("bash", 'migrate -path ./migrations -database "${DATABASE_URL}" up 1'),
    )

    def recognise(self, call: Call) -> Binding | None:
        return recognise_migrate(call.tokens, call.text)

    def run(self, command: CommandLike, params: dict[str, str], ctx: Context) -> Result:
        return runner.run(command, params, ctx)

    def preview(
        self, command: CommandLike, params: dict[str, str], ctx: Context
    ) -> Preview:
        try:
            return migrate_preview.preview(command, params, ctx)
        except psycopg.Error as exc:
            return Preview(False, f"No preview: the database said {first_line(exc)}")
        except (OSError, UnicodeDecodeError, source.SourceError) as exc:
            return Preview(False, f"No preview: {exc}")

    def confirm_word(self, command: CommandLike) -> str:
        return str(command.spec.get("subcommand", "run"))

    def targets(self, command: CommandLike) -> list[str]:
        needed = [command.spec.get("target") or "DATABASE_URL"]
        if command.spec.get("subcommand") in apply.WITH_FILES:
            needed.append(source.ROOT)  # the checkout the -path is read under
        return needed

    def needs_approval(self, command: CommandLike) -> bool:
        # `down` runs the down files, which drop what the up files built.
        return command.kind == ACTION and (
            bool(DESTRUCTIVE.search(command.text))
            or command.spec.get("subcommand") == "down"
        )

    def parameter_problem(
        self, command: CommandLike, params: dict[str, str]
    ) -> str | None:
        spec = command.spec
        if spec.get("subcommand") not in apply.WITH_FILES or "argument" not in spec:
            return None
        try:
            number(apply.argument_of(spec, params), f"{spec['subcommand']}'s number")
        except PlanError as exc:
            return str(exc)
        return None


FAMILY = MigrateFamily()
