"""A run's result as data (probes/tables.py) and an action's "nothing to act on":
the data is redacted like the output, secret-named columns are masked whole, the
whole fits the cap; an SQL probe keeps its rows, an HTTP answer its status and
headers; a preview is sure there is nothing to do only when there is not."""

from __future__ import annotations

import datetime
import json
from decimal import Decimal

import psycopg
import pytest
from django.conf import settings

from incidents.models import Command
from probes import commands, tables
from probes.binding import ACTION, PROBE
from probes.families.sql.recognise import recognise_sql
from probes.preview import preview
from probes.redaction import MASK
from probes.runtime import Context
from tests.stack import database_url

SECRET = "canary-target-secret-5150"


@pytest.fixture
def secret(monkeypatch):  # noqa: ANN201
    monkeypatch.setenv("TARGET_SOME_TOKEN", SECRET)
    return SECRET


@pytest.fixture
def console_as_target(monkeypatch):  # noqa: ANN201
    """The console's own test database as the SQL target (a real PostgreSQL)."""
    db = settings.DATABASES["default"]
    url = database_url(db)
    monkeypatch.setenv("TARGET_DATABASE_URL", url)
    return url


def sql(text: str) -> Command:
    binding = recognise_sql(text)
    return Command(
        pk=1,
        text=text,
        kind=binding.kind,
        executor="sql",
        parameters=binding.parameters,
        variables=binding.variables,
        spec=binding.spec,
    )


# --- the data's shape and its redaction ----------------------------------------------


def test_cells_are_text_as_a_person_reads_them() -> None:
    row = (
        None,
        True,
        Decimal("1.50"),
        7,
        b"\x01\xff",
        {"a": [1]},
        datetime.datetime(2026, 11, 29, 16, 0, tzinfo=datetime.UTC),
        datetime.timedelta(seconds=35),
    )
    assert [tables.cell(v) for v in row] == [
        None,
        "true",
        "1.50",
        "7",
        "\\x01ff",
        '{"a": [1]}',
        "2026-11-29 16:00:00+00:00",
        "0:00:35",
    ]


def test_a_secret_named_column_is_masked_whole_and_a_target_value_anywhere(secret):
    shaped = tables.sql_table(
        ["userid", "token", "note"],
        [("u-42", "t1-plain-token", f"seen {secret} here"), ("u-7", None, "")],
        "SELECT 2",
    )
    assert shaped["rows"] == [["u-42", MASK, f"seen {MASK} here"], ["u-7", None, ""]]
    assert shaped["count"] == 2 and shaped["status"] == "SELECT 2"


def test_what_is_stored_is_redacted_again_and_unknown_shapes_are_dropped(secret):
    forged = {
        "tables": [
            {
                "columns": ["password", "x"],
                "rows": [["hunter2", secret], "not a row"],
                "count": 1,
            }
        ]
    }
    stored = tables.safe(forged, 64 * 1024)
    assert stored["tables"][0]["rows"] == [[MASK, MASK]]
    assert SECRET not in json.dumps(stored)
    assert tables.safe({"other": 1}, 1000) == {} and tables.safe(None, 1000) == {}
    headers = [["X-Echo", f"Bearer {secret}"], ["malformed"]]
    answer = tables.safe({"http": {"status": 200, "headers": headers}}, 1000)
    assert SECRET not in json.dumps(answer) and answer["http"]["status"] == 200
    assert len(answer["http"]["headers"]) == 1


def test_the_data_fits_the_cap_by_dropping_rows_and_cutting_long_cells() -> None:
    rows = [(n, "x" * 5000) for n in range(300)]
    shaped = tables.sql_table(["n", "blob"], rows)
    assert len(shaped["rows"][0][1]) == tables.CELL_CAP + 1  # cut, with "…"
    stored = tables.safe({"tables": [shaped]}, 64 * 1024)
    kept = stored["tables"][0]
    assert len(json.dumps(stored)) <= 64 * 1024
    assert 0 < len(kept["rows"]) < 300 and kept["count"] == 300
    assert [r[0] for r in kept["rows"]] == [str(n) for n in range(len(kept["rows"]))]


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ([("Content-Type", "application/json")], '{"a": 1}\n\nmore'),
        ([], "plain"),
        ([("A", "1"), ("B", "2")], ""),
    ],
    ids=["json", "no-headers", "empty"],
)
def test_an_http_body_is_found_after_the_headers(headers, body) -> None:
    output = tables.http_head("200 OK", headers) + body
    assert tables.http_body(output, len(headers)) == body


