"""Command recognition, one command at a time."""

from __future__ import annotations

import pytest

from probes.families.sql.recognise import sql_is_read_only
from probes.recognise import recognise, recognise_inline
from probes.shell import split_shell, split_sql


@pytest.mark.parametrize(
    ("text", "kind", "executor", "parameters"),
    [
        ('curl -s "${ES_URL}/_cluster/health"', "probe", "http", []),
        (
            "curl -X DELETE https://api.example.com/v1/jobs/{jobId}",
            "action",
            "http",
            ["jobId"],
        ),
        (
            "curl -d '{}' https://api.example.com/v1/things/:id",
            "action",
            "http",
            ["id"],
        ),
        ("curl -G -d 'q=1' https://api.example.com/search", "probe", "http", []),
        ("curl -F file=@dump.sql https://api.example.com/upload", "manual", None, []),
        (
            "openssl s_client -starttls smtp -connect smtp.example.com:587",
            "probe",
            "smtp",
            [],
        ),
        ("swaks --server smtp.example.com:25 --quit-after EHLO", "probe", "smtp", []),
        ("openssl genrsa -out key.pem 2048", "manual", None, []),
        (
            "redis-cli -h cache.internal DEL session:{userId}",
            "action",
            "redis",
            ["userId"],
        ),
        ("redis-cli", "manual", None, []),
        ('psql "${DATABASE_URL}"', "manual", None, []),
        ("psql -f fix.sql", "manual", None, []),
        ("sudo du -sh /var/log", "probe", "disk", []),
        ("kubectl -n api rollout restart deploy/api", "manual", None, []),
        ("docker compose exec -T redis redis-cli --bigkeys", "probe", "redis", []),
        ("migrate -database ${DATABASE_URL} -path m drop -f", "action", "migrate", []),
        ("curl https://a.example.com | jq .status", "manual", None, []),
    ],
)
def test_shell_commands_are_recognised(text, kind, executor, parameters):
    binding = recognise(text, "bash")
    assert (binding.kind, binding.executor, binding.parameters) == (
        kind,
        executor,
        parameters,
    )


def test_a_variable_base_url_is_a_target_variable_not_a_host():
    binding = recognise('curl -s "${ES_URL}/_cluster/health"', "bash")
    assert binding.spec["base_variable"] == "ES_URL"
    assert binding.variables == ["ES_URL"]
    assert "host" not in binding.spec


def test_psql_target_comes_from_its_connection_variable():
    binding = recognise('psql "${REPLICA_URL}" -c "SELECT now();"', "bash")
    assert binding.spec["target"] == "REPLICA_URL"
    assert binding.variables == ["REPLICA_URL"]


@pytest.mark.parametrize(
    ("sql", "read_only"),
    [
        ("SELECT 1;", True),
        ("select * from t for update;", False),
        ("SELECT * INTO backup FROM t;", False),
        ("EXPLAIN SELECT 1;", True),
        ("EXPLAIN (ANALYZE, BUFFERS) SELECT 1;", False),
        ("SHOW work_mem;", True),
        ("WITH x AS (SELECT 1) SELECT * FROM x;", True),
        ("WITH gone AS (DELETE FROM t RETURNING *) SELECT count(*) FROM gone;", False),
        ("SELECT set_config('a.b', '1', false);", False),
        ("SELECT 'pg_terminate_backend(1)' AS harmless;", True),
        ("VACUUM t;", False),
    ],
)
def test_sql_read_only_detection(sql, read_only):
    assert sql_is_read_only(sql) is read_only


def test_inline_code_that_is_only_a_name_is_not_a_command():
    for name in [
        "EXPLAIN ANALYZE",
        "INFO memory",
        "rows.Close()",
        "/health/ready",
        "redis-cli",
    ]:
        assert recognise_inline(name) is None
    assert recognise_inline("flyctl restart").kind == "manual"
    assert recognise_inline("VACUUM ANALYZE users;").executor == "sql"


def test_shell_split_joins_continuations_quotes_and_heredocs():
    code = (
        "curl -X POST https://a.example.com \\\n  -H 'X: y'\n"
        'psql -c "\nSELECT 1;\n"\n'
        "psql <<SQL\nSELECT 2;\nSQL\n"
        "echo done   # finished\n"
    )
    pieces = split_shell(code).pieces
    assert [p.line for p in pieces] == [0, 2, 5, 8]
    assert pieces[3].text == "echo done" and pieces[3].comment == "finished"
    heredoc = recognise(pieces[2].text, "bash")
    assert (heredoc.executor, heredoc.spec["sql"]) == ("sql", "SELECT 2;")


def test_sql_split_keeps_dollar_quotes_and_escape_strings_whole():
    code = "DO $$ BEGIN PERFORM 1; END $$;\nSELECT E'it\\'s; fine';\n-- tail\n"
    split = split_sql(code)
    assert [p.text for p in split.pieces] == [
        "DO $$ BEGIN PERFORM 1; END $$;",
        "SELECT E'it\\'s; fine';",
    ]
    assert split.trailing == ["tail"]


