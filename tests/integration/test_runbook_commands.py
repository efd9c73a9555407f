"""Every command the bundled runbook can run, run by a real worker against real
targets, in runbook order. (Manual commands are listed in the README.)"""

from __future__ import annotations

import psycopg
import pytest
from django.contrib.auth.models import Group

from incidents.actors import Actor
from incidents.models import Command, StepExecution
from incidents.services import (
    decide_approval,
    import_runbook,
    open_incident,
    request_run,
)
from probes.commands import confirm_word
from tests.conftest import IMPORTER, YOMIRA_RUNBOOK, grant

from .conftest import wait_for
from .targets import ADMIN_TOKEN, DB_PASSWORD_CANARY

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("worker", "seeded_target"),
]

# (playbook, text starts with) -> (state, what the summary or output must say)
EXPECTED = {
    (1, "curl https://api.yomira.app/health/ready"): ("succeeded", "→ 200 OK"),
    (2, "docker compose exec redis redis-cli --latency"): ("succeeded", "latency min:"),
    (2, 'psql "${DATABASE_URL}" -c "\nSELECT query'): ("failed", "pg_stat_statements"),
    (2, "PUT /admin/settings"): ("succeeded", "→ 200 OK"),
    (2, "curl -X PUT https://api.yomira.app/api/v1/admin/settings"): (
        "succeeded",
        "→ 200 OK",
    ),
    (3, 'psql "${DATABASE_URL}" -c "SELECT 1;"'): ("succeeded", "?column? = 1"),
    (3, "docker compose exec postgres psql"): ("succeeded", "max_connections = "),
    (3, "migrate -database"): ("succeeded", "5 (dirty)"),
    (4, 'redis-cli -u "${REDIS_URL}" ping'): ("succeeded", "PING: PONG"),
    (4, 'redis-cli -u "${REDIS_URL}" info memory'): ("succeeded", "used_memory_human:"),
    (4, 'redis-cli -u "${REDIS_URL}" config set'): ("succeeded", "CONFIG SET: OK"),
    (5, "SELECT count(*), state"): ("succeeded", "rows"),
    (5, "SELECT pid, now() - query_start"): ("succeeded", "row"),
    (5, "SELECT pg_cancel_backend(pid);"): ("succeeded", "pg_cancel_backend = True"),
    (5, "SELECT pg_terminate_backend(pid);"): (
        "succeeded",
        "pg_terminate_backend = True",
    ),
    (5, "curl -X POST https://api.yomira.app/api/v1/admin/crawler/pause"): (
        "succeeded",
        "200",
    ),
    (6, "SELECT id, sourceid"): ("succeeded", "2 rows"),
    (6, "curl -X POST https://api.yomira.app/api/v1/admin/crawler/jobs"): (
        "succeeded",
        "200",
    ),
    (6, "UPDATE crawler.job"): ("succeeded", "UPDATE 2 (2 rows affected)"),
    (6, "SELECT log.level"): ("succeeded", "row"),
    (6, "PATCH /admin/crawler/sources/:id"): (
        "succeeded",
        "PATCH https://api.yomira.app/api/v1/admin/crawler/sources/",
    ),
    (7, "curl -X POST https://api.yomira.app/api/v1/admin/mail/send"): (
        "succeeded",
        "200",
    ),
    (8, 'curl -I "https://cdn.yomira.app/covers/test.webp"'): ("succeeded", "HEAD"),
    (8, "PUT /admin/settings"): ("succeeded", "→ 200 OK"),
    (9, "df -h"): ("succeeded", "fullest filesystem"),
    (9, "du -sh /var/lib/postgresql/data"): ("*", "/var/lib/postgresql/data"),
    (9, "SELECT schemaname, tablename"): ("succeeded", "rows"),
    (9, "DROP TABLE IF EXISTS analytics.pageview_2025_01;"): (
        "succeeded",
        "DROP TABLE",
    ),
    (9, "VACUUM FULL analytics.pageview;"): ("succeeded", "VACUUM"),
    (10, "GET /debug/pprof/goroutine"): ("succeeded", "→ 200 OK"),
    (11, 1, "migrate -database"): ("succeeded", "5 (dirty)"),
    (11, 5, "migrate -database"): ("succeeded", "5"),
    (
        11,
        'migrate -database "${DATABASE_URL}" -path src/common/DML/migrations force 4',
    ): ("succeeded", "forced version 4 (was 5 (dirty))"),
    (11, 'migrate -database "${DATABASE_URL}" -path src/common/DML/migrations up 1'): (
        "succeeded",
        "applied 000005_session_active_index.up.sql",
    ),
    (12, "curl -X POST https://api.yomira.app/api/v1/admin/users/{userId}"): (
        "succeeded",
        "200",
    ),
    (12, "UPDATE users.session SET revokedat"): (
        "succeeded",
        "UPDATE 2 (2 rows affected)",
    ),
    (12, "SELECT * FROM system.auditlog"): ("succeeded", "2 rows"),
}


