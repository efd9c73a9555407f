"""Recognition closer to what the command does (issue 13, item 5), one command at a
time and without a database: heavy reads, configuration fences, `psql -h HOST`,
kubectl's reading verbs and the bundled runbook left as it was."""

from __future__ import annotations

import textwrap

import pytest

from incidents.runbook import parse_runbook
from probes.binding import ACTION, MANUAL, PROBE
from probes.commands import heavy_reason
from probes.recognise import CONFIG_LANGUAGE, fence_is_config, recognise
from tests.conftest import YOMIRA_RUNBOOK

# --- heavy SQL reads -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "names"),
    [
        ("SELECT * FROM crawler.job;", "every row of crawler.job (no WHERE, no LIMIT)"),
        ("select id, status from crawler.job order by id;", "every row of crawler.job"),
        ("SELECT count(*) FROM analytics.pageview;", "every row of analytics.pageview"),
        # An aggregate reads every row whatever its LIMIT.
        ("SELECT status, count(*) FROM crawler.job GROUP BY status LIMIT 5;", "(no "),
        ("SELECT DISTINCT userid FROM users.session;", "users.session"),
        ("SELECT a.x, b.y FROM a, b;", "every row of a, b"),
        ("SELECT * FROM t JOIN u ON u.id = t.uid;", "every row of t, u"),
        ('SELECT * FROM "Orders";', '"Orders"'),
        ("TABLE users.user;", "every row of users.user (TABLE, no LIMIT)"),
        # A subquery that reads a whole table is a whole-table read too.
        ("SELECT * FROM (SELECT * FROM big) AS s LIMIT 5;", "every row of big"),
        # Heavy wins over the other statements of the block.
        ("SELECT 1;\nSELECT * FROM big;", "every row of big"),
        # The FROM list goes on after a join (found by mutation testing).
        (
            "SELECT * FROM pg_class CROSS JOIN pg_namespace, crawler.job;",
            "every row of crawler.job",
        ),
        # A bracketed join's tables are read by the query around it.
        (
            "SELECT * FROM (crawler.job JOIN crawler.event ON true);",
            "every row of crawler.job, crawler.event",
        ),
    ],
)
def test_a_whole_table_read_is_a_heavy_probe(sql, names):
    binding = recognise(sql, "sql")
    assert binding.kind == PROBE and binding.executor == "sql"
    assert names in binding.spec["heavy"]
    assert heavy_reason(binding) == binding.spec["heavy"]


def test_the_reason_names_at_most_three_tables():
    sql = "SELECT * FROM " + ", ".join(f"t{i}" for i in range(500)) + ";"
    assert (
        recognise(sql, "sql")
        .spec["heavy"]
        .startswith("reads every row of t0, t1, t2 and 497 more (no WHERE")
    )


