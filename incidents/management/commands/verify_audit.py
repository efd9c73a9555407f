"""`manage.py verify_audit`: recompute the audit log's HMAC chain and check that it
ends where its checkpoints (and, with --log, the log stream) say it should.

Exit 0 with the number of events when intact; exit 1 naming the first bad
sequence number when a row was changed, removed or inserted, or the tail was cut."""

import sys
from argparse import ArgumentParser
from pathlib import Path

from django.core.management.base import BaseCommand

from incidents.audit import Head, heads_in_log, verify


class Command(BaseCommand):
    help = (
        "Verify the audit log's HMAC chain and its head checkpoint; exit 1 on the "
        "first bad row or a missing tail."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--log",
            action="append",
            default=[],
            metavar="FILE",
            help="A log file holding 'audit head seq=N mac=M' lines: the log must "
            "reach the newest head it names. Repeatable.",
        )

    def handle(self, *args: object, **options: object) -> None:
        heads: list[Head] = []
        for name in options["log"]:
            try:
                with Path(name).open(encoding="utf-8", errors="replace") as lines:
                    head = heads_in_log(lines)
            except OSError as exc:
                self.stderr.write(f"Cannot read the log stream {name}: {exc}")
                sys.exit(1)
            if head is not None:
                heads.append(head)
        verdict = verify(heads=heads)
        if verdict.ok:
            self.stdout.write(f"Audit log intact: {verdict.count} events verified.")
            return
        self.stderr.write(
            f"Audit log broken at sequence {verdict.bad_seq}: {verdict.reason} "
            f"({verdict.count} events before it verified)."
        )
        sys.exit(1)
