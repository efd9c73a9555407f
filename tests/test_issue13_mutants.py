"""Tests written for the mutants that survived `make mutate` on issue 13's safety
code (docs/mutation/issue13.md): heavy reads, TARGET_PG_HOSTS, credentials over
plain http, configuration fences. Each test states the behaviour the surviving
mutant changed; none replaces the code under test with a mock."""

from __future__ import annotations

import pytest

from probes import targets
from probes.families import family
from probes.families.http.runner import cleartext_problem, credentials_in
from probes.recognise import recognise
from probes.runtime import Context
from tests.probes.bound import Cmd, bind

TOKEN = "tok-issue13-mutants-1234"


@pytest.fixture
def token(monkeypatch) -> str:
    monkeypatch.setenv("TARGET_ADMIN_TOKEN", TOKEN)
    monkeypatch.delenv("TARGET_HOSTS", raising=False)
    return TOKEN


def refusal(what: str, host: str) -> str:
    return (
        f"Refused: this request carries {what} and would send it in clear text "
        f"over http:// to {host}. Nothing was sent. Use https, or map the host in "
        "TARGET_HOSTS to where it should go."
    )


# --- credentials over plain http ----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "what"),
    [
        (
            "curl -u admin:${ADMIN_TOKEN} http://h.example.com/x",
            "a user and password (-u)",
        ),
        ("curl -u admin:secret http://h.example.com/x", "a user and password (-u)"),
        (
            "curl http://h.example.com/x?token=${ADMIN_TOKEN}",
            "a target value in its URL",
        ),
        (
            "curl -d 'k=${ADMIN_TOKEN}' http://h.example.com/x",
            "a target value in its body",
        ),
        (
            'curl -H "X-Trace: ${ADMIN_TOKEN}" http://h.example.com/x',
            "a target value in its X-Trace header",
        ),
        (
            'curl -H "Private-Token: abc" http://h.example.com/x',
            "the Private-Token header",
        ),
    ],
)
def test_each_credential_is_named_word_for_word_in_the_refusal(text, what, token):
    command = bind(text)
    assert credentials_in(command.spec) == what
    assert cleartext_problem(command.spec, command.spec["url"]) == refusal(
        what, "h.example.com"
    )


def test_a_base_url_the_operator_set_may_carry_credentials_to_a_public_name(
    token, monkeypatch
):
    # The operator's own `${ES_URL}` on a public name (not a loopback address that
    # is let through anyway): it is their choice, nothing is refused.
    monkeypatch.setenv("TARGET_ES_URL", "http://es.example.com:9200")
    command = bind('curl -H "Authorization: Bearer ${ADMIN_TOKEN}" "${ES_URL}/_health"')
    assert command.spec["base_variable"] == "ES_URL"
    assert cleartext_problem(command.spec, "http://es.example.com:9200/_health") == ""
    shown = family("http").preview(command, {}, Context())
    assert not any(f.startswith("Refused") for f in shown.facts)


def test_a_host_target_hosts_maps_to_a_public_name_may_carry_credentials(
    token, monkeypatch
):
    monkeypatch.setenv("TARGET_HOSTS", "API.example.com=http://gateway.example.net")
    command = bind(
        'curl -H "Authorization: Bearer ${ADMIN_TOKEN}" http://API.Example.com/health'
    )
    sent = "http://gateway.example.net/health"
    assert cleartext_problem(command.spec, sent) == ""
    # Another host, not in the map, on the same public gateway is refused.
    other = bind(
        'curl -H "Authorization: Bearer ${ADMIN_TOKEN}" http://b.example.com/h'
    )
    assert cleartext_problem(other.spec, sent) == refusal(
        "the Authorization header", "gateway.example.net"
    )


def test_a_host_with_a_space_is_no_private_address(token):
    command = bind(
        'curl -H "Authorization: Bearer ${ADMIN_TOKEN}" http://h.example.com/x'
    )
    assert cleartext_problem(command.spec, "http://10.0.0.1 /x") == refusal(
        "the Authorization header", "10.0.0.1 "
    )
    assert cleartext_problem(command.spec, "http://10.0.0.1/x") == ""


def test_a_preview_with_a_parameter_says_it_would_be_refused(token):
    command = bind(
        'curl -X POST -H "Authorization: Bearer ${ADMIN_TOKEN}" '
        "http://api.example.com/admin/jobs/{jobId}/pause"
    )
    assert command.kind == "action" and command.parameters == ["jobId"]
    shown = family("http").preview(command, {"jobId": "42"}, Context())
    assert refusal("the Authorization header", "api.example.com") in shown.facts
    assert all(token not in f for f in shown.facts)


# --- TARGET_PG_HOSTS ------------------------------------------------------------------