def test_the_reason_says_what_is_scanned_and_why_it_hurts():
    binding = recognise("SELECT count(*) FROM crawler.job;", "sql")
    assert binding.spec["heavy"] == (
        "aggregates over every row of crawler.job (no WHERE): a full scan of the "
        "table, slow on a big one and heavy on a busy database "
        "(pg_class.reltuples gives a row estimate for free)"
    )
    plain = recognise("SELECT * FROM crawler.job;", "sql")
    assert plain.spec["heavy"] == (
        "reads every row of crawler.job (no WHERE, no LIMIT): a sequential scan, "
        "slow on a big table and competing with production queries"
    )


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1;",
        "SELECT now();",
        "SHOW max_connections;",
        "SELECT * FROM crawler.job WHERE status = 'running';",
        "SELECT id FROM crawler.job LIMIT 10;",
        "SELECT id FROM crawler.job ORDER BY id FETCH FIRST 10 ROWS ONLY;",
        "SELECT count(*) FROM crawler.job WHERE status = 'running';",
        # Catalog and statistics views are small: never heavy.
        "SELECT count(*), state FROM pg_stat_activity GROUP BY state;",
        "SELECT * FROM pg_catalog.pg_locks;",
        "SELECT * FROM information_schema.tables;",
        "SELECT query, calls FROM pg_stat_statements ORDER BY calls DESC;",
        "TABLE pg_stat_activity;",
        # A FROM inside a function call is not a table.
        "SELECT extract(epoch FROM now());",
        "SELECT * FROM generate_series(1, 10);",
        # Planned, not run.
        "EXPLAIN SELECT * FROM crawler.job;",
        # A CTE read by its name is not a table; the CTE itself has a WHERE.
        "WITH r AS (SELECT * FROM crawler.job WHERE status = 'running') "
        "SELECT * FROM r;",
        # Words in literals and comments are not the query's.
        "SELECT 'FROM big' AS x; -- FROM big",
        # The WHERE around a bracketed join bounds it.
        "SELECT * FROM (crawler.job JOIN crawler.event ON true) WHERE job.id = 1;",
        "SELECT * FROM a JOIN b ON a.x = b.y LIMIT 5;",
    ],
)
def test_a_bounded_or_catalog_read_is_not_heavy(sql):
    binding = recognise(sql, "sql")
    assert binding.kind == PROBE
    assert "heavy" not in binding.spec
    assert heavy_reason(binding) == ""


def test_an_action_is_never_heavy_its_own_preview_and_word_guard_it():
    binding = recognise("DELETE FROM crawler.job;", "sql")
    assert binding.kind == ACTION and "heavy" not in binding.spec
    binding.spec["heavy"] = "forced"  # even if some spec said so
    assert heavy_reason(binding) == ""


def test_psql_c_with_a_whole_table_read_is_heavy_too():
    binding = recognise('psql "${DATABASE_URL}" -c "SELECT * FROM users.user;"', "bash")
    assert binding.kind == PROBE and "users.user" in binding.spec["heavy"]


# --- heavy Redis reads ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "start"),
    [
        ("redis-cli KEYS '*'", "KEYS walks every key in one blocking call"),
        ('redis-cli -u "${REDIS_URL}" keys session:*', "KEYS walks every key"),
        ("redis-cli SMEMBERS online", "SMEMBERS returns the whole set"),
        ("redis-cli HGETALL user:1", "HGETALL returns the whole hash"),
        ("redis-cli HKEYS user:1", "HKEYS returns the whole hash"),
        ("redis-cli HVALS user:1", "HVALS returns the whole hash"),
        ("redis-cli LRANGE queue 0 -1", "LRANGE 0 -1 returns the whole list"),
        ("redis-cli ZRANGE board 0 -1", "ZRANGE 0 -1 returns the whole sorted set"),
        ("redis-cli --bigkeys", "--bigkeys iterates over every key"),
        ("docker compose exec -T redis redis-cli --memkeys", "--memkeys iterates"),
        ("redis-cli --scan --pattern 'session:*'", "--scan lists every key"),
        ("redis-cli SCAN 0 MATCH a* COUNT 100000", "SCAN with COUNT 100000"),
        ("redis-cli HGETALL user:1 | grep email", "HGETALL returns the whole hash"),
    ],
)
def test_a_redis_read_that_can_stall_production_is_heavy(text, start):
    binding = recognise(text, "bash")
    assert (binding.kind, binding.executor) == (PROBE, "redis")
    assert binding.spec["heavy"].startswith(start)


@pytest.mark.parametrize(
    "text",
    [
        'redis-cli -u "${REDIS_URL}" ping',
        'redis-cli -u "${REDIS_URL}" info memory | grep used_memory_human',
        "redis-cli --latency-history -i 1",
        "redis-cli LRANGE queue 0 9",
        "redis-cli LRANGE queue -10 -1",
        "redis-cli SCAN 0 COUNT 100",
        "redis-cli SCAN 0",
        "redis-cli HGET user:1 email",
        "redis-cli LLEN queue",
    ],
)
def test_a_bounded_redis_read_is_not_heavy(text):
    binding = recognise(text, "bash")
    assert binding.kind == PROBE and "heavy" not in binding.spec


