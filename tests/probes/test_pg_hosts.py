"""`psql -h HOST` against a real PostgreSQL: the host is bound through
TARGET_PG_HOSTS when the command runs, and a host with no entry never runs against
DATABASE_URL (run with tests/stack.py, which provides the server)."""

from __future__ import annotations

import pytest

from probes import targets
from probes.commands import missing_targets, run
from probes.families import family
from probes.redaction import redact
from probes.runtime import Context
from tests.probes.bound import bind
from tests.stack import console_server

UNREACHABLE = "postgres://nobody@127.0.0.1:1/nowhere"


@pytest.fixture
def primary(monkeypatch) -> str:
    """db-primary.internal is this run's PostgreSQL; DATABASE_URL points nowhere
    (a fallback to it would fail to connect, never pass)."""
    monkeypatch.setenv(
        "TARGET_PG_HOSTS",
        "db-primary.internal=PRIMARY_DATABASE_URL, replica.internal:5433=TARGET_REPLICA_URL",
    )
    monkeypatch.setenv("TARGET_PRIMARY_DATABASE_URL", console_server("postgres"))
    monkeypatch.setenv("TARGET_DATABASE_URL", UNREACHABLE)
    return console_server("postgres")


def test_the_host_runs_against_the_target_the_map_names(primary):
    command = bind(
        'psql -h db-primary.internal -U app -c "SELECT current_database() AS db;"'
    )
    assert missing_targets(command) == []
    result = run(command, {}, Context())
    assert result.ok, result.summary
    assert result.summary == "db = postgres"


def test_the_database_named_with_the_host_is_the_one_used(primary):
    command = bind(
        'psql -h DB-Primary.internal -d template1 -c "SELECT current_database() AS db;"'
    )
    result = run(command, {}, Context())
    assert (result.ok, result.summary) == (True, "db = template1")


def test_a_literal_uri_is_bound_by_its_host(primary):
    command = bind(
        'psql "postgresql://app@db-primary.internal/template1" '
        '-c "SELECT current_database() AS db;"'
    )
    result = run(command, {}, Context())
    assert (result.ok, result.summary) == (True, "db = template1")


def test_an_unmapped_host_is_refused_naming_the_host_never_database_url(monkeypatch):
    # DATABASE_URL answers: a fallback to it would run and pass.
    monkeypatch.setenv("TARGET_DATABASE_URL", console_server("postgres"))
    monkeypatch.setenv("TARGET_PG_HOSTS", "db-primary.internal=PRIMARY_DATABASE_URL")
    command = bind('psql -h analytics.internal -c "SELECT 1 AS one;"')
    wanted = (
        'TARGET_PG_HOSTS with an entry "analytics.internal=<NAME>" (and TARGET_<NAME>)'
    )
    assert missing_targets(command) == [wanted]
    with pytest.raises(targets.TargetMissing) as refused:
        run(command, {}, Context())
    assert str(refused.value) == (
        f"Not configured: set {wanted} in the worker's environment."
    )


def test_with_no_map_at_all_the_host_is_refused_too(monkeypatch):
    monkeypatch.delenv("TARGET_PG_HOSTS", raising=False)
    monkeypatch.setenv("TARGET_DATABASE_URL", console_server("postgres"))
    command = bind('psql -h db-primary.internal -c "SELECT 1 AS one;"')
    with pytest.raises(targets.TargetMissing, match="db-primary.internal=<NAME>"):
        run(command, {}, Context())


def test_a_mapped_host_whose_variable_is_unset_names_that_variable(monkeypatch):
    monkeypatch.setenv("TARGET_PG_HOSTS", "db-primary.internal=PRIMARY_DATABASE_URL")
    monkeypatch.delenv("TARGET_PRIMARY_DATABASE_URL", raising=False)
    command = bind('psql -h db-primary.internal -c "SELECT 1;"')
    assert missing_targets(command) == ["TARGET_PRIMARY_DATABASE_URL"]


def test_host_and_port_is_looked_up_before_the_host_alone(monkeypatch):
    monkeypatch.setenv(
        "TARGET_PG_HOSTS",
        "db.internal=PRIMARY_DATABASE_URL,db.internal:5433=REPLICA_DATABASE_URL",
    )
    sql = family("sql")
    assert sql.targets(bind('psql -h db.internal -p 5433 -c "SELECT 1;"')) == [
        "REPLICA_DATABASE_URL"
    ]
    assert sql.targets(bind('psql -h db.internal -c "SELECT 1;"')) == [
        "PRIMARY_DATABASE_URL"
    ]
    assert sql.targets(bind('psql -h db.internal -p 6000 -c "SELECT 1;"')) == [
        "PRIMARY_DATABASE_URL"
    ]


def test_the_map_is_read_when_it_runs_not_when_it_was_recognised(monkeypatch):
    command = bind('psql -h late.internal -c "SELECT current_database() AS db;"')
    monkeypatch.setenv("TARGET_PG_HOSTS", "late.internal=LATE_URL")
    monkeypatch.setenv("TARGET_LATE_URL", console_server("template1"))
    result = run(command, {}, Context())
    assert (result.ok, result.summary) == (True, "db = template1")


def test_an_action_is_previewed_against_the_mapped_target(primary):
    command = bind('psql -h db-primary.internal -c "DELETE FROM pg_temp.nothing_here;"')
    assert command.kind == "action"
    shown = family("sql").preview(command, {}, Context())
    # It reached the mapped server (which said the table does not exist), not the
    # unreachable DATABASE_URL.
    assert "nothing_here" in shown.headline and "does not exist" in shown.headline


def test_the_map_is_not_a_secret_and_is_never_masked(monkeypatch):
    monkeypatch.setenv("TARGET_PG_HOSTS", "db-primary.internal=PRIMARY_DATABASE_URL")
    assert "db-primary.internal=PRIMARY_DATABASE_URL" not in targets.secret_values()
    text = "set TARGET_PG_HOSTS=db-primary.internal=PRIMARY_DATABASE_URL"
    assert redact(text) == text


def test_bad_entries_are_ignored_and_a_target_prefix_is_dropped(monkeypatch):
    monkeypatch.setenv(
        "TARGET_PG_HOSTS",
        "a.internal=TARGET_A_URL, =B, c.internal=, d.internal=no-such",
    )
    assert targets.pg_host_map() == {"a.internal": "A_URL"}