def test_an_entry_with_two_equals_signs_maps_nothing(monkeypatch):
    monkeypatch.setenv("TARGET_PG_HOSTS", "db.internal=A=B_URL, ok.internal=OK_URL")
    assert targets.pg_host_map() == {"ok.internal": "OK_URL"}
    assert targets.pg_variable("db.internal") is None


UNREACHABLE = "postgres://nobody@127.0.0.1:1/nowhere"


def test_psql_on_a_named_connection_runs_there_not_on_database_url(monkeypatch):
    from probes.commands import missing_targets, run
    from tests.stack import console_server

    monkeypatch.setenv("TARGET_DATABASE_URL", UNREACHABLE)
    monkeypatch.setenv("TARGET_REPLICA_URL", console_server("template1"))
    command = bind('psql "${REPLICA_URL}" -c "SELECT current_database() AS db;"')
    assert family("sql").targets(command) == ["REPLICA_URL"]
    assert missing_targets(command) == []
    result = run(command, {}, Context())
    assert (result.ok, result.summary) == (True, "db = template1")


def test_an_sql_command_without_a_target_runs_on_database_url(monkeypatch):
    from probes.commands import missing_targets, run
    from tests.stack import console_server

    command = Cmd("SELECT current_database() AS db;", "probe", "sql")
    command.spec = {"sql": "SELECT current_database() AS db;", "statements": 1}
    monkeypatch.delenv("TARGET_DATABASE_URL", raising=False)
    assert family("sql").targets(command) == ["DATABASE_URL"]
    assert missing_targets(command) == ["TARGET_DATABASE_URL"]
    monkeypatch.setenv("TARGET_DATABASE_URL", console_server("template1"))
    result = run(command, {}, Context())
    assert (result.ok, result.summary) == (True, "db = template1")


# --- heavy SQL reads ------------------------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        # Quoted catalog names are the catalog all the same.
        'SELECT * FROM "pg_catalog"."pg_class";',
        'SELECT * FROM "information_schema"."columns";',
        # database.schema.relation: the relation's own name decides.
        "SELECT * FROM yomira.public.pg_stat_statements;",
    ],
)
def test_a_quoted_or_three_part_catalog_name_is_not_heavy(sql):
    binding = recognise(sql, "sql")
    assert binding.kind == "probe" and "heavy" not in binding.spec


@pytest.mark.parametrize(
    "sql",
    [
        # A temporary table lives in the probe's own new session: empty, not heavy.
        "SELECT * FROM pg_temp.scratch;",
        # Every CTE is read by its name, not only the first.
        "WITH r AS (SELECT * FROM crawler.job WHERE status = 'running'), "
        "s AS (SELECT * FROM crawler.job WHERE status = 'stuck') "
        "SELECT * FROM r, s;",
        "WITH r AS MATERIALIZED (SELECT * FROM crawler.job WHERE id < 10) "
        "SELECT * FROM r;",
        "WITH r AS NOT MATERIALIZED (SELECT * FROM crawler.job WHERE id < 10) "
        "SELECT * FROM r;",
    ],
)
def test_a_temporary_table_or_a_named_subquery_is_not_heavy(sql):
    binding = recognise(sql, "sql")
    assert binding.kind == "probe" and "heavy" not in binding.spec


def test_a_cte_after_the_first_still_reads_its_table_when_it_has_no_where():
    binding = recognise(
        "WITH r AS (SELECT * FROM crawler.job WHERE id < 10), "
        "s AS (SELECT * FROM crawler.event) SELECT * FROM r, s;",
        "sql",
    )
    assert binding.spec["heavy"].startswith(
        "reads every row of crawler.event (no WHERE"
    )


@pytest.mark.parametrize(
    "sql",
    [
        # The subquery is read on its own (it has a WHERE); its alias is no table.
        "SELECT * FROM (SELECT id FROM crawler.job WHERE id < 5) s;",
        "SELECT * FROM (VALUES (1), (2)) AS v(n);",
        # FROM inside a function's parentheses is no query's FROM.
        "SELECT trim(both ' ' FROM name) FROM crawler.job WHERE id = 1;",
        "SELECT substring(note FROM 1 FOR 10) FROM crawler.job WHERE id = 1;",
    ],
)
def test_a_subquery_alias_or_a_function_argument_is_no_table(sql):
    binding = recognise(sql, "sql")
    assert binding.kind == "probe" and "heavy" not in binding.spec, binding.spec


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("SELECT * FROM ONLY crawler.job;", "reads every row of crawler.job (no WHERE"),
        (
            "SELECT * FROM crawler.job j JOIN LATERAL (SELECT * FROM crawler.event e "
            "WHERE e.job_id = j.id LIMIT 1) ev ON true;",
            "reads every row of crawler.job (no WHERE",
        ),
        # A stray closing parenthesis (a typo in the runbook) does not stop the
        # reading: the whole table is still found.
        (
            "SELECT count(*)) FROM crawler.job;",
            "aggregates over every row of crawler.job",
        ),
    ],
)
def test_only_and_lateral_are_no_table_names(sql, reason):
    assert recognise(sql, "sql").spec["heavy"].startswith(reason)


