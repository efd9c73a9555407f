"""The console's PostgreSQL backend (yomira_console/postgres): its health check
asks the idle socket first, so a kept connection costs no `SELECT 1` per request,
and still finds a connection the server has ended."""

from __future__ import annotations

import time

import psycopg
import pytest
from django.db import connection, connections

pytestmark = pytest.mark.django_db(transaction=True)


def _other() -> psycopg.Connection:
    """A second, plain connection to the same database, to look and to kill."""
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    params.pop("prepare_threshold", None)
    return psycopg.connect(**params, autocommit=True)


@pytest.fixture
def kept():  # noqa: ANN201
    """A wrapper of its own (not the test's connection), connected."""
    wrapper = connections.create_connection("default")
    wrapper.ensure_connection()
    yield wrapper
    wrapper.close()


def _last_query(other: psycopg.Connection, pid: int) -> str:
    row = other.execute(
        "SELECT query FROM pg_stat_activity WHERE pid = %s", [pid]
    ).fetchone()
    return row[0] if row else ""


def test_the_engine_is_the_consoles(kept):
    assert type(kept).__module__ == "yomira_console.postgres.base"
    assert kept.vendor == "postgresql"


def test_an_idle_healthy_connection_is_usable_without_a_round_trip(kept):
    pid = kept.connection.info.backend_pid
    with kept.connection.cursor() as cursor:
        cursor.execute("SELECT 'the last thing this backend was asked'")
    with _other() as other:
        assert kept.is_usable()
        # pg_stat_activity shows a backend's latest statement: no SELECT 1 was sent.
        assert _last_query(other, pid) == (
            "SELECT 'the last thing this backend was asked'"
        )


def test_a_connection_the_server_ended_is_not_usable(kept):
    pid = kept.connection.info.backend_pid
    with _other() as other:
        assert other.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()[0]
        # The backend's goodbye reaches the socket a moment later.
        deadline = time.monotonic() + 10
        while _last_query(other, pid) and time.monotonic() < deadline:
            time.sleep(0.02)
    assert not kept.is_usable()


def test_a_closed_connection_is_not_usable(kept):
    kept.connection.close()
    assert not kept.is_usable()


def test_django_reconnects_after_the_server_ended_a_kept_connection(kept):
    """What a request does first (close_if_health_check_failed): the ended
    connection is dropped, and the next query opens a new one."""
    pid = kept.connection.info.backend_pid
    with _other() as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])
        deadline = time.monotonic() + 10
        while _last_query(other, pid) and time.monotonic() < deadline:
            time.sleep(0.02)
    kept.health_check_done = False
    kept.close_if_health_check_failed()
    with kept.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != pid


# --- bound_cursor: the worker's claim of a run, kept prepared ------------------------
def _prepared(wrapper) -> list[str]:  # noqa: ANN001
    with wrapper.cursor() as cursor:  # Django's own cursor, on the same backend
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def test_a_bound_cursor_prepares_its_query_once_and_reuses_it(kept):
    query = "SELECT %s::int + 1, 'bound-cursor probe'"
    for number in (1, 2, 3):
        with kept.bound_cursor() as cursor:
            cursor.execute(query, [number])
            assert cursor.fetchone()[0] == number + 1
    statements = [s for s in _prepared(kept) if "bound-cursor probe" in s]
    # One statement, the server's ($1 for the parameter): prepared, not re-sent.
    assert statements == ["SELECT $1::int + 1, 'bound-cursor probe'"]


def test_django_queries_stay_unprepared_around_a_bound_cursor(kept):
    with kept.bound_cursor() as cursor:
        cursor.execute("SELECT 1")
    assert kept.connection.prepare_threshold is None  # Django's setting, restored
    for _ in range(10):  # psycopg's own threshold is 5 runs
        with kept.cursor() as cursor:
            cursor.execute("SELECT %s, 'django probe'", [1])
    assert not [s for s in _prepared(kept) if "django probe" in s]


def test_a_bound_cursor_raises_djangos_errors_and_restores_the_threshold(kept):
    from django.db import ProgrammingError

    with pytest.raises(ProgrammingError), kept.bound_cursor() as cursor:
        cursor.execute("SELECT * FROM no_such_table_here")
    assert kept.connection.prepare_threshold is None


