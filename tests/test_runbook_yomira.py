"""The user's own runbook, parsed: every fact the issue names, checked exactly."""

from __future__ import annotations

import pytest
from django.utils.text import slugify as django_slugify

from incidents.runbook import parse_runbook
from incidents.runbook.slugs import slugify


@pytest.fixture(scope="module")
def runbook(yomira_source):
    return parse_runbook(yomira_source)


def playbook(runbook, number):
    return next(p for p in runbook.playbooks if p.number == number)


def test_it_reads_the_title_and_version(runbook):
    assert runbook.title == "Runbook — Yomira Incident Playbooks"
    assert runbook.version == "1.0.0"
    assert len(runbook.sha256) == 64
    assert runbook.warnings == []


def test_it_finds_twelve_playbooks_with_their_titles(runbook):
    assert [(p.number, p.title) for p in runbook.playbooks] == [
        (1, "High API Error Rate (5xx)"),
        (2, "High API Latency"),
        (3, "PostgreSQL Down / Unreachable"),
        (4, "Redis Down / Unreachable"),
        (5, "DB Connection Pool Exhausted"),
        (6, "Crawler Stuck Jobs"),
        (7, "SMTP / Email Delivery Failure"),
        (8, "Object Storage Unreachable"),
        (9, "Disk Space Critical"),
        (10, "Memory / OOM"),
        (11, "Failed Migration"),
        (12, "Security Incident (Token Compromise)"),
    ]


def test_slugs_are_djangos_slugify_of_the_title(runbook):
    for p in runbook.playbooks:
        assert p.slug == django_slugify(p.title) == slugify(p.title)
    assert runbook.playbooks[0].slug == "high-api-error-rate-5xx"
    assert playbook(runbook, 3).anchor == "3-postgresql-down--unreachable"


def test_each_playbook_has_its_numbered_steps(runbook):
    assert [len(p.steps) for p in runbook.playbooks] == [
        6,
        5,
        7,
        5,
        5,
        4,
        5,
        4,
        5,
        4,
        5,
        6,
    ]
    for p in runbook.playbooks:
        assert [s.number for s in p.steps] == list(range(1, len(p.steps) + 1))


def test_it_reads_alert_names_severity_and_escalation(runbook):
    facts = {p.number: (p.alerts, p.severity, p.escalation) for p in runbook.playbooks}
    assert facts == {
        1: (["HighErrorRate"], "critical", ["PagerDuty"]),
        2: (["HighLatency"], "warning", ["Slack"]),
        3: (["HealthCheckFailing"], "critical", ["PagerDuty"]),
        4: (["HealthCheckFailing"], "critical", ["PagerDuty"]),
        5: (["DBPoolExhausted"], "critical", ["Slack"]),
        6: ([], "warning", ["Slack"]),
        7: ([], "warning", ["Slack"]),
        8: (["HealthCheckFailing"], "warning", ["Slack"]),
        9: (["DiskUsageHigh"], "warning", ["Slack"]),
        10: ([], "critical", ["PagerDuty"]),
        11: ([], "critical", ["PagerDuty"]),
        12: ([], "critical", ["PagerDuty", "Security team"]),
    }
    assert playbook(runbook, 1).alert_condition == (
        "`HighErrorRate` — 5xx > 1% of requests for 2 minutes"
    )
    assert playbook(runbook, 3).alert_condition.startswith(
        "`HealthCheckFailing` + `database: error`"
    )
    assert playbook(runbook, 9).severity_note == "critical at < 5%"
    assert playbook(runbook, 11).severity_note == "blocks deploys"


def test_impact_and_symptoms_are_kept_as_context(runbook):
    redis = playbook(runbook, 4)
    assert [s.title for s in redis.context] == ["Impact when Redis is down"]
    assert "Session blacklist checks bypassed" in redis.context[0].markdown
    assert [s.title for s in playbook(runbook, 5).context] == ["Symptoms"]
    assert [s.title for s in playbook(runbook, 8).context] == ["Impact"]


def test_step_titles_come_from_the_bold_lead(runbook):
    assert playbook(runbook, 1).steps[0].title == "Check `/health/ready`"
    assert playbook(runbook, 3).steps[0].title == "Verify DB is actually down"
    assert (
        playbook(runbook, 12).steps[0].title == "Revoke ALL sessions for affected users"
    )
    assert playbook(runbook, 1).steps[0].body.startswith("→ is the service up?")


