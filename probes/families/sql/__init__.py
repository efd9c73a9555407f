"""SQL against PostgreSQL: fenced `sql` blocks, inline statements and `psql -c`.
Probes run in read-only transactions with a statement timeout; actions are
previewed in a transaction that is rolled back."""

from __future__ import annotations

import re

import psycopg

from ...binding import ACTION, Binding, CommandLike
from ...family import BaseFamily, Call, Preview
from ...runtime import Context, ParameterError, Result, first_line
from ...targets import TargetMissing
from ...text import DESTRUCTIVE
from . import preview as sql_preview
from . import runner
from .recognise import looks_like_sql_statement, recognise_psql, recognise_sql

SIGNAL = re.compile(r"pg_(cancel|terminate)_backend", re.I)


class SqlFamily(BaseFamily):
    name = "sql"
    label = "SQL statement (PostgreSQL)"
    programs = frozenset({"psql"})
    languages = frozenset({"sql"})
    examples = (
        ("sql", "SELECT count(*) FROM crawler.job WHERE status = 'running';"),
        ("sql", "SELECT pg_cancel_backend(pid);"),
        (
            "bash",
            'psql "${DATABASE_URL}" -c "DELETE FROM users.session WHERE userid = $1;"',
        ),
    )

    def recognise(self, call: Call) -> Binding | None:
        return recognise_psql(call)

    def recognise_text(self, text: str, language: str) -> Binding | None:
        if language in self.languages:
            return recognise_sql(text)
        if language == "inline" and looks_like_sql_statement(text):
            return recognise_sql(text.strip())
        return None

    def run(self, command: CommandLike, params: dict[str, str], ctx: Context) -> Result:
        return runner.run(command, params, ctx)

    def preview(
        self, command: CommandLike, params: dict[str, str], ctx: Context
    ) -> Preview:
        try:
            return sql_preview.preview(command, params, ctx)
        except psycopg.Error as exc:
            return Preview(False, f"No preview: the database said {first_line(exc)}")

    def confirm_word(self, command: CommandLike) -> str:
        sql = command.spec.get("sql", "")
        if calls := SIGNAL.findall(sql):
            return calls[0].lower()
        first = sql.split(None, 1)
        return first[0].lower() if first else "run"

    def targets(self, command: CommandLike) -> list[str]:
        """Its connection's variable; for `psql -h HOST`, the one TARGET_PG_HOSTS
        names for HOST, read now (at run time, never when the runbook is read). A
        host it does not name is a missing setting that says what to set."""
        try:
            return [runner.target_variable(command.spec)]
        except TargetMissing as exc:
            return exc.names

    def needs_approval(self, command: CommandLike) -> bool:
        sql = command.spec.get("sql") or command.text
        return command.kind == ACTION and bool(DESTRUCTIVE.search(sql))

    def parameter_problem(
        self, command: CommandLike, params: dict[str, str]
    ) -> str | None:
        try:
            runner.bind(command.spec.get("sql", ""), command.parameters, params)
        except ParameterError as exc:
            return str(exc)
        return None

    def display(self, command: CommandLike, params: dict[str, str], text: str) -> str:
        """Values bound to names the text does not show (`pg_cancel_backend(pid)`)
        are noted after it, so the record says what ran."""
        named = {
            k: v
            for k, v in params.items()
            if not k.startswith("$")
            and f"{{{k}}}" not in command.text
            and f":{k}" not in command.text
        }
        if named:
            text += "\n-- bound: " + ", ".join(
                f"{k} = {v!r}" for k, v in sorted(named.items())
            )
        return text


FAMILY = SqlFamily()
