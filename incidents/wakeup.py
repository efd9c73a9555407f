"""A finished run wakes the click waiting for it: PostgreSQL LISTEN/NOTIFY.

The worker (or the web process itself, for a probe run inline) stores a result with
`execution.finish`, which calls `notify(execution_id)` inside the storing
transaction: PostgreSQL delivers a NOTIFY when that transaction commits, and never
for one rolled back, so a wake-up always finds the result there to read. The
database is the one channel every configuration has (`make run`'s embedded
PostgreSQL with a filesystem broker, as much as production's Redis).

Each web process has one `Listener`: a daemon thread with its own psycopg
connection in autocommit, LISTENing, that sleeps on the socket (no query while it
waits) and sets the `threading.Event` of every click waiting for that execution.
When the database drops it (a restart, a failover, pg_terminate_backend) it
reconnects with a doubling backoff; while it is down, `wait` does not wait at all
(the click answers with the run in flight and the result's own poll brings it),
and on reconnecting it wakes every waiter once, so each reads its row again (a
NOTIFY sent while nobody listened is lost).

A waiter reads its row once after registering (the NOTIFY may have come before it
registered) and once per wake-up: two primary-key reads for a run that finishes
within the wait, instead of one every 10 ms."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from enum import StrEnum

import psycopg
from django.conf import settings
from django.db import connection, connections
from psycopg import sql

log = logging.getLogger(__name__)

# How long the listener sleeps on its socket between looks at its stop flag; and
# after how many quiet seconds it asks the server whether it is still there (a
# peer that vanished without closing the socket never makes it readable).
TICK_SECONDS = 0.5
PROBE_AFTER_SECONDS = 15.0
RECONNECT_FIRST_SECONDS = 0.1
# Execution ids recently woken, newest last: for the logs and the tests that prove
# a click was answered by the wake-up rather than by the fallback.
WOKEN_KEPT = 1000


def notify(execution_id: int) -> None:
    """Announce that this execution's result is stored, on commit of the caller's
    transaction (at once outside one). Costs one round trip."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_notify(%s, %s)", [settings.RUN_WAKEUP_CHANNEL, str(execution_id)]
        )


def connection_params() -> dict:
    """psycopg.connect's arguments for the console's own database, as Django would
    connect (host, port, user, password, connect_timeout, sslmode, ...), minus what
    only a Django connection uses."""
    params = connections["default"].get_connection_params()
    for django_only in ("cursor_factory", "context", "prepare_threshold"):
        params.pop(django_only, None)
    params["application_name"] = "yomira-wakeup"
    return params


class Outcome(StrEnum):
    DONE = "done"  # finished before the wait began (or just as it began)
    WOKEN = "woken"  # a NOTIFY woke the wait and the row said finished
    TIMEOUT = "timeout"  # still in flight when the wait ran out
    NO_LISTENER = "no listener"  # not waited: the listener is off or down


