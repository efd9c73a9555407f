"""`df` and `du` on the worker host: always probes."""

from __future__ import annotations

from ...binding import Binding, CommandLike
from ...family import BaseFamily, Call, Preview
from ...runtime import Context, Result
from . import runner
from .recognise import recognise_disk


class DiskFamily(BaseFamily):
    name = "disk"
    label = "Disk usage on the worker host"
    programs = frozenset({"df", "du"})
    examples = (
        ("bash", "df -h"),
        ("bash", "du -sh /var/lib/postgresql"),
    )

    def recognise(self, call: Call) -> Binding | None:
        return recognise_disk(call.tokens, call.text)

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


FAMILY = DiskFamily()
