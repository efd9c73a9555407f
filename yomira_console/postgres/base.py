"""Django's PostgreSQL backend, with a cheaper health check.

With CONN_HEALTH_CHECKS, Django asks `is_usable()` before the first query of each
request on a kept connection, and PostgreSQL's answer to that is a `SELECT 1`: a
round trip on every request, a third of an idle poll's server time. A connection
the server has ended (a restart, a failover, `pg_terminate_backend`) has something
waiting on its socket when it is idle: the server's FATAL message, or the end of
the stream. So the check first asks the kernel, without waiting, whether the idle
socket has anything to read; only when it has (or cannot be asked) does it send
the `SELECT 1`. A connection whose peer vanished silently (a cut cable) passes,
as it also passed `SELECT 1` until TCP gave up on it.

And a cursor for a statement the server keeps prepared (`bound_cursor`): the
poll's and the checklist page's one query, and the worker's claim of a run."""

from __future__ import annotations

import select
from contextlib import contextmanager
from typing import TYPE_CHECKING

import psycopg
from django.db.backends.postgresql import base, operations

if TYPE_CHECKING:
    from collections.abc import Iterator

    from django.db.backends.utils import CursorWrapper


class DatabaseOperations(operations.DatabaseOperations):
    def last_executed_query(self, cursor, sql: str, params) -> str | None:  # noqa: ANN001
        """What DEBUG's query log shows: for a bound_cursor query too, which
        Django's own reading of psycopg's cursor leaves empty (None)."""
        found = super().last_executed_query(cursor, sql, params)
        if found is None and sql:
            try:
                return self.compose_sql(sql, params)
            except psycopg.errors.DataError:
                return None
        return found


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations
    # Set while bound_cursor makes its cursor: a connection belongs to one thread.
    _server_binding = False

    @contextmanager
    def bound_cursor(self) -> Iterator[CursorWrapper]:
        """A cursor for a query the server keeps prepared on this connection: its
        parameters sent apart (psycopg's Cursor, where Django's binds them into
        the text in Python), prepared on its first run and, after a few runs,
        executed with PostgreSQL's generic plan, made without the values. Django
        turns psycopg's prepared statements off for its own queries (PgBouncer in
        transaction mode could not keep them before 1.21).

        Only for a statement whose every plan is a good one, since the generic
        plan is costed on average statistics: look-ups by primary key and joins
        on them (the worker's claim of a run: planning its four joins took 0.9 ms
        of every run), or a read written so that one index alone gives its order
        (the poll's and the page's last event, incidents/views/common.py
        LAST_SEQ; written plainly, "an event of this incident after N" got a
        generic plan that read a long history whole). Parameters must be plain
        values compared with columns, as server-side binding types them. Errors
        are Django's, as from connection.cursor()."""
        self._server_binding = True
        try:
            cursor = self.cursor()
        finally:
            self._server_binding = False
        raw = self.connection
        # DATABASE_PREPARE=false (settings): behind a pooler that cannot keep them.
        prepare = 0 if self.settings_dict.get("PREPARE", True) else None
        previous, raw.prepare_threshold = raw.prepare_threshold, prepare
        try:
            with cursor:
                yield cursor
        finally:
            raw.prepare_threshold = previous

    def create_cursor(self, name: str | None = None):  # noqa: ANN201
        if name or not self._server_binding:
            return super().create_cursor(name)
        cursor = psycopg.Cursor(self.connection)
        # As Django does for its own cursors: timestamps read in its time zone.
        tzloader = self.connection.adapters.get_loader(
            base.TIMESTAMPTZ_OID, base.Format.TEXT
        )
        if self.timezone != tzloader.timezone:
            base.register_tzloader(self.timezone, cursor)
        return cursor

    def is_usable(self) -> bool:
        connection = self.connection
        if connection is None or connection.closed or connection.broken:
            return False
        try:
            readable, _, _ = select.select([connection.fileno()], [], [], 0)
        except (OSError, ValueError):
            readable = True  # no socket to ask: ask the server
        if readable:
            return super().is_usable()
        return True