def test_an_output_not_in_the_http_shape_has_no_body() -> None:
    assert tables.http_body("used_memory_human:1.2M", 0) is None
    assert tables.http_body("HTTP 200 OK\nA: 1", 1) is None  # cut in the headers


# --- an SQL probe keeps its rows, against a real PostgreSQL ---------------------------


@pytest.mark.django_db
def test_an_sql_probe_returns_its_rows_as_data_masked_like_the_text(
    console_as_target,
):
    probe = sql(
        "SELECT 7 AS pid, 'u-42' AS userid, 'live-token' AS token, NULL AS gone "
        "UNION ALL SELECT 8, 'u-7', NULL, NULL;"
    )
    assert probe.kind == PROBE
    result = commands.run(probe, {}, Context())
    assert result.ok, result.summary
    [table] = result.structured["tables"]
    assert table["columns"] == ["pid", "userid", "token", "gone"]
    assert table["rows"] == [["7", "u-42", MASK, None], ["8", "u-7", None, None]]
    assert "live-token" not in result.output and MASK in result.output


@pytest.mark.django_db
def test_a_grep_filter_drops_the_data(console_as_target):
    probe = sql("SELECT 'keep' AS a UNION ALL SELECT 'drop';")
    probe.spec = {**probe.spec, "filter": {"pattern": "keep"}}
    result = commands.run(probe, {}, Context())
    assert "drop" not in result.output and result.structured == {}


# --- nothing to act on ----------------------------------------------------------------


@pytest.mark.django_db
def test_signalling_a_pid_that_is_not_a_backend_finds_nothing_to_act_on(
    console_as_target,
):
    terminate = sql("SELECT pg_terminate_backend(pid);")
    assert terminate.kind == ACTION
    with psycopg.connect(console_as_target) as conn:
        pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        # A pid is at most 2^22 on Linux: this one is not running.
        gone = preview(terminate, {"pid": "99999999"})
        alive = preview(terminate, {"pid": str(pid)})
    assert gone.nothing == "no backend has pid 99999999 (not in pg_stat_activity)"
    assert alive.nothing == "" and alive.facts[0].startswith(f"backend {pid}: ")


@pytest.mark.django_db
def test_a_write_that_would_change_no_row_finds_nothing_to_act_on(
    console_as_target,
):
    touch = sql("UPDATE django_migrations SET app = app WHERE app = $1;")
    assert touch.kind == ACTION
    none = preview(touch, {"$1": "no-such-app"})
    some = preview(touch, {"$1": "incidents"})
    assert none.rows == 0 and none.nothing == "no row matches: it would change nothing"
    assert some.rows and some.rows > 0 and some.nothing == ""


def test_a_preview_without_a_target_is_not_sure_there_is_nothing(monkeypatch):
    monkeypatch.delenv("TARGET_DATABASE_URL", raising=False)
    shown = preview(sql("SELECT pg_cancel_backend(pid);"), {"pid": "1"})
    assert shown.headline.startswith("No preview") and shown.nothing == ""


# --- which columns fill which parameters ----------------------------------------------


@pytest.mark.parametrize(
    ("text", "parameters", "spec", "expected"),
    [
        ("SELECT pg_cancel_backend(pid);", ["pid"], {}, {"pid": {"pid"}}),
        (
            "UPDATE users.session SET revokedat = NOW() WHERE userid = $1;",
            ["$1"],
            {"parameter_hints": {"$1": "userid"}},
            {"$1": {"userid"}},
        ),
        (
            "PATCH /admin/crawler/sources/:id",
            ["id"],
            {},
            {"id": {"sourceid", "source_id"}},
        ),
        (
            "curl -X POST https://api/users/{userId}/sessions/revoke-all",
            ["userId"],
            {},
            {"userId": {"userid"}},
        ),
        ("SELECT $1;", ["$1"], {}, {}),
    ],
    ids=["pid", "hinted-positional", "generic-id-by-resource", "brace", "unnamed"],
)
def test_a_parameter_is_filled_by_the_columns_named_for_it(
    text, parameters, spec, expected
) -> None:
    command = Command(text=text, kind=ACTION, parameters=parameters, spec=spec)
    assert commands.parameter_columns(command) == {
        k: frozenset(v) for k, v in expected.items()
    }


def test_a_backend_that_never_ran_a_query_says_so_instead_of_none():
    from probes.families.sql.preview import _backend_fact

    assert (
        _backend_fact(77, "postgres", None, None, "")
        == "backend 77: user postgres, no state, no query yet"
    )
    fact = _backend_fact(78, "app", "active", "0:00:37.123456", "SELECT 1")
    assert fact == "backend 78: user app, active for 0:00:37, running: SELECT 1"