def test_a_redis_action_is_not_heavy():
    binding = recognise("redis-cli DEL session:1", "bash")
    assert binding.kind == ACTION and "heavy" not in binding.spec


# --- configuration in an SQL fence ---------------------------------------------------

POSTGRESQL_CONF = """\
# postgresql.conf
wal_level = replica
max_connections = 200          # was 100
shared_buffers = '4GB'
max_wal_size=2GB
log_min_duration_statement = 500ms
-- then reload
archive_command = 'test ! -f /mnt/wal/%f && cp %p /mnt/wal/%f'
"""


@pytest.mark.parametrize(
    "content",
    [
        POSTGRESQL_CONF,
        "wal_level = replica\n",
        "shared_preload_libraries = 'pg_stat_statements'\n",
        "random_page_cost = 1.1\neffective_io_concurrency = 200\n",
        "autovacuum.enabled = on  # extension-style name\n",
    ],
)
def test_configuration_lines_are_not_sql(content):
    assert fence_is_config(content)
    binding = recognise(content, "sql")
    assert (binding.kind, binding.executor, binding.spec) == (MANUAL, None, {})


@pytest.mark.parametrize(
    "content",
    [
        "SET work_mem = '64MB';",
        "ALTER SYSTEM SET wal_level = replica;",
        "SELECT 1;",
        "UPDATE t\nSET a = 1\nWHERE b = 2;",
        "wal_level = replica\nSELECT pg_reload_conf();",
        "-- only a comment\n",
        "",
    ],
)
def test_statements_are_still_sql(content):
    assert not fence_is_config(content)


def test_set_and_alter_system_stay_sql_actions():
    for statement in (
        "SET work_mem = '64MB';",
        "ALTER SYSTEM SET wal_level = replica;",
    ):
        binding = recognise(statement, "sql")
        assert (binding.kind, binding.executor) == (ACTION, "sql")


def test_the_config_language_is_one_pygments_highlights():
    from pygments.lexers import get_lexer_by_name

    assert CONFIG_LANGUAGE == "ini"
    assert get_lexer_by_name(CONFIG_LANGUAGE).name == "INI"


# --- psql -h HOST --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "host", "extra"),
    [
        (
            'psql -h db-primary.internal -U app -d orders -c "SELECT 1;"',
            "db-primary.internal",
            {"target_dbname": "orders", "user": "app"},
        ),
        (
            'psql --host=Replica.Internal -p 5433 -c "SELECT 1;"',
            "replica.internal",
            {"target_port": "5433"},
        ),
        ('psql -hdb.internal -Atc "SELECT 1;"', "db.internal", {}),
        (
            'psql "postgresql://app@db-primary.internal:6432/orders" -c "SELECT 1;"',
            "db-primary.internal",
            {"target_port": "6432", "target_dbname": "orders", "user": "app"},
        ),
        (
            'psql "host=db.internal dbname=orders user=app" -c "SELECT 1;"',
            "db.internal",
            {"target_dbname": "orders", "user": "app"},
        ),
        (
            "psql -h replica.internal <<'SQL'\nSELECT 1;\nSQL",
            "replica.internal",
            {},
        ),
        ('psql -h localhost -c "SELECT 1;"', "localhost", {}),
    ],
)
def test_psql_with_a_host_is_bound_through_the_host_map(text, host, extra):
    binding = recognise(text, "bash")
    assert (binding.kind, binding.executor) == (PROBE, "sql")
    assert binding.spec["target_host"] == host
    assert binding.spec["target_map"] == "PG_HOSTS"
    assert "target" not in binding.spec  # never DATABASE_URL by default
    assert "DATABASE_URL" not in binding.variables
    for key, value in extra.items():
        assert binding.spec[key] == value, key


