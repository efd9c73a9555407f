"""`df` and `du` on the worker host: always probes."""

from __future__ import annotations

from ...binding import Binding, CommandLike
from ...family import Call, Preview
from ...runtime import Context, Result
from . import runner
from .recognise import recognise_disk


class DiskFamily:
    name = "disk"
    label = "Disk usage on the worker host"
    programs = frozenset({"df", "du"})
    languages = frozenset()
    examples = (
        ("bash", "df -h"),
        ("bash", "du -sh /var/lib/postgresql"),
    )

    def recognise(self, call: Call) -> Binding | None:
        return recognise_disk(call.tokens, call.text)

    def recognise_text(self, text: str, language: str) -> Binding | None:
        return None

    def settle(self, bindings: list[Binding]) -> None:
        """Nothing to settle across a runbook's disk commands."""

    def run(self, command: CommandLike, params: dict[str, str], ctx: Context) -> Result:
        return runner.run(command, params, ctx)

    def preview(
        self, command: CommandLike, params: dict[str, str], ctx: Context
    ) -> Preview:
        return Preview(
            False,
            "A probe: it reads disk usage on the worker host and changes nothing.",
        )

    def confirm_word(self, command: CommandLike) -> str:
        return "disk"  # it has no actions; a word for completeness

    def targets(self, command: CommandLike) -> list[str]:
        return []

    def needs_approval(self, command: CommandLike) -> bool:
        return False  # probes only

    def parameter_problem(
        self, command: CommandLike, params: dict[str, str]
    ) -> str | None:
        return None

    def display(self, command: CommandLike, params: dict[str, str], text: str) -> str:
        return text


FAMILY = DiskFamily()
