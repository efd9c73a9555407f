"""Alert sources as code: `alert_source add NAME --kind alertmanager|grafana`,
`alert_source rotate NAME`, `alert_source list`. `add` and `rotate` print the token
alone on the last line of their output (scripts take `| tail -n 1`); it is shown
this once and stored only as a hash."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import IntegrityError
from django.urls import reverse

from alerts import sources
from alerts.models import AlertSource
from incidents.actors import Actor

ACTOR = Actor.system("manage.py alert_source")


class Command(BaseCommand):
    help = "Add an alert source, rotate its token, or list the sources."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser("add", help="Create a source; prints its token last.")
        add.add_argument("name")
        add.add_argument(
            "--kind",
            choices=AlertSource.Kind.values,
            default=AlertSource.Kind.ALERTMANAGER,
        )
        add.add_argument(
            "--hmac-secret-env", default="", help="Grafana: env var of the HMAC secret."
        )
        add.add_argument(
            "--rate-limit", type=int, default=600, help="Requests a minute."
        )
        add.add_argument(
            "--signature-header",
            default="X-Grafana-Alerting-Signature",
            help="Grafana: the header carrying the HMAC signature.",
        )
        add.add_argument(
            "--timestamp-header",
            default="X-Grafana-Alerting-Timestamp",
            help="Grafana: the header carrying the signed timestamp; '' when the "
            "contact point signs the body alone.",
        )
        rotate = sub.add_parser(
            "rotate", help="A new token; the old one stops working."
        )
        rotate.add_argument("name")
        sub.add_parser("list", help="The sources (never their tokens).")

    def handle(self, *args: object, **options: object) -> None:
        action = options["action"]
        if action == "list":
            self._list()
            return
        name = str(options["name"])
        if action == "add":
            for field_name, label, value in (
                ("name", "source name", name),
                (
                    "hmac_secret_env",
                    "HMAC secret variable",
                    str(options["hmac_secret_env"]),
                ),
            ):
                field = AlertSource._meta.get_field(field_name)
                if not value and field.blank:
                    continue
                try:
                    field.clean(value, None)
                except ValidationError as exc:
                    raise CommandError(
                        f"{value!r} is not a valid {label}: {' '.join(exc.messages)}"
                    ) from None
            try:
                source, token = sources.create(
                    name=name,
                    kind=str(options["kind"]),
                    actor=ACTOR,
                    hmac_secret_env=str(options["hmac_secret_env"]),
                    rate_limit_per_minute=max(1, int(options["rate_limit"])),
                    signature_header=str(options["signature_header"]),
                    timestamp_header=str(options["timestamp_header"]),
                )
            except IntegrityError:
                raise CommandError(
                    f"A source named {name!r} exists: `alert_source rotate {name}` "
                    "gives it a new token."
                ) from None
            self.stdout.write(f"Created {source.kind} source {source.name}.")
        else:
            source = AlertSource.objects.filter(name=name).first()
            if source is None:
                raise CommandError(f"No alert source is named {name!r}.")
            token = sources.rotate(source=source, actor=ACTOR)
            self.stdout.write(
                f"New token for {source.name}; the old one no longer works."
            )
        hook = reverse(f"hooks:{source.kind}", args=[source.name])
        self.stdout.write(f"Webhook: POST {hook} with Authorization: Bearer <token>.")
        self.stdout.write("The token (shown once):")
        self.stdout.write(token)

    def _list(self) -> None:
        rows = AlertSource.objects.order_by("name")
        if not rows:
            self.stdout.write("No alert sources.")
        for source in rows:
            state = "enabled" if source.enabled else "disabled"
            self.stdout.write(
                f"{source.name}\t{source.kind}\t{state}\t"
                f"token set {source.token_rotated_at:%Y-%m-%d %H:%M} UTC\t"
                f"{source.rate_limit_per_minute}/min"
            )