def test_a_connection_variable_wins_over_a_host():
    binding = recognise(
        'psql "${REPLICA_URL}" -h other.internal -c "SELECT 1;"', "bash"
    )
    assert binding.spec["target"] == "REPLICA_URL"
    assert "target_host" not in binding.spec


def test_psql_without_a_host_keeps_database_url():
    binding = recognise(
        'docker compose exec postgres psql -U yomira -c "SHOW max_connections;"', "bash"
    )
    assert binding.spec["target"] == "DATABASE_URL"
    assert "target_host" not in binding.spec
    assert recognise('psql -Atc "SELECT 1;"', "bash").spec["target"] == "DATABASE_URL"


@pytest.mark.parametrize(
    "text",
    [
        'psql -h "${DB_HOST}" -c "SELECT 1;"',  # which database is that?
        'psql -h /var/run/postgresql -c "SELECT 1;"',  # a socket on the author's box
        "psql -h db.internal -f fix.sql",
        "psql -h db.internal",
    ],
)
def test_psql_whose_database_cannot_be_named_stays_manual(text):
    assert recognise(text, "bash").kind == MANUAL


def test_recognising_psql_reads_no_environment(monkeypatch):
    text = 'psql -h db.internal -c "SELECT 1;"'
    before = recognise(text, "bash")
    monkeypatch.setenv("TARGET_PG_HOSTS", "db.internal=OTHER_URL")
    after = recognise(text, "bash")
    assert before.spec == after.spec and before.variables == after.variables


# --- kubectl and curl through the dispatcher -----------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "kubectl get pods -n api",
        "kubectl describe deploy/api",
        "kubectl logs deploy/api --tail=100",
        "kubectl top pods -n api",
    ],
)
def test_kubectl_reading_verbs_are_probes_and_not_heavy(text):
    binding = recognise(text, "bash")
    assert (binding.kind, binding.executor) == (PROBE, "kubectl")
    assert "heavy" not in binding.spec


def test_kubectl_changing_verbs_stay_manual():
    assert recognise("kubectl scale deploy/api --replicas=3", "bash").kind == MANUAL


def test_curl_to_plain_http_is_recognised_as_written():
    # The decision about credentials in clear text is taken when it runs (it
    # depends on TARGET_HOSTS): see tests/probes/test_http_cleartext.py.
    binding = recognise("curl -s http://status.example.com/health", "bash")
    assert (binding.kind, binding.executor) == (PROBE, "http")


# --- the bundled runbook binds as before ---------------------------------------------


def test_no_yomira_command_is_heavy_host_bound_or_configuration():
    runbook = parse_runbook(YOMIRA_RUNBOOK.read_bytes())
    commands = [
        c
        for p in runbook.playbooks
        for c in [*p.diagnosis_commands, *(c for s in p.steps for c in s.commands)]
    ]
    assert commands
    assert [c.text for c in commands if c.spec.get("heavy")] == []
    assert [c.text for c in commands if c.spec.get("target_host")] == []
    assert [c.text for c in commands if c.language == CONFIG_LANGUAGE] == []


def test_an_imported_config_fence_is_never_sent_to_the_database():
    # With or without the importer's language line (CONFIG_LANGUAGE for the whole
    # fence), no command cut from it is runnable.
    source = f"""# R

## 1. Replication Lag

**Severity:** Warning

### Steps

1. **Set the WAL level** in postgresql.conf:
   ```sql
{textwrap.indent(POSTGRESQL_CONF, "   ")}   ```
2. **Apply it**
   ```sql
   ALTER SYSTEM SET wal_level = replica;
   ```
"""
    (playbook,) = parse_runbook(source.encode()).playbooks
    config, apply = playbook.steps
    assert config.commands
    assert all((c.kind, c.executor) == (MANUAL, None) for c in config.commands)
    assert all(c.language in {"sql", CONFIG_LANGUAGE} for c in config.commands)
    assert [(c.kind, c.executor) for c in apply.commands] == [(ACTION, "sql")]