def test_cross_references_become_links(runbook):
    links = {
        (p.number, s.number): s.links
        for p in runbook.playbooks
        for s in p.steps
        if s.links
    }
    assert links == {
        (1, 2): [3],
        (2, 2): [5],
        (3, 4): [9],
        (3, 6): [2],
        (3, 7): [11],
    }


def commands(step):
    return [(c.kind, c.executor, c.parameters) for c in step.commands]


def test_psql_select_1_is_an_sql_probe(runbook):
    first = playbook(runbook, 3).steps[0].commands[0]
    assert first.text == 'psql "${DATABASE_URL}" -c "SELECT 1;"'
    assert (first.kind, first.executor, first.parameters) == ("probe", "sql", [])
    assert first.variables == ["DATABASE_URL"]
    assert first.spec["sql"] == "SELECT 1;"
    assert commands(playbook(runbook, 3).steps[0])[1] == ("manual", None, [])  # flyctl


def test_cancel_and_terminate_backend_are_two_sql_actions_needing_pid(runbook):
    step = playbook(runbook, 5).steps[2]
    assert [c.text for c in step.commands] == [
        "SELECT pg_cancel_backend(pid);",
        "SELECT pg_terminate_backend(pid);",
    ]
    assert commands(step) == [("action", "sql", ["pid"]), ("action", "sql", ["pid"])]
    assert [c.comment for c in step.commands] == [
        "soft cancel",
        "hard kill (use if cancel fails)",
    ]


def test_crawler_reset_holds_an_http_action_and_an_sql_action(runbook):
    step = playbook(runbook, 6).steps[0]
    assert commands(step) == [("action", "http", []), ("action", "sql", [])]
    http, sql = step.commands
    assert http.spec["method"] == "POST"
    assert (
        http.spec["url"]
        == "https://api.yomira.app/api/v1/admin/crawler/jobs/reset-stuck"
    )
    assert http.spec["headers"] == {"Authorization": "Bearer ${ADMIN_TOKEN}"}
    assert http.variables == ["ADMIN_TOKEN"]
    assert http.after == "Or directly:"
    assert sql.text.startswith("UPDATE crawler.job")


def test_revoke_all_needs_user_id_and_the_sql_fallback_needs_1(runbook):
    step = playbook(runbook, 12).steps[0]
    assert commands(step) == [("action", "http", ["userId"]), ("action", "sql", ["$1"])]
    assert step.commands[1].spec["parameter_hints"] == {"$1": "userid"}
    assert step.commands[1].context == "Or direct DB if API is compromised:"


def test_flyctl_commands_are_manual(runbook):
    flyctl = [
        c for p in runbook.playbooks for c in p.commands if c.text.startswith("flyctl")
    ]
    assert len(flyctl) == 18
    assert {(c.kind, c.executor) for c in flyctl} == {("manual", None)}
    rollback = playbook(runbook, 1).steps[2].commands[1]
    assert rollback.parameters == ["previous-sha"]


def test_shell_blocks_split_per_line_and_keep_comments(runbook):
    disk = playbook(runbook, 9).steps[0]
    assert [(c.text, c.kind, c.executor) for c in disk.commands] == [
        ("df -h", "probe", "disk"),
        ("du -sh /var/lib/postgresql/data", "probe", "disk"),
    ]
    assert disk.commands[1].comment == "DB data dir"
    debug = playbook(runbook, 1).steps[4]
    assert [c.text for c in debug.commands] == [
        "flyctl secrets set LOG_LEVEL=debug",
        "flyctl deploy",
        "flyctl secrets set LOG_LEVEL=info && flyctl deploy",
    ]
    assert debug.commands[2].context == "... investigate ..."


def test_multi_line_quoted_psql_is_one_sql_probe(runbook):
    latency = playbook(runbook, 2)
    assert [(c.kind, c.executor) for c in latency.diagnosis_commands] == [
        ("probe", "redis"),
        ("probe", "sql"),
    ]
    psql = latency.diagnosis_commands[1]
    assert psql.text.count("\n") == 3
    assert psql.spec["sql"].startswith("SELECT query, calls")
    assert latency.diagnosis_commands[0].spec["mode"] == "latency-history"


