"""The runbook importer is general: it reads any runbook written in the Yomira style,
not just runbooks/yomira.md. The runbooks under tests/runbooks/ describe other services
(Kafka, RabbitMQ, PostgreSQL, Nginx, Elasticsearch, etcd, billing) with awkward
formatting; every test asserts the exact parse result. No Django, no database."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from incidents.runbook import RunbookError, parse_runbook
from incidents.runbook.types import Command, NotARunbook, Playbook, Runbook

RUNBOOKS = Path(__file__).parent / "runbooks"


def load(name: str) -> Runbook:
    return parse_runbook((RUNBOOKS / name).read_bytes())


def playbook(runbook: Runbook, number: int) -> Playbook:
    (found,) = [p for p in runbook.playbooks if p.number == number]
    return found


def summary(command: Command) -> tuple[str, str, str | None, list[str]]:
    return (command.text, command.kind, command.executor, command.parameters)


def error_of(source: str | bytes) -> RunbookError:
    with pytest.raises(RunbookError) as info:
        parse_runbook(source)
    return info.value


def minimal(steps_body: str, diagnosis: str = "") -> Playbook:
    """A one-playbook runbook around the given Diagnosis and Steps Markdown."""
    text = "# R\n\n## 1. Something Broke\n\n"
    if diagnosis:
        text += f"### Diagnosis\n\n{diagnosis}\n\n"
    text += f"### Steps\n\n{steps_body}\n"
    return parse_runbook(text).playbooks[0]


@pytest.fixture(scope="module")
def kafka() -> Runbook:
    return load("kafka.md")


@pytest.fixture(scope="module")
def postgres() -> Runbook:
    return load("postgres.md")


@pytest.fixture(scope="module")
def edge() -> Runbook:
    return load("edge.md")


@pytest.fixture(scope="module")
def search() -> Runbook:
    return load("search_tabs.md")


@pytest.fixture(scope="module")
def sparse() -> Runbook:
    return load("sparse.md")


@pytest.fixture(scope="module")
def quirks() -> Runbook:
    return load("quirks.md")


# --- Kafka / RabbitMQ: other services, headings and severities --------------------------


def test_kafka_runbook_reads_title_version_and_drops_the_contents_list(kafka):
    assert kafka.title == "Streaming Platform Runbook"
    assert kafka.version == "2.3.1"
    assert kafka.sections == []
    assert kafka.warnings == []
    assert [(p.number, p.title, p.slug, p.line) for p in kafka.playbooks] == [
        (1, "Kafka Consumer Lag", "kafka-consumer-lag", 16),
        (
            2,
            "Broker Under-Replicated Partitions",
            "broker-under-replicated-partitions",
            78,
        ),
        (3, "RabbitMQ Queue Backlog", "rabbitmq-queue-backlog", 102),
    ]


def test_high_severity_with_unicode_arrow_escalates_to_opsgenie(kafka):
    lag = playbook(kafka, 1)
    assert lag.alerts == ["KafkaConsumerLagHigh"]
    assert (
        lag.alert_condition
        == "`KafkaConsumerLagHigh` — lag > 100k messages for 10 minutes"
    )
    assert (lag.severity, lag.severity_note, lag.escalation) == (
        "high",
        "",
        ["Opsgenie"],
    )


def test_p1_severity_with_ascii_arrow_escalates_to_pagerduty_and_a_channel(kafka):
    broker = playbook(kafka, 2)
    assert broker.alerts == ["KafkaUnderReplicatedPartitions"]
    # Normalised to the console's level; what the runbook wrote is kept.
    assert (broker.severity, broker.severity_text) == ("critical", "P1")
    assert broker.escalation == ["PagerDuty", "#ops-channel"]


def test_severity_parenthesis_is_a_note_and_plus_separates_targets(kafka):
    rabbit = playbook(kafka, 3)
    assert rabbit.alerts == ["RabbitmqQueueBacklog"]
    assert rabbit.severity == "warning"
    assert rabbit.severity_note == "business hours only"
    assert rabbit.escalation == ["Slack", "Email"]


def test_impact_symptoms_and_unknown_headings_are_kept_as_context_in_order(kafka):
    lag = playbook(kafka, 1)
    assert [(s.title, s.line) for s in lag.context] == [
        ("Overview", 18),
        ("Impact", 23),
        ("Symptoms", 28),
        ("Background", 33),
        ("Rollback", 72),
    ]
    by_title = {s.title: s.markdown for s in lag.context}
    assert by_title["Overview"] == "Consumers of the `orders` topic fall behind."
    assert by_title["Impact"] == (
        "- Order confirmations are delayed\n- Downstream analytics are stale"
    )
    assert by_title["Background"] == (
        "The `orders-consumer` group has 12 partitions and runs 6 pods."
    )
    assert by_title["Rollback"].startswith("Scale back with `kubectl scale")


def test_immediate_steps_heading_with_a_parenthesis_holds_the_steps(kafka):
    lag = playbook(kafka, 1)
    assert [(s.number, s.title, s.line) for s in lag.steps] == [
        (1, "Check the consumer pods", 54),
        (2, "Scale out the consumers", 59),
        (3, "Check the brokers are healthy", 64),
        (4, "Pause the producer", 66),
    ]
    assert lag.steps[1].body.startswith(
        "— no more pods than partitions (12):\n```zsh\n"
    )


def test_sh_shell_and_zsh_fences_are_reported_as_bash(kafka):
    lag = playbook(kafka, 1)
    assert lag.diagnosis_commands[0].language == "bash"  # ```sh
    assert [c.language for s in lag.steps for c in s.commands] == [
        "bash",
        "bash",
        "bash",
    ]
    assert [summary(c) for c in lag.steps[0].commands] == [
        ("kubectl get pods -l app=orders-consumer -o wide", "probe", "kubectl", []),
    ]
    assert [summary(c) for c in lag.steps[1].commands] == [
        ("kubectl scale deploy/orders-consumer --replicas=12", "manual", None, []),
    ]


def test_console_fence_keeps_only_prompt_lines(kafka):
    commands = playbook(kafka, 1).diagnosis_commands
    assert [(c.text, c.line) for c in commands] == [
        (
            'kafka-consumer-groups.sh --bootstrap-server "${KAFKA_BROKERS}" '
            "--describe --group orders-consumer",
            40,
        ),
        ("kubectl get pods -l app=orders-consumer", 44),
        ("kubectl top pods -l app=orders-consumer", 47),
    ]
    assert commands[0].variables == ["KAFKA_BROKERS"]
    # `kubectl get` and `top` are probes of the kubectl family; the Kafka tool is not
    # a family's, so it stays manual.
    assert [(c.kind, c.executor) for c in commands] == [
        ("manual", None),
        ("probe", "kubectl"),
        ("probe", "kubectl"),
    ]
    assert commands[1].after == (
        "NAME                     READY   STATUS    RESTARTS\n"
        "orders-consumer-7d9f-1   1/1     Running   0"
    )
    assert commands[2].after == (
        "NAME                     CPU(cores)   MEMORY(bytes)\n"
        "orders-consumer-7d9f-1   950m         1020Mi"
    )


def test_untagged_fence_with_an_unknown_program_is_copyable_text(kafka):
    (command,) = playbook(kafka, 2).diagnosis_commands
    assert command.language == "text"
    assert command.text == (
        'kafka-topics.sh --bootstrap-server "${KAFKA_BROKERS}" '
        "--describe --under-replicated-partitions"
    )
    assert (command.kind, command.executor, command.line) == ("manual", None, 86)


def test_section_sign_and_anchor_links_become_step_links(kafka):
    assert [s.links for s in playbook(kafka, 1).steps] == [[], [], [2], []]
    assert [s.links for s in playbook(kafka, 2).steps] == [[], [], [1]]


def test_curl_post_with_a_bearer_variable_is_an_http_action_without_parameters(kafka):
    (pause,) = playbook(kafka, 1).steps[3].commands
    assert pause.text == (
        "curl -X POST https://stream.example.org/admin/producers/orders/pause \\\n"
        '  -H "Authorization: Bearer ${STREAM_TOKEN}"'
    )
    assert (pause.kind, pause.executor, pause.parameters) == ("action", "http", [])
    assert pause.variables == ["STREAM_TOKEN"]
    assert pause.spec["method"] == "POST"
    assert pause.spec["headers"] == {"Authorization": "Bearer ${STREAM_TOKEN}"}


def test_inline_kubectl_in_step_text_is_a_manual_command(kafka):
    step = playbook(kafka, 2).steps[1]
    assert step.title == "Restart the broker pod"
    assert [(c.text, c.kind, c.executor, c.block, c.line) for c in step.commands] == [
        ("kubectl delete pod kafka-2", "manual", None, None, 96),
    ]


def test_brace_parameter_is_typed_but_basic_auth_variables_are_not(kafka):
    inspect, purge = (s.commands[0] for s in playbook(kafka, 3).steps)
    assert summary(inspect)[1:] == ("probe", "http", ["queue"])
    assert inspect.variables == ["RABBIT_USER", "RABBIT_PASS"]
    assert inspect.spec["basic_auth"] == "${RABBIT_USER}:${RABBIT_PASS}"
    assert summary(purge)[1:] == ("action", "http", ["queue"])
    assert purge.spec["method"] == "DELETE"
    assert (
        purge.spec["url"]
        == "https://rabbit.example.org/api/queues/%2F/{queue}/contents"
    )


# --- PostgreSQL: SQL splitting and probe/action -----------------------------------------


def test_postgres_runbook_header_fields_and_version(postgres):
    assert postgres.version == "4.0"
    lag = playbook(postgres, 1)
    assert lag.severity == "critical"
    assert lag.escalation == ["PagerDuty", "DBA on-call"]
    assert len(lag.steps) == 7
    assert postgres.warnings == []


def test_postgresql_fence_is_sql_and_plain_explain_is_a_probe(postgres):
    first, second = playbook(postgres, 1).diagnosis_commands[:2]
    assert (first.language, second.language) == ("sql", "sql")
    assert summary(first) == (
        "SELECT client_addr, state, replay_lag FROM pg_stat_replication;",
        "probe",
        "sql",
        [],
    )
    assert summary(second) == (
        "EXPLAIN SELECT * FROM orders WHERE id = 1;",
        "probe",
        "sql",
        [],
    )
    assert second.variables == ["DATABASE_URL"]


def test_sql_block_splits_statements_and_keeps_comments_as_context(postgres):
    commands = playbook(postgres, 1).diagnosis_commands[2:]
    assert [(c.text, c.line) for c in commands] == [
        (
            "SELECT pid, wait_event FROM pg_stat_activity WHERE wait_event_type = 'Lock';",
            19,
        ),
        ("SELECT pg_last_wal_replay_lsn();", 22),
        (
            "SELECT 'a;b' AS semi, $$it's; fine$$ AS dollars, $fn$ x; y $fn$ AS tagged;",
            23,
        ),
    ]
    assert (commands[0].context, commands[0].comment) == (
        "rows waiting on locks",
        "the blockers",
    )
    assert commands[1].context == "the replay position:\ncompare it with the primary"
    assert [c.kind for c in commands] == ["probe", "probe", "probe"]


def test_explain_analyze_is_an_action_with_a_positional_parameter(postgres):
    (command,) = playbook(postgres, 1).steps[0].commands
    assert summary(command) == (
        "EXPLAIN ANALYZE SELECT * FROM orders WHERE customer_id = $1;",
        "action",
        "sql",
        ["$1"],
    )
    assert command.spec["parameter_hints"] == {"$1": "customer_id"}


def test_pg_terminate_backend_over_pg_stat_activity_is_an_action_and_pid_is_a_column(
    postgres,
):
    (command,) = playbook(postgres, 1).steps[1].commands
    assert command.text.startswith(
        "SELECT pg_terminate_backend(pid)\nFROM pg_stat_activity\n"
    )
    assert (command.kind, command.executor, command.parameters) == ("action", "sql", [])


def test_pg_cancel_backend_without_from_asks_for_the_pid(postgres):
    (command,) = playbook(postgres, 1).steps[2].commands
    assert summary(command) == (
        "SELECT pg_cancel_backend(pid);",
        "action",
        "sql",
        ["pid"],
    )


def test_with_select_is_a_probe_and_with_delete_is_an_action(postgres):
    (count,) = playbook(postgres, 1).steps[3].commands
    (delete,) = playbook(postgres, 1).steps[4].commands
    assert count.text.endswith("SELECT count(*) FROM old;")
    assert (count.kind, count.executor) == ("probe", "sql")
    assert delete.text.endswith("DELETE FROM events WHERE id IN (SELECT id FROM old);")
    assert (delete.kind, delete.executor) == ("action", "sql")


def test_multiline_psql_command_targets_its_own_variable(postgres):
    (command,) = playbook(postgres, 1).steps[5].commands
    assert command.language == "bash"
    assert command.text == (
        'psql "${DB_URL}" -c "\nSELECT now() - pg_last_xact_replay_timestamp() AS lag;"'
    )
    assert (command.kind, command.executor, command.parameters) == ("probe", "sql", [])
    assert command.variables == ["DB_URL"]
    assert command.spec["target"] == "DB_URL"
    assert (
        command.spec["sql"] == "SELECT now() - pg_last_xact_replay_timestamp() AS lag;"
    )


def test_dollar_quoted_function_body_is_one_statement(postgres):
    function, update = playbook(postgres, 1).steps[6].commands
    assert function.text.startswith("CREATE OR REPLACE FUNCTION audit()")
    assert function.text.endswith("$body$ LANGUAGE plpgsql;")
    assert "INSERT INTO audit_log VALUES (now(), 'x;y');" in function.text
    assert (function.kind, function.line) == ("action", 70)
    assert summary(update) == (
        "UPDATE settings SET value = 'on; really' WHERE key = 'audit';",
        "action",
        "sql",
        [],
    )
    assert update.line == 76


def test_migrate_version_is_a_probe_and_goto_is_an_action(postgres):
    version, goto, vacuum = (s.commands[0] for s in playbook(postgres, 2).steps)
    assert (version.kind, version.executor) == ("probe", "migrate")
    assert version.spec == {
        "target": "ORDERS_DB_URL",
        "subcommand": "version",
        "path": "db/migrations",
    }
    assert (goto.kind, goto.executor, goto.parameters) == ("action", "migrate", [])
    assert goto.spec["subcommand"] == "goto"
    assert goto.spec["argument"] == "7"
    assert goto.variables == ["ORDERS_DB_URL"]
    assert summary(vacuum) == ("VACUUM ANALYZE orders;", "action", "sql", [])
    assert vacuum.spec["transaction"] is False
    assert vacuum.block is None


def test_escape_string_with_backslash_quote_is_one_statement():
    playbook_ = minimal(
        "1. x", diagnosis="```sql\nSELECT E'it\\'s; x';\nSELECT 2;\n```"
    )
    assert [c.text for c in playbook_.diagnosis_commands] == [
        "SELECT E'it\\'s; x';",
        "SELECT 2;",
    ]


# --- Nginx / edge: HTTP, redis, s3 and inline commands ----------------------------------


def test_curl_head_and_get_with_brace_parameter_are_probes(edge):
    head, get = playbook(edge, 1).diagnosis_commands[:2]
    assert summary(head) == (
        "curl -I https://edge.example.net/healthz",
        "probe",
        "http",
        [],
    )
    assert head.spec["method"] == "HEAD"
    assert summary(get)[1:] == ("probe", "http", ["upstream"])
    assert get.spec["method"] == "GET"


def test_redis_cli_piped_to_grep_becomes_a_filtered_probe(edge):
    command = playbook(edge, 1).diagnosis_commands[2]
    assert (command.kind, command.executor, command.parameters) == (
        "probe",
        "redis",
        [],
    )
    assert command.spec["command"] == "INFO"
    assert command.spec["target"] == "EDGE_REDIS_URL"
    assert command.spec["filter"] == {
        "pattern": "rejected_connections",
        "ignore_case": False,
        "invert": False,
        "regex": False,
    }


def test_docker_compose_exec_redis_cli_is_unwrapped(edge):
    command = playbook(edge, 1).diagnosis_commands[3]
    assert summary(command) == (
        "docker compose exec redis redis-cli info",
        "probe",
        "redis",
        [],
    )
    assert command.spec == {"target": "REDIS_URL", "command": "INFO", "args": ["info"]}


def test_variables_in_headers_are_never_parameters(edge):
    (command,) = playbook(edge, 1).steps[0].commands
    assert (command.kind, command.executor) == ("probe", "http")
    assert command.parameters == ["userId"]
    assert command.variables == ["EDGE_TOKEN"]


def test_inline_http_delete_with_colon_parameter_is_an_action(edge):
    step = playbook(edge, 1).steps[1]
    assert step.title == "Evict one cached route"
    (command,) = step.commands
    assert summary(command) == ("DELETE /admin/cache/:key", "action", "http", ["key"])
    assert command.block is None
    assert command.spec["url"] == "https://edge.example.net/admin/cache/:key"


def test_comment_only_http_line_is_a_command_before_its_curl_twin(edge):
    comment_line, curl = playbook(edge, 1).steps[2].commands
    assert summary(comment_line) == (
        'POST /admin/flush {"all": true}',
        "action",
        "http",
        [],
    )
    assert comment_line.spec["body"] == '{"all": true}'
    assert comment_line.line == 29
    assert curl.context == "the same request with curl:"
    assert (curl.kind, curl.executor, curl.line) == ("action", "http", 31)
    assert curl.spec["body"] == '{"all": true}'


def test_inline_code_that_is_only_a_name_is_not_a_command(edge):
    step = playbook(edge, 1).steps[3]
    assert step.title == "Restart the API deployment"
    assert [summary(c) for c in step.commands] == [
        ("kubectl rollout restart deploy/api", "manual", None, []),
    ]


def test_aws_head_bucket_and_s3_ls_are_s3_probes(edge):
    step = playbook(edge, 1).steps[4]
    assert step.links == [2]
    head, listing = step.commands
    assert (head.kind, head.executor) == ("probe", "s3")
    assert head.spec == {"operation": "head_bucket", "bucket": "edge-certs"}
    assert (listing.kind, listing.executor) == ("probe", "s3")
    assert listing.spec == {
        "operation": "list",
        "bucket": "edge-certs",
        "prefix": "live/",
    }


def test_colon_path_parameter_in_a_quoted_curl_url(edge):
    (command,) = playbook(edge, 1).steps[5].commands
    assert (command.kind, command.executor) == ("action", "http")
    assert command.parameters == ["clientId"]
    assert command.variables == ["EDGE_TOKEN"]


def test_openssl_and_certbot_are_manual_and_bare_anchor_link_is_followed(edge):
    tls = playbook(edge, 2)
    assert (tls.severity, tls.severity_note, tls.escalation) == (
        "warning",
        "#edge",
        ["Slack"],
    )
    assert [c.kind for s in tls.steps for c in s.commands] == ["manual", "manual"]
    assert [s.links for s in tls.steps] == [[], [], [1]]
    assert edge.warnings == []


# --- Elasticsearch: TAB indentation, CRLF line endings and a BOM ------------------------


def test_tab_indented_list_items_keep_their_code_blocks(search):
    red = playbook(search, 1)
    assert [(s.number, s.title, s.line) for s in red.steps] == [
        (1, "Check cluster health", 16),
        (2, "Find unassigned shards", 21),
        (3, "Retry failed allocations", 30),
        (4, "Close the broken index", 35),
    ]
    assert [summary(c) for c in red.steps[0].commands] == [
        ("curl -s https://search.example.com/_cluster/health", "probe", "http", []),
    ]
    assert red.steps[0].commands[0].line == 18
    assert red.steps[3].links == [2]
    assert red.steps[3].commands == []  # `{index}` in prose is not a command


def test_tab_indented_nested_bullets_and_sql_belong_to_their_step(search):
    step = playbook(search, 1).steps[1]
    assert step.body.startswith(
        "- look at the `reason` column\n- ignore replicas of closed indices\n```sql"
    )
    (command,) = step.commands
    assert summary(command) == (
        "SELECT index, shard\nFROM shards\nWHERE state = 'UNASSIGNED';",
        "probe",
        "sql",
        [],
    )
    assert command.line == 25


def test_tab_indented_disk_commands_are_two_probes(search):
    df, du = playbook(search, 2).steps[0].commands
    assert (df.text, df.executor, df.spec["paths"]) == (
        "df -h /var/lib/elasticsearch",
        "disk",
        ["/var/lib/elasticsearch"],
    )
    assert (du.text, du.executor, du.spec["paths"]) == (
        "du -sh /var/lib/elasticsearch/nodes",
        "disk",
        ["/var/lib/elasticsearch/nodes"],
    )
    (delete,) = playbook(search, 2).steps[1].commands
    assert summary(delete)[1:] == ("action", "http", ["date"])


def test_crlf_line_endings_and_a_bom_parse_exactly_like_lf(search):
    raw = (RUNBOOKS / "search_tabs.md").read_bytes()
    assert b"\r" not in raw and b"\t" in raw
    windows = b"\xef\xbb\xbf" + raw.replace(b"\n", b"\r\n")
    parsed = parse_runbook(windows)
    assert parsed.sha256 == hashlib.sha256(windows).hexdigest()
    assert parsed.sha256 != search.sha256
    assert parsed.title == "Search Cluster Runbook"  # no BOM in the title
    assert parsed.to_contract()["playbooks"] == search.to_contract()["playbooks"]
    for mine, theirs in zip(parsed.playbooks, search.playbooks, strict=True):
        assert [(s.line, s.body) for s in mine.steps] == [
            (s.line, s.body) for s in theirs.steps
        ]
        assert [c.line for c in mine.commands] == [c.line for c in theirs.commands]
    assert not any("\r" in c.text for p in parsed.playbooks for c in p.commands)


def test_crlf_text_given_as_str_keeps_line_numbers():
    text = (
        "# R\r\n\r\n## 7. Queue Full\r\n\r\n**Severity:** High -> Opsgenie\r\n\r\n"
        "### Steps\r\n\r\n1. **Drain**\r\n   ```bash\r\n   redis-cli llen jobs\r\n   ```\r\n"
    )
    (full,) = parse_runbook(text).playbooks
    assert (full.number, full.line, full.severity, full.escalation) == (
        7,
        3,
        "high",
        ["Opsgenie"],
    )
    (command,) = full.steps[0].commands
    assert (command.text, command.kind, command.executor, command.line) == (
        "redis-cli llen jobs",
        "probe",
        "redis",
        11,
    )


# --- Missing sections and heading styles ------------------------------------------------


def test_other_numbered_heading_styles_are_playbooks(sparse):
    assert [(p.number, p.title, p.anchor) for p in sparse.playbooks] == [
        (1, "Invoice Job Failed", "1-invoice-job-failed"),
        (2, "Payment Webhook Errors", "2---payment-webhook-errors"),
        (3, "Ledger Drift", "3-ledger-drift"),
    ]
    assert [(s.title, s.markdown) for s in sparse.sections] == [
        ("Appendix: Contacts", "- Finance on-call: +1 555 0100"),
    ]
    assert sparse.preamble == "Short playbooks; some sections are missing on purpose."


def test_playbook_with_only_a_severity_line_and_no_diagnosis(sparse):
    invoice = playbook(sparse, 1)
    assert (invoice.alerts, invoice.alert_condition) == ([], "")
    assert (invoice.severity, invoice.escalation) == ("warning", [])
    assert invoice.severity_text.lower() == "medium"
    assert (invoice.diagnosis, invoice.diagnosis_commands) == ("", [])
    assert invoice.context == []


def test_repeated_one_paren_numbering_is_two_steps(sparse):
    steps = playbook(sparse, 1).steps
    assert [(s.number, s.title) for s in steps] == [
        (1, "Re-run the job"),
        (2, "Tell the finance channel"),
    ]
    assert [c.kind for c in steps[0].commands] == ["manual"]


def test_playbook_without_alert_or_severity_keeps_its_text_as_overview(sparse):
    webhook = playbook(sparse, 2)
    assert (webhook.alerts, webhook.severity, webhook.escalation) == ([], "", [])
    assert [(s.title, s.markdown) for s in webhook.context] == [
        ("Overview", "Stripe retries webhooks for three days, so nothing is lost yet."),
    ]


def test_unindented_paragraph_between_steps_joins_the_previous_step(sparse):
    first, second = playbook(sparse, 2).steps
    assert first.title == "Check the webhook endpoint"
    assert first.body.endswith("```\n\nNote: the endpoint needs no token.")
    assert second.title == "Replay the failed events from the Stripe dashboard"
    assert (second.number, second.line) == (2, 30)


def test_untagged_fence_with_curl_is_guessed_as_bash(sparse):
    (command,) = playbook(sparse, 2).steps[0].commands
    assert command.language == "bash"
    assert summary(command) == (
        "curl -I https://billing.example.com/webhooks/stripe",
        "probe",
        "http",
        [],
    )


def test_playbook_without_steps_parses_with_zero_steps_and_a_warning(sparse):
    drift = playbook(sparse, 3)
    assert drift.steps == []
    assert sparse.warnings == ["line 32: playbook 3 has no 'Steps' section"]
    assert (drift.severity, drift.escalation) == ("info", [])
    assert [c.kind for c in drift.diagnosis_commands] == ["probe"]
    assert [(s.title, s.line) for s in drift.context] == [("Background", 43)]


# --- Quirks: setext title, level-3 playbooks, bullet fields -----------------------------


def test_setext_title_and_level_three_playbooks_under_group_headings(quirks):
    assert quirks.title == "Cache & Coordination Runbook"
    assert quirks.version == "0.9-beta"
    assert [(p.number, p.title, p.slug) for p in quirks.playbooks] == [
        (1, "`etcd` Quorum Lost", "etcd-quorum-lost"),
        (2, "Memcached Evictions", "memcached-evictions"),
    ]
    assert [s.title for s in quirks.sections] == [
        "Queue playbooks",
        "Cache playbooks",
        "Design notes",
    ]


def test_bulleted_fields_with_colon_outside_bold_and_escalation_line(quirks):
    etcd = playbook(quirks, 1)
    assert etcd.alerts == ["EtcdNoLeader"]
    assert etcd.alert_condition == "EtcdNoLeader (no leader for 1 minute)"
    assert (etcd.severity, etcd.severity_text) == ("warning", "P2")
    assert etcd.escalation == ["Opsgenie", "SRE lead", "CTO"]
    assert etcd.context == []


def test_diagnostics_and_steps_colon_headings_are_recognised(quirks):
    etcd = playbook(quirks, 1)
    assert [c.text for c in etcd.diagnosis_commands] == [
        "etcdctl endpoint status --cluster -w table"
    ]
    assert [s.title for s in etcd.steps] == [
        "Check members",
        "Remove the dead member",
        "Read the design notes",
    ]
    assert [summary(c) for c in etcd.steps[0].commands] == [
        ("kubectl exec etcd-0 -- etcdctl member list", "manual", None, []),
    ]


def test_links_are_deduplicated_and_self_and_non_playbook_links_are_dropped(quirks):
    etcd = playbook(quirks, 1)
    assert [s.links for s in etcd.steps] == [[], [2], []]


def test_reference_to_a_missing_playbook_is_a_warning_not_a_link(quirks):
    assert playbook(quirks, 2).steps[2].links == []
    assert quirks.warnings == ["line 41: reference to §7, but there is no playbook 7"]


def test_several_alert_names_in_code_spans(quirks):
    cache = playbook(quirks, 2)
    assert cache.alerts == ["MemcachedEvictions", "MemcachedHitRateLow"]
    assert cache.escalation == ["Slack"]


def test_inline_redis_del_with_key_is_an_action_and_its_target_is_a_variable(quirks):
    step = playbook(quirks, 2).steps[0]
    inline, block = step.commands
    assert summary(inline) == (
        'redis-cli -u "${CACHE_URL}" DEL {key}',
        "action",
        "redis",
        ["key"],
    )
    assert inline.variables == ["CACHE_URL"]
    assert (block.text, block.kind, block.block) == (
        "echo stats | nc cache.internal 11211",
        "manual",
        0,
    )


def test_inline_http_method_takes_the_json_span_that_follows_as_body(quirks):
    (command,) = playbook(quirks, 2).steps[1].commands
    assert summary(command) == (
        'POST /internal/cache/warm {"scope": "hot"}',
        "action",
        "http",
        [],
    )
    assert command.spec["body"] == '{"scope": "hot"}'


def test_struck_through_severity_is_replaced_by_the_new_one(quirks):
    assert playbook(quirks, 2).severity == "warning"


# --- Fences with prompts ----------------------------------------------------------------


def test_console_fence_joins_continuations_and_keeps_output_as_after():
    fence = (
        "```console\n$ curl -s https://a.example/x \\\n    -H 'A: b'\n"
        '{"ok": true}\n$ redis-cli -u "${R}" llen q\n(integer) 4\n```'
    )
    first, second = minimal("1. x", diagnosis=fence).diagnosis_commands
    assert (first.text, first.kind, first.executor, first.after) == (
        "curl -s https://a.example/x \\\n    -H 'A: b'",
        "probe",
        "http",
        '{"ok": true}',
    )
    assert (second.text, second.kind, second.variables, second.after) == (
        'redis-cli -u "${R}" llen q',
        "probe",
        ["R"],
        "(integer) 4",
    )


def test_untagged_fence_with_prompts_is_read_as_a_console_session():
    commands = minimal(
        "1. x", diagnosis="```\n$ redis-cli ping\nPONG\n```"
    ).diagnosis_commands
    assert [(c.text, c.kind, c.executor, c.after) for c in commands] == [
        ("redis-cli ping", "probe", "redis", "PONG"),
    ]


# --- Malformed input --------------------------------------------------------------------


def test_bytes_with_a_nul_are_not_markdown():
    error = error_of(b"# Runbook\n\n## 1. Disk Full\n\x00\x01binary\n")
    assert error.line == 4
    assert "NUL" in error.message


def test_invalid_utf8_names_the_line_and_byte():
    error = error_of("# Runbook\n## 1. Caf\u00e9 Down\n".encode("latin-1"))
    assert error.line == 2
    assert "0xe9" in error.message


def test_markdown_without_numbered_headings_is_not_a_runbook():
    error = error_of("Intro text\n\n## Overview\n\nHello\n\n## Deploying\n\n1. build\n")
    assert isinstance(error, NotARunbook)
    assert error.line == 3
    assert error.message.startswith("not a runbook: no numbered playbooks")


def test_steps_heading_followed_by_only_a_paragraph_is_an_error():
    error = error_of("# R\n\n## 1. Api Down\n\n### Steps\n\nJust restart it.\n")
    assert error.line == 5
    assert "has no list" in error.message


def test_steps_heading_followed_by_a_bullet_list_is_an_error():
    error = error_of("# R\n\n## 1. Api Down\n\n### Steps\n\n- restart\n- verify\n")
    assert error.line == 5
    assert "has a bullet list" in error.message


def test_step_numbering_that_restarts_after_unindented_content_is_an_error():
    text = "# R\n\n## 1. Api Down\n\n### Steps\n\n1. one\n2. two\n\n```bash\nls\n```\n\n1. again\n"
    error = error_of(text)
    assert error.line == 14
    assert error.message.startswith(
        "step numbering goes from 2 back to 1 in playbook 1"
    )


def test_unclosed_code_fence_without_final_newline_is_an_error():
    error = error_of(
        "# R\n\n## 1. Api Down\n\n### Diagnosis\n\n```bash\ncurl https://a.example/"
    )
    assert error.line == 7
    assert "never closed" in error.message


def test_unclosed_code_fence_at_end_of_a_normal_file_is_an_error():
    with pytest.raises(RunbookError) as info:
        parse_runbook(
            "# R\n\n## 1. Api Down\n\n### Steps\n\n1. x\n\n```bash\ncurl https://a.b/c\n"
        )
    assert info.value.line == 9


def test_unclosed_code_fence_inside_the_last_step_is_an_error():
    with pytest.raises(RunbookError) as info:
        parse_runbook(
            "# R\n\n## 1. Api Down\n\n### Steps\n\n1. x\n   ```bash\n   curl x\n"
        )
    assert info.value.line == 8


def test_duplicate_playbook_numbers_are_an_error_at_the_second_heading():
    text = "# R\n\n## 1. Api Down\n\n### Steps\n\n1. x\n\n## 1. Db Down\n\n### Steps\n\n1. y\n"
    error = error_of(text)
    assert (error.line, error.message) == (9, "playbook number 1 is used twice")


def test_two_titles_with_the_same_slug_are_an_error():
    text = "# R\n\n## 1. Disk Full\n\n### Steps\n\n1. x\n\n## 2. Disk full!\n\n### Steps\n\n1. y\n"
    error = error_of(text)
    assert error.line == 9
    assert "same title (slug 'disk-full')" in error.message


@pytest.mark.parametrize(
    "source",
    [b"", "", "  \n\n \t\n", b"\xef\xbb\xbf", b"\r\n\r\n"],
    ids=["empty-bytes", "empty-str", "whitespace", "bom-only", "crlf-only"],
)
def test_empty_file_is_an_error_on_line_one(source):
    error = error_of(source)
    assert error.line == 1
    assert error.message.startswith("the file is empty")


def test_empty_step_is_an_error_naming_its_line():
    error = error_of("# R\n\n## 1. Api Down\n\n### Steps\n\n1. x\n2.\n3. z\n")
    assert (error.line, error.message) == (8, "step 2 of playbook 1 is empty")


def test_text_with_a_lone_surrogate_names_its_line():
    error = error_of("# R\n\n## 1. Broken \ud800 title\n")
    assert error.line == 3
    assert "U+D800" in error.message