def expectation(command: Command) -> tuple[str, str]:
    """The most specific entry: (playbook, step, prefix) before (playbook, prefix)."""
    number, step = (
        command.playbook.number,
        command.step.number if command.step else None,
    )
    for key, value in EXPECTED.items():
        if (
            len(key) == 3
            and key[:2] == (number, step)
            and command.text.startswith(key[2])
        ):
            return value
    for key, value in EXPECTED.items():
        if len(key) == 2 and key[0] == number and command.text.startswith(key[1]):
            return value
    raise AssertionError(f"no expectation for §{number} {command.text[:60]!r}")


def sleeping_backend(target_database: str) -> tuple[psycopg.Connection, int]:
    """A real backend to cancel or terminate."""
    conn = psycopg.connect(target_database, autocommit=True)
    pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    return conn, pid


def test_every_runnable_command_of_the_runbook_runs_against_real_targets(
    make_user, target_database, target_redis
):
    cole = make_user("cole", "Commander")
    ana = make_user("ana", "Commander")  # the second pair of eyes
    runbook = import_runbook(source=YOMIRA_RUNBOOK.read_bytes(), actor=IMPORTER).runbook
    grant(Group.objects.get(name="Commander"), "run_actions", "approve_actions")
    commands = list(
        Command.objects.filter(playbook__runbook=runbook)
        .exclude(kind="manual")
        .select_related("playbook", "step")
        .order_by("playbook__number", "position")
    )
    assert len(commands) == 37
    incidents = {}
    victims = []
    seen = []
    for command in commands:
        number = command.playbook.number
        if number not in incidents:
            incidents[number] = open_incident(
                playbook=command.playbook, title=f"§{number}", actor=Actor.person(cole)
            )
        params = {"userId": "u-42", "$1": "u-42", "id": "7"}
        if "pid" in command.parameters:
            conn, pid = sleeping_backend(target_database)
            victims.append(conn)
            params["pid"] = str(pid)
        params = {k: v for k, v in params.items() if k in command.parameters}
        result = request_run(
            incident=incidents[number],
            command=command,
            params=params,
            actor=Actor.person(cole),
            confirmation=confirm_word(command),
        )
        execution = result.execution
        if command.requires_approval:
            assert execution.state == "awaiting_approval", command.text
            decide_approval(execution=execution, approve=True, actor=Actor.person(ana))
        execution = wait_for(execution)
        state, says = expectation(command)
        text = execution.summary + "\n" + execution.output
        where = (
            f"§{number} {command.text[:70]!r}: {execution.state} {execution.summary!r}"
        )
        if state != "*":
            assert execution.state == state, where
        assert says in text, where
        assert ADMIN_TOKEN not in text and DB_PASSWORD_CANARY not in text, where
        seen.append(execution.pk)
    for conn in victims:
        conn.close()
    assert StepExecution.objects.filter(pk__in=seen).count() == 37

    # What the actions changed, seen from the target itself.
    with psycopg.connect(target_database) as conn:
        assert conn.execute(
            "SELECT count(*) FROM crawler.job WHERE status = 'pending'"
        ).fetchone() == (3,)
        revoked = conn.execute(
            "SELECT count(*) FROM users.session WHERE revokedat IS NOT NULL"
        )
        assert revoked.fetchone() == (2,)
        assert conn.execute(
            "SELECT version, dirty FROM schema_migrations"
        ).fetchall() == [(5, False)]
        exists = conn.execute(
            "SELECT to_regclass('analytics.pageview_2025_01')"
        ).fetchone()
        assert exists == (None,)
    assert target_redis.config_get("maxmemory-policy") == {
        "maxmemory-policy": "allkeys-lru"
    }