def test_docker_compose_exec_is_recognised_by_its_inner_command(runbook):
    oom = playbook(runbook, 3).steps[2].commands[0]
    assert (oom.kind, oom.executor) == ("probe", "sql")
    assert oom.spec["sql"] == "SHOW max_connections;"
    restart = playbook(runbook, 3).steps[4].commands
    assert [(c.text, c.kind) for c in restart] == [
        ("docker compose restart postgres", "manual"),
        ("docker compose exec postgres pg_isready -U yomira", "manual"),
    ]


def test_redis_commands_become_probes_actions_and_filters(runbook):
    redis = playbook(runbook, 4)
    ping, info = redis.steps[0].commands[0], redis.steps[1].commands[0]
    assert (ping.kind, ping.executor, ping.spec["command"]) == (
        "probe",
        "redis",
        "PING",
    )
    assert info.spec["command"] == "INFO"
    assert info.spec["filter"]["pattern"] == "used_memory_human"
    policy = redis.steps[3].commands[0]
    assert (policy.kind, policy.spec["command"]) == ("action", "CONFIG SET")


def test_migrate_version_is_a_probe_and_force_up_are_actions(runbook):
    migration = playbook(runbook, 11)
    got = [(c.kind, c.executor, c.spec.get("subcommand")) for c in migration.commands]
    assert got == [
        ("probe", "migrate", "version"),
        ("action", "migrate", "force"),
        ("action", "migrate", "up"),
        ("probe", "migrate", "version"),
    ]
    assert migration.commands[1].spec["argument"] == "4"


def test_comment_and_inline_http_requests_are_commands(runbook):
    settings = playbook(runbook, 2).steps[4].commands
    assert [(c.kind, c.executor) for c in settings] == [
        ("action", "http"),
        ("action", "http"),
    ]
    assert settings[0].text.startswith("PUT /admin/settings")
    assert settings[0].spec["url"] == "https://api.yomira.app/api/v1/admin/settings"
    uploads = playbook(runbook, 8).steps[3].commands
    assert [(c.kind, c.spec["body"]) for c in uploads] == [
        ("action", '{"key": "features.uploads_enabled", "value": "false"}')
    ]
    source = playbook(runbook, 6).steps[2].commands
    assert [(c.text, c.kind, c.parameters) for c in source] == [
        ('PATCH /admin/crawler/sources/:id {"isactive": false}', "action", ["id"])
    ]
    pprof = playbook(runbook, 10).steps[1].commands
    assert [(c.text, c.kind, c.executor) for c in pprof] == [
        ("GET /debug/pprof/goroutine", "probe", "http")
    ]


def test_names_in_inline_code_are_not_commands(runbook):
    assert playbook(runbook, 2).steps[0].commands == []  # `EXPLAIN ANALYZE`
    assert playbook(runbook, 2).steps[2].commands == []  # `INFO memory`
    assert playbook(runbook, 1).steps[3].commands == []  # `"panic recovered"`


def test_sql_blocks_split_per_statement_with_kinds(runbook):
    disk = playbook(runbook, 9)
    assert [(c.kind, c.text) for c in disk.steps[2].commands] == [
        ("action", "DROP TABLE IF EXISTS analytics.pageview_2025_01;")
    ]
    assert (
        disk.steps[2].commands[0].context
        == "Keep last 12 months. Drop data > 12 months old."
    )
    vacuum = disk.steps[3].commands[0]
    assert (vacuum.kind, vacuum.spec.get("transaction")) == ("action", False)
    assert [c.kind for c in playbook(runbook, 12).steps[3].commands] == ["probe"]


def test_config_and_code_snippets_are_manual_blocks(runbook):
    toml, go = (
        playbook(runbook, 10).steps[2].commands[0],
        playbook(runbook, 10).steps[3].commands[0],
    )
    assert (toml.language, toml.kind) == ("toml", "manual")
    assert 'memory = "1gb"' in toml.text
    assert (go.language, go.kind) == ("go", "manual")


def test_every_command_kind_count(runbook):
    kinds = [c.kind for p in runbook.playbooks for c in p.commands]
    assert (kinds.count("probe"), kinds.count("action"), kinds.count("manual")) == (
        20,
        17,
        27,
    )
