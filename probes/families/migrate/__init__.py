"""golang-migrate's schema_migrations table: `migrate ... version` is a probe;
force/up/down/goto/drop are actions (only `force` runs here: it sets the version
and clears the dirty flag, no SQL)."""

from __future__ import annotations

import psycopg

from ...binding import ACTION, Binding, CommandLike
from ...family import BaseFamily, Call, Preview
from ...runtime import Context, Result, first_line
from ...text import DESTRUCTIVE
from . import preview as migrate_preview
from . import runner
from .recognise import recognise_migrate


class MigrateFamily(BaseFamily):
    name = "migrate"
    label = "golang-migrate schema_migrations"
    programs = frozenset({"migrate"})
    examples = (
        ("bash", 'migrate -path ./migrations -database "${DATABASE_URL}" version'),
        ("bash", 'migrate -path ./migrations -database "${DATABASE_URL}" force 41'),
    )

    def recognise(self, call: Call) -> Binding | None:
        return recognise_migrate(call.tokens, call.text)

    def run(self, command: CommandLike, params: dict[str, str], ctx: Context) -> Result:
        return runner.run(command, params, ctx)

    def preview(
        self, command: CommandLike, params: dict[str, str], ctx: Context
    ) -> Preview:
        try:
            return migrate_preview.preview(command, ctx)
        except psycopg.Error as exc:
            return Preview(False, f"No preview: the database said {first_line(exc)}")

    def confirm_word(self, command: CommandLike) -> str:
        return str(command.spec.get("subcommand", "run"))

    def targets(self, command: CommandLike) -> list[str]:
        return [command.spec.get("target") or "DATABASE_URL"]

    def needs_approval(self, command: CommandLike) -> bool:
        return command.kind == ACTION and bool(DESTRUCTIVE.search(command.text))


FAMILY = MigrateFamily()