@pytest.mark.parametrize(
    "sql",
    [
        # Grouping, DISTINCT and HAVING read every row before the LIMIT applies.
        "SELECT status FROM crawler.job GROUP BY status LIMIT 5;",
        "SELECT DISTINCT status FROM crawler.job LIMIT 5;",
        "SELECT 'any' FROM crawler.job HAVING true LIMIT 1;",
    ],
)
def test_a_limit_does_not_bound_a_grouping_read(sql):
    assert (
        recognise(sql, "sql")
        .spec["heavy"]
        .startswith("aggregates over every row of crawler.job (no WHERE)")
    )


@pytest.mark.parametrize(
    ("sql", "names"),
    [
        ("SELECT * FROM crawler.job j, crawler.event e;", "crawler.job, crawler.event"),
        ("SELECT * FROM crawler.job ORDER BY id, status;", "crawler.job"),
        (
            "SELECT * FROM crawler.job j, crawler.event e ORDER BY j.id, e.id;",
            "crawler.job, crawler.event",
        ),
    ],
)
def test_the_reason_names_the_from_lists_tables_and_nothing_else(sql, names):
    assert (
        recognise(sql, "sql")
        .spec["heavy"]
        .startswith(f"reads every row of {names} (no WHERE, no LIMIT)")
    )


def test_a_table_statement_gives_its_whole_reason():
    assert recognise("TABLE ONLY users.user;", "sql").spec["heavy"] == (
        "reads every row of users.user (TABLE, no LIMIT): a sequential scan of the "
        "whole table, slow on a big one and competing with production"
    )


# --- heavy Redis reads ----------------------------------------------------------------

WHOLE = "in one reply: on a huge key it blocks Redis for every other client"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (
            "redis-cli --scan",
            "--scan lists every key in the keyspace: on a big Redis it runs for long "
            "and loads it the whole time",
        ),
        (
            "redis-cli --hotkeys",
            "--hotkeys iterates over every key in the keyspace (SCAN, then a command "
            "per key): on a big Redis it runs for long and loads it the whole time",
        ),
        ("redis-cli SMEMBERS online", f"SMEMBERS returns the whole set {WHOLE}"),
        ("redis-cli hgetall user:1", f"HGETALL returns the whole hash {WHOLE}"),
        ("redis-cli LRANGE queue 0 -1", f"LRANGE 0 -1 returns the whole list {WHOLE}"),
        ("redis-cli LRANGE queue 1 -2", f"LRANGE 1 -2 returns the whole list {WHOLE}"),
        (
            "redis-cli ZRANGE board 0 -1 WITHSCORES",
            f"ZRANGE 0 -1 returns the whole sorted set {WHOLE}",
        ),
        (
            "redis-cli SCAN 0 count 10000",
            "SCAN with COUNT 10000 examines that many keys in one blocking step",
        ),
        (
            "redis-cli SCAN 0 MATCH a* COUNT 20000",
            "SCAN with COUNT 20000 examines that many keys in one blocking step",
        ),
    ],
)
def test_each_heavy_redis_read_gives_its_whole_reason(text, reason):
    binding = recognise(text, "bash")
    assert (binding.kind, binding.executor) == ("probe", "redis")
    assert binding.spec["heavy"] == reason


@pytest.mark.parametrize(
    "text",
    [
        "redis-cli LRANGE queue 0 10",
        "redis-cli LRANGE queue 0 0",
        "redis-cli ZRANGE board 5 0",
        "redis-cli LRANGE queue -1 -1",
        "redis-cli LRANGE queue 0",
        "redis-cli LRANGE queue 0 last",
        "redis-cli LRANGE queue first -1",
        "redis-cli ZRANGE board 0 9 WITHSCORES",
        "redis-cli SCAN 0 COUNT 9999",
        "redis-cli SCAN 0 COUNT",
        "redis-cli SCAN 0 COUNT many",
        "redis-cli SCAN 0 MATCH COUNT",
        "redis-cli HLEN user:1",
        # Keys named like a range are no range: MGET reads the keys it names.
        "redis-cli MGET k 0 -1",
        "redis-cli HMGET user:1 0 -1",
    ],
)
def test_a_bounded_or_unreadable_redis_read_is_not_heavy(text):
    binding = recognise(text, "bash")
    assert binding.kind == "probe" and "heavy" not in binding.spec, binding.spec


# --- the run request: a confirmed heavy read beside break glass and approval --------


