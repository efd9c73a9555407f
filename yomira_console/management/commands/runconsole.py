"""Serve the console with a Celery worker beside it (what `make run` ends with)."""

import os
import signal
import socket
import sys

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from yomira_console import embedded
from yomira_console import worker as celery_worker
from yomira_console.celery import app


def broker_reachable() -> bool:
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=0, timeout=1)
        return True
    except Exception:  # noqa: BLE001 - any failure: serve without a worker
        return False


class Command(BaseCommand):
    help = "Run the web console and a Celery worker (with beat) until interrupted."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", default="8000")
        parser.add_argument("--no-worker", action="store_true")

    def handle(
        self, *args: object, host: str, port: str, no_worker: bool, **opts: object
    ) -> None:
        # runserver ends the process with os._exit when the port is taken, so the
        # worker below would be orphaned: find out before starting it.
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, int(port)))
            except OSError as exc:
                raise CommandError(
                    f"Cannot serve on {host}:{port} ({exc.strerror}). Is another "
                    "console running? Choose another with PORT=... make run."
                ) from None
        if "CONSOLE_BASE_URL" not in os.environ:
            # Links in exports and notifications name this console, on the
            # port it serves (the worker below inherits the environment).
            os.environ["CONSOLE_BASE_URL"] = f"http://{host}:{port}"
            settings.CONSOLE_BASE_URL = os.environ["CONSOLE_BASE_URL"]
        self.stack = None
        self.worker = None
        # SIGTERM (kill, timeout, a supervisor) must still stop what starts below.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        try:
            self.serve(host, port, no_worker)
        finally:
            if self.worker is not None:
                celery_worker.stop(self.worker, grace=10)
            if self.stack is not None:
                self.stack.stop()
            if "DATABASE_URL" not in os.environ and settings.DEBUG:
                # The embedded PostgreSQL (settings started it): its data stays
                # in VAR_DIR for the next `make run`.
                connections.close_all()
                embedded.stop_postgres(settings.VAR_DIR / "postgres")

    def serve(self, host: str, port: str, no_worker: bool) -> None:
        if settings.SANDBOX:
            self.stack = self.start_sandbox()
        # The development server answers each request on a new thread, so a
        # kept connection is never reused, only left open until collected: with
        # a few polling tabs that exhausts PostgreSQL's connections.
        connections.settings["default"]["CONN_MAX_AGE"] = 0
        broker = settings.CELERY_BROKER_URL.split("://", 1)[0]
        if no_worker:
            self.stdout.write("Serving without a worker (--no-worker).")
        elif broker_reachable():
            self.worker = celery_worker.start(
                celery_worker.command(hostname="console@%h", beat=True)
            )
            self.stdout.write(f"Started a Celery worker (broker: {broker}).")
        else:
            self.stderr.write(
                f"The broker ({broker}) is not reachable: serving without a worker. "
                "Commands will report dispatch_failed until it is back."
            )
        self.stdout.write(
            self.style.SUCCESS(f"Yomira console on http://{host}:{port}/")
        )
        if settings.DEBUG and settings.DEMO_PASSWORD:
            # Said again here: the worker's banner follows seed_demo's list.
            self.stdout.write(
                "Demo sign-ins: admin, commander, responder, viewer; password "
                f"{settings.DEMO_PASSWORD} (DEMO_PASSWORD in .env)."
            )
        call_command("runserver", f"{host}:{port}", use_reloader=False)

    def start_sandbox(self):  # noqa: ANN201 - sandbox.stack.Stack, imported lazily
        """Yomira in a box beside the console (SANDBOX, development only): the
        bundled runbook's targets point at it, unless this console was given its
        own (a TARGET_* already set is kept). The worker below inherits them."""
        try:
            from sandbox.stack import Stack

            stack = Stack(settings.SANDBOX_DIR)
            stack.start()
        except Exception as exc:  # noqa: BLE001 - the console serves without it
            self.stderr.write(
                f"The simulated Yomira stack did not start ({exc}): serving "
                "without it; drills cannot start."
            )
            return None
        simulated = []
        for name, value in stack.env().items():
            if name not in os.environ:
                os.environ[name] = value
                simulated.append(name)
        # The targets page and the header say "drill target" for these.
        os.environ["SANDBOX_TARGETS"] = ",".join(sorted(simulated))
        self.stdout.write(
            f"Started the simulated Yomira stack in {settings.SANDBOX_DIR} "
            f"({len(simulated)} targets point at it; /drills/ to practise)."
        )
        return stack
