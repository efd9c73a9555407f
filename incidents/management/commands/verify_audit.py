"""`manage.py verify_audit`: recompute the audit log's HMAC chain.

Exit 0 with the number of events when intact; exit 1 naming the first bad
sequence number when a row was changed, removed or inserted."""

import sys

from django.core.management.base import BaseCommand

from incidents.audit import verify


class Command(BaseCommand):
    help = "Verify the audit log's HMAC chain; exit 1 on the first bad row."

    def handle(self, *args: object, **options: object) -> None:
        verdict = verify()
        if verdict.ok:
            self.stdout.write(f"Audit log intact: {verdict.count} events verified.")
            return
        self.stderr.write(
            f"Audit log broken at sequence {verdict.bad_seq}: {verdict.reason} "
            f"({verdict.count} events before it verified)."
        )
        sys.exit(1)