@pytest.fixture
def pool(yomira, make_user, monkeypatch):
    from incidents.actors import Actor
    from incidents.models import Playbook
    from incidents.services import open_incident
    from tests.conftest import grant
    from tests.stack import console_server

    monkeypatch.setenv("TARGET_DATABASE_URL", console_server("postgres"))
    sent: list[int] = []
    # Nothing reaches a broker: the queued run's id is kept instead.
    monkeypatch.setattr(
        "incidents.services.runs.dispatch",
        lambda pk, kind, task_id=None: sent.append(pk),
    )
    playbook = Playbook.objects.current().get(number=5)
    gina = make_user("gina", "Commander")
    grant(gina, "run_actions", playbooks=[playbook])
    incident = open_incident(playbook=playbook, title="pool", actor=Actor.person(gina))
    terminate = playbook.commands.get(text__startswith="SELECT pg_terminate")
    assert terminate.requires_approval and not terminate.spec.get("heavy")
    return type(
        "Pool",
        (),
        {"gina": gina, "incident": incident, "terminate": terminate, "sent": sent},
    )


def ask(pool, reason: str, django_capture_on_commit_callbacks):  # noqa: ANN001, ANN201
    from incidents.actors import Actor
    from incidents.services import request_run
    from probes.commands import confirm_word

    with django_capture_on_commit_callbacks(execute=True):
        return request_run(
            incident=pool.incident,
            command=pool.terminate,
            params={"pid": "1"},
            actor=Actor.person(pool.gina),
            confirmation=confirm_word(pool.terminate),
            break_glass_reason=reason,
        ).execution


def test_a_break_glass_run_keeps_its_own_reason_and_skips_approval(
    pool, django_capture_on_commit_callbacks
):
    from incidents.models import AuditEvent

    execution = ask(
        pool, "DB is down, nobody else awake", django_capture_on_commit_callbacks
    )
    assert (execution.state, execution.break_glass, execution.reason) == (
        "queued",
        True,
        "DB is down, nobody else awake",
    )
    assert execution.approval_expires_at is None and pool.sent == [execution.pk]
    event = AuditEvent.objects.get(incident=pool.incident, verb="execution.break_glass")
    assert event.data["reason"] == "DB is down, nobody else awake"
    assert "heavy_confirmed" not in event.data


def test_an_action_that_needs_approval_waits_with_no_reason(
    pool, django_capture_on_commit_callbacks
):
    from incidents.models import AuditEvent

    execution = ask(pool, "", django_capture_on_commit_callbacks)
    assert (execution.state, execution.break_glass, execution.reason) == (
        "awaiting_approval",
        False,
        "",
    )
    assert execution.approval_expires_at is not None and pool.sent == []
    event = AuditEvent.objects.get(
        incident=pool.incident, verb="execution.approval_requested"
    )
    assert "heavy_confirmed" not in event.data and "reason" not in event.data


@pytest.mark.parametrize(
    ("tables", "names"),
    [
        ("a, b, c", "a, b, c"),
        ("a, b, c, d", "a, b, c and 1 more"),
        ("a, b, a", "a, b"),
    ],
)
def test_the_reason_names_three_tables_then_counts_the_rest(tables, names):
    assert (
        recognise(f"SELECT * FROM {tables};", "sql")
        .spec["heavy"]
        .startswith(f"reads every row of {names} (no WHERE")
    )


@pytest.mark.parametrize("content", ["", "\n\n", "-- only a comment\n", "# a\n# b\n"])
def test_a_fence_with_no_setting_is_not_configuration(content):
    from probes.recognise import fence_is_config

    assert fence_is_config(content) is False


# --- the re-run after the JOIN and bracketed-join fix (docs/mutation/issue13.md) -----


@pytest.mark.parametrize(
    "sql",
    [
        # Subqueries in parentheses are read on their own, not as a bracketed join
        # (mutants 33-39: the words that open one).
        "SELECT * FROM (VALUES (1), (2)) AS v(x);",
        "SELECT * FROM (WITH r AS (SELECT 1 AS x) SELECT x FROM r) AS s;",
        "SELECT * FROM ((SELECT 1) UNION (SELECT 2)) AS u;",
        "SELECT * FROM (TABLE pg_class) AS t;",
        # `LATERAL` is no table name, in any case of the word (mutant 79).
        "SELECT * FROM pg_class c, LATERAL generate_series(1, 3) g;",
    ],
)
def test_subqueries_and_lateral_are_not_bracketed_joins(sql):
    binding = recognise(sql, "sql")
    assert binding.kind == "probe" and "heavy" not in binding.spec


def test_a_bracketed_join_adds_its_tables_to_those_before_it():
    # Mutant 52 replaced the outer query's tables with the group's: the user table
    # before the catalog join would be forgotten.
    binding = recognise(
        "SELECT * FROM crawler.job, (pg_class JOIN pg_namespace ON true);", "sql"
    )
    assert "every row of crawler.job (no WHERE" in binding.spec["heavy"]
