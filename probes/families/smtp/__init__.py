"""SMTP connectivity: `openssl s_client -starttls smtp` and `swaks --quit-after`
are probes; anything that sends mail stays manual."""

from __future__ import annotations

from ...binding import Binding, CommandLike
from ...family import BaseFamily, Call, Preview
from ...runtime import Context, Result
from . import runner
from .recognise import recognise_smtp


class SmtpFamily(BaseFamily):
    name = "smtp"
    label = "SMTP connectivity"
    programs = frozenset({"openssl", "swaks"})
    examples = (
        ("bash", "openssl s_client -starttls smtp -connect smtp.yomira.app:587"),
        ("bash", "swaks --server smtp.yomira.app:25 --quit-after EHLO"),
    )

    def recognise(self, call: Call) -> Binding | None:
        return recognise_smtp(call.tokens, call.text)

    def run(self, command: CommandLike, params: dict[str, str], ctx: Context) -> Result:
        return runner.run(command, params, ctx)

    def preview(
        self, command: CommandLike, params: dict[str, str], ctx: Context
    ) -> Preview:
        return Preview(
            False, "A probe: it reads the mail server's greeting and changes nothing."
        )

    def confirm_word(self, command: CommandLike) -> str:
        return "smtp"  # it has no actions; a word for completeness

    def targets(self, command: CommandLike) -> list[str]:
        return []

    def needs_approval(self, command: CommandLike) -> bool:
        return False  # probes only


FAMILY = SmtpFamily()