def test_a_bound_cursor_reads_timestamps_in_djangos_time_zone(kept):
    from datetime import UTC, datetime

    moment = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
    with kept.bound_cursor() as cursor:
        cursor.execute("SELECT %s::timestamptz", [moment])
        found = cursor.fetchone()[0]
    with kept.cursor() as cursor:
        cursor.execute("SELECT %s::timestamptz", [moment])
        expected = cursor.fetchone()[0]
    assert found == expected == moment
    assert found.tzinfo is not None and found.utcoffset() == expected.utcoffset()


def test_a_bound_cursor_query_is_in_the_debug_log_with_its_values(kept):
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(kept) as queries, kept.bound_cursor() as cursor:
        cursor.execute("SELECT %s::int, 'logged probe'", [41])
    assert [q["sql"] for q in queries.captured_queries] == [
        "SELECT 41::int, 'logged probe'"
    ]


def test_database_prepare_false_keeps_a_bound_cursor_unprepared(kept, monkeypatch):
    monkeypatch.setitem(kept.settings_dict, "PREPARE", False)  # DATABASE_PREPARE
    for _ in range(3):
        with kept.bound_cursor() as cursor:
            cursor.execute("SELECT %s::int, 'unprepared probe'", [1])
    assert not [s for s in _prepared(kept) if "unprepared probe" in s]


@pytest.mark.django_db(transaction=True)
def test_the_workers_claim_is_prepared_once_per_connection(kept, monkeypatch):
    """The claim (four joins, 0.9 ms to plan) is planned no more after its first
    runs; Django's own queries around it stay unprepared."""
    from incidents.services import execution

    monkeypatch.setattr(execution, "connection", kept)
    for missing in (10**9, 10**9 + 1, 10**9 + 2):  # nothing to claim: still asked
        assert execution.claim_and_load(missing) is None
    claims = [s for s in _prepared(kept) if s.startswith("WITH claimed AS (UPDATE")]
    assert len(claims) == 1 and "$3" in claims[0]


@pytest.mark.parametrize("which", ["poll", "page"])
def test_the_kept_statements_read_the_last_event_by_its_index_whatever_the_plan(
    kept, which
):
    """The poll's and the page's query are kept prepared, so they are soon run
    with PostgreSQL's generic plan, made without the values. With one incident
    of a long history beside small ones (as `make bench` makes), that plan must
    still read the incident's last event by the (incident, seq) index: written
    `incident_id = $1`, it took a scan of the whole history, and with an index on
    incident alone it sorted the whole history (views/common.py, LAST_SEQ;
    migration 0020)."""
    import re

    from incidents.views.common import PAGE_COLUMNS, POLL_COLUMNS

    columns = POLL_COLUMNS if which == "poll" else PAGE_COLUMNS
    numbered = iter(range(1, 10))
    statement = re.sub(r"%s", lambda _: f"${next(numbered)}", columns)
    values = "(2, 2, 2, 2999999)" if which == "poll" else "(2, 2, 2, 2)"
    with kept.cursor() as cursor:
        cursor.execute("BEGIN")
        try:
            cursor.execute(
                "INSERT INTO incidents_auditevent (seq, created_at, actor_name, verb,"
                " incident_id, object_type, object_id, data, prev_mac, mac)"
                " SELECT 2000000 + n, now(), 'bench', 'note.added',"
                " CASE WHEN n <= 10000 THEN 2 WHEN n <= 10060 THEN NULL"
                " ELSE 3 + n % 4 END, '', '', '{}', '', ''"
                " FROM generate_series(1, 10900) AS n"
            )
            cursor.execute("ANALYZE incidents_auditevent")
            cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            cursor.execute(f"PREPARE kept_probe AS SELECT {statement}")
            cursor.execute(f"EXPLAIN EXECUTE kept_probe {values}")
            plan = "\n".join(row[0] for row in cursor.fetchall())
            cursor.execute("DEALLOCATE kept_probe")
        finally:
            cursor.execute("ROLLBACK")
    events = [line for line in plan.splitlines() if "incidents_auditevent" in line]
    assert len(events) == 1, plan
    assert "Index Only Scan Backward using incidents_a_inciden" in events[0], plan


def test_no_index_on_the_incident_of_an_event_alone(kept):
    """Migration 0020: with an index on incident alone, the generic plan of the
    poll's statement walked it and sorted the incident's whole history (seen in
    `make bench` at 10,000 events: 5.3 ms); the (incident, seq) index is the one
    way to an incident's events."""
    with kept.cursor() as cursor:
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'incidents_auditevent'"
        )
        definitions = [row[0] for row in cursor.fetchall()]
    assert any("(incident_id, seq)" in d for d in definitions), definitions
    assert not [d for d in definitions if d.endswith("(incident_id)")], definitions