@pytest.mark.parametrize(
    ("sql", "read_only"),
    [
        # Comment markers inside a string hide nothing (they used to hide the call).
        ("SELECT '/*', pg_terminate_backend(1), '*/';", False),
        ("SELECT '--', pg_cancel_backend(7);", False),
        # Words inside literals and comments are not keywords.
        ("SELECT 'pg_terminate_backend(1)' AS note;", True),
        ("SELECT 1; -- pg_cancel_backend(1)", True),
        ("SELECT $body$ DELETE FROM t $body$;", True),
        ("SELECT E'it\\'s', 'a''b' /* DROP */;", True),
        # A literal never closed keeps the rest visible: an action, not a probe.
        ("SELECT 'oops, pg_cancel_backend(1);", False),
        ("SELECT $x$ never closed, pg_cancel_backend(1);", False),
    ],
)
def test_literals_and_comments_are_read_as_postgresql_reads_them(sql, read_only):
    assert sql_is_read_only(sql) is read_only


def test_parameter_hints_name_what_a_positional_parameter_is_compared_with():
    binding = recognise(
        "SELECT * FROM users.session WHERE s.userid = $1 AND kind IN ($2);", "sql"
    )
    assert binding.parameters == ["$1", "$2"]
    assert binding.spec["parameter_hints"] == {"$1": "userid", "$2": "kind"}


def test_a_long_word_or_run_of_spaces_in_sql_still_binds_its_parameters():
    word = "a" * 20_000
    binding = recognise(f"SELECT {word} FROM t WHERE id =   $1;", "sql")
    assert binding.spec["parameter_hints"] == {"$1": "id"}
    spaces = " " * 20_000
    binding = recognise(f"SELECT pg_cancel_backend({spaces}pid{spaces});", "sql")
    assert (binding.kind, binding.parameters) == ("action", ["pid"])


def test_a_psql_heredoc_body_is_the_sql_between_its_tags():
    text = "psql ${DATABASE_URL} <<'EOF'\nSELECT 1;\n\n\nSELECT 2;\n  EOF  "
    binding = recognise(text, "bash")
    assert (binding.kind, binding.executor) == ("probe", "sql")
    assert binding.spec["sql"] == "SELECT 1;\n\n\nSELECT 2;"
    assert recognise("psql <<EOF\nSELECT 1;\nNOT_THE_TAG", "bash").kind == "manual"


def test_a_shell_command_too_long_to_tokenise_is_kept_as_a_manual_command():
    # shlex is quadratic in a token's length: a giant argument is not tokenised.
    text = "curl -d '" + "x" * 70_000 + "' https://api.example.com/v1/things"
    assert recognise(text, "bash").kind == "manual"
    assert recognise(text.replace("x" * 70_000, "x" * 1_000), "bash").kind == "action"


# --- issue 13: OpenShift's oc, redirects, the author's shell variables ------------


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        # `oc` reads the same API with the same verbs as kubectl.
        ("oc get clusterversion -o yaml", "probe"),
        ("oc -n openshift-etcd logs pod/etcd-0 --tail=50", "probe"),
        ("oc describe co etcd", "probe"),
        # Its own verbs, and kubectl's writing verbs, stay with a person.
        ("oc adm upgrade", "manual"),
        ("oc rsh pod/etcd-0", "manual"),
        ("oc delete pod etcd-0", "manual"),
    ],
)
def test_oc_is_read_like_kubectl(text, kind):
    binding = recognise(text, "bash")
    assert binding.kind == kind
    assert binding.executor == ("kubectl" if kind == "probe" else None)


@pytest.mark.parametrize(
    "text",
    [
        # A redirect writes a file a later step reads (`oc apply -f backup.yaml`),
        # or reads one from the author's machine: never run by the console.
        "oc get mco observability -n x -o yaml > mco-backup.yaml",
        "kubectl get pods >/tmp/pods.txt",
        "kubectl logs api-0 2>&1",
        "redis-cli INFO memory > /tmp/info.txt",
        "curl https://api.yomira.app/health/ready > ready.json",
        'psql "${DATABASE_URL}" -c "SELECT 1" > out.txt',
        'psql "${DATABASE_URL}" < dump.sql',
        # `$NODE` is the author's shell variable, `$(...)` a command: the console
        # cannot know their values.
        "kubectl get node $NODE -o yaml",
        "kubectl -n $NAMESPACE logs $POD",
        "kubectl -n $CDI_NAMESPACE get deploy -l cdi.kubevirt.io",
        "kubectl get pod $(cat pod-name)",
    ],
)
def test_a_redirect_or_a_shell_variable_leaves_the_command_to_a_person(text):
    binding = recognise(text, "bash")
    assert (binding.kind, binding.executor) == ("manual", None)


def test_a_comparison_inside_quotes_is_not_a_redirect():
    binding = recognise('psql "${DATABASE_URL}" -c "SELECT 1 WHERE 2 > 1"', "bash")
    assert (binding.kind, binding.executor) == ("probe", "sql")
    kube = recognise("kubectl get pods -n ${NAMESPACE}", "bash")  # a target variable
    assert (kube.kind, kube.executor) == ("probe", "kubectl")