class Listener:
    """One per process: LISTEN on `channel`, wake the waiters of each id notified."""

    def __init__(
        self,
        channel: str,
        connect: Callable[[], psycopg.Connection],
        reconnect_max: float = 5.0,
    ) -> None:
        self.channel = channel
        self._connect = connect
        self.reconnect_max = reconnect_max
        self.up = threading.Event()  # LISTENing now
        self.woken: deque[int] = deque(maxlen=WOKEN_KEPT)
        # How each wait ended, newest last: (execution id, Outcome).
        self.outcomes: deque[tuple[int, Outcome]] = deque(maxlen=WOKEN_KEPT)
        self.connects = 0  # how many times it connected (1 + reconnections)
        self.backend_pid: int | None = None  # its connection's, for the fault tests
        self._waiters: dict[int, set[threading.Event]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="run-wakeup-listener", daemon=True
        )
        self.pid = os.getpid()

    def start(self) -> Listener:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    # -- the waiters' side ---------------------------------------------------------

    def register(self, execution_id: int) -> threading.Event:
        event = threading.Event()
        with self._lock:
            self._waiters.setdefault(execution_id, set()).add(event)
        return event

    def unregister(self, execution_id: int, event: threading.Event) -> None:
        with self._lock:
            waiting = self._waiters.get(execution_id)
            if waiting is not None:
                waiting.discard(event)
                if not waiting:
                    del self._waiters[execution_id]

    def _wake(self, execution_id: int) -> None:
        with self._lock:
            waiting = list(self._waiters.get(execution_id, ()))
        self.woken.append(execution_id)
        for event in waiting:
            event.set()

    def _wake_all(self) -> None:
        with self._lock:
            waiting = [e for events in self._waiters.values() for e in events]
        for event in waiting:
            event.set()

    # -- the thread ----------------------------------------------------------------

    def _run(self) -> None:
        delay = RECONNECT_FIRST_SECONDS
        failures = 0  # in a row: the first is a warning, the rest (an outage) debug
        while not self._stop.is_set():
            conn: psycopg.Connection | None = None
            try:
                conn = self._connect()
                conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
                self.backend_pid = conn.info.backend_pid
                self.connects += 1
                self.up.set()
                if failures:
                    log.info("run wake-up listener is back after %d tries", failures)
                delay, failures = RECONNECT_FIRST_SECONDS, 0
                # Whatever was notified while nobody listened is lost: every
                # waiter reads its row again.
                self._wake_all()
                self._listen(conn)
            except Exception as exc:  # noqa: BLE001 - the thread must outlive any error
                if not self._stop.is_set():
                    failures += 1
                    if not isinstance(exc, psycopg.Error | OSError):
                        log.exception("run wake-up listener failed")
                    (log.warning if failures == 1 else log.debug)(
                        "run wake-up listener lost the database (%s); reconnecting "
                        "in %.1f s (clicks answer at once meanwhile)",
                        exc,
                        delay,
                    )
            finally:
                was_up = self.up.is_set()
                self.up.clear()
                if was_up:
                    self._wake_all()  # they stop waiting for a listener that is gone
                if conn is not None:
                    # Already broken, most often: nothing more to do with it.
                    with contextlib.suppress(psycopg.Error, OSError):
                        conn.close()
            if self._stop.wait(delay):
                return
            delay = min(delay * 2, self.reconnect_max)

    def _listen(self, conn: psycopg.Connection) -> None:
        quiet_since = time.monotonic()
        while not self._stop.is_set():
            # Sleeps on the socket; a server that closed the connection raises.
            for notice in conn.notifies(timeout=TICK_SECONDS):
                quiet_since = time.monotonic()
                self._on_notify(notice.payload)
            if time.monotonic() - quiet_since > PROBE_AFTER_SECONDS:
                conn.execute("SELECT 1")  # raises if the server is gone
                quiet_since = time.monotonic()

    def _on_notify(self, payload: str) -> None:
        try:
            execution_id = int(payload)
        except ValueError:
            log.warning("run wake-up: ignored a notification %r", payload[:50])
            return
        self._wake(execution_id)

    def wait(
        self, execution_id: int, seconds: float, done: Callable[[], bool]
    ) -> Outcome:
        """Until `done()` (a read of the run's row) says finished, for at most
        `seconds`, reading it only when woken."""
        outcome = self._wait(execution_id, seconds, done)
        self.outcomes.append((execution_id, outcome))
        return outcome

    def _wait(
        self, execution_id: int, seconds: float, done: Callable[[], bool]
    ) -> Outcome:
        event = self.register(execution_id)
        try:
            # Asked once registered: a listener that goes down after this sets the
            # event (_run's finally), so no waiter sleeps on a listener that is gone.
            if not self.up.is_set():
                return Outcome.NO_LISTENER
            # The NOTIFY may have come before the event was registered.
            if done():
                return Outcome.DONE
            deadline = time.monotonic() + seconds
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not event.wait(remaining):
                    return Outcome.TIMEOUT
                event.clear()
                if done():
                    return Outcome.WOKEN
                if not self.up.is_set():  # woken because the listener went down
                    return Outcome.NO_LISTENER
        finally:
            self.unregister(execution_id, event)


_listener: Listener | None = None
_listener_lock = threading.Lock()


def listener() -> Listener | None:
    """This process's listener, started on first use (and anew in a forked child:
    threads do not survive a fork); None when RUN_WAKEUP is off."""
    global _listener  # noqa: PLW0603 - one per process, by design
    if not settings.RUN_WAKEUP:
        return None
    with _listener_lock:
        if _listener is None or _listener.pid != os.getpid():
            params = connection_params()
            _listener = Listener(
                settings.RUN_WAKEUP_CHANNEL,
                lambda: psycopg.connect(autocommit=True, **params),
                reconnect_max=settings.RUN_WAKEUP_RECONNECT_MAX,
            ).start()
        return _listener


def wait(
    execution_id: int,
    seconds: float,
    done: Callable[[], bool],
    *,
    connect_wait: float = 0.5,
) -> Outcome:
    """Wait for a run to finish, woken by its NOTIFY; see Listener.wait. A process's
    first wait gives its listener up to `connect_wait` seconds to connect."""
    if seconds <= 0:
        return Outcome.NO_LISTENER
    ear = listener()
    if ear is None:
        return Outcome.NO_LISTENER
    if not ear.up.is_set() and ear.connects == 0:
        ear.up.wait(min(connect_wait, seconds))
    return ear.wait(execution_id, seconds, done)


def stop_listener() -> None:
    """Stop this process's listener (tests; a clean shutdown)."""
    global _listener  # noqa: PLW0603
    with _listener_lock:
        if _listener is not None:
            _listener.stop()
            _listener = None
