"""The mail provider's SMTP relay (aiosmtpd), run as `python -m sandbox.smtp`.

It accepts mail and keeps each message in root/mail/; while root/smtp.refuse
exists (the smtp_broken fault) it refuses every sender with the provider's
"key revoked" answer, as Resend's relay does for a rotated API key."""

from __future__ import annotations

import argparse
import signal
import time
from email import message_from_bytes
from pathlib import Path

from aiosmtpd.controller import Controller

REFUSAL = "535 5.7.8 Authentication failed: API key revoked (re_…4f2a)"


class Relay:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.mail = root / "mail"
        self.mail.mkdir(parents=True, exist_ok=True)

    def broken(self) -> bool:
        return (self.root / "smtp.refuse").exists()

    async def handle_MAIL(self, server, session, envelope, address, options):  # noqa: ANN001, ANN201, N802
        if self.broken():
            return REFUSAL
        envelope.mail_from = address
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, ANN201, N802
        if self.broken():
            return REFUSAL
        message = message_from_bytes(envelope.content)
        name = f"{time.time_ns()}.eml"
        (self.mail / name).write_bytes(envelope.content)
        subject = message.get("Subject", "")
        return f"250 2.0.0 queued as {name[:-4]} ({subject[:40]})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    controller = Controller(
        Relay(args.root), hostname="127.0.0.1", port=args.port,
        server_hostname="smtp.yomira.app",
    )  # fmt: skip
    controller.start()
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    while not stopping:
        time.sleep(0.2)
    controller.stop()


if __name__ == "__main__":
    main()
