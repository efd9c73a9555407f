"""Each fault shows in the runbook's own probe, and the runbook's own action (or,
for a manual step, heal()) really fixes it."""

from __future__ import annotations

import json
import time
import urllib.request

import psycopg
import pytest

from sandbox import faults, holder, process, seed, state

from .helpers import run

STEP_2_SQL = "SELECT pid, now() - query_start"


@pytest.fixture(autouse=True)
def _healthy_after(sandbox_stack):  # noqa: ANN001, ANN202
    yield
    faults.ALL_HEAL(sandbox_stack)


def get(stack, path: str) -> tuple[int, str]:  # noqa: ANN001
    url = f"http://127.0.0.1:{stack.port('api')}{path}"
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_every_fault_of_the_interface_is_registered() -> None:
    assert {
        "api_errors", "api_slow", "database_down", "redis_down",
        "idle_in_transaction", "crawler_stuck", "smtp_broken", "storage_down",
        "disk_full", "memory_leak", "dirty_migration", "token_reuse",
    } <= set(faults.FAULTS)  # fmt: skip


def test_api_errors_show_in_the_health_probe_until_healed(sandbox_stack):  # noqa: ANN001
    faults.inject(sandbox_stack, "api_errors")
    assert "api_errors" in faults.active(sandbox_stack)
    failing = run(1, "curl https://api.yomira.app/health/ready")
    assert not failing.ok and "500" in failing.summary
    assert "panic recovered" in failing.output
    faults.heal(sandbox_stack, "api_errors")
    assert run(1, "curl https://api.yomira.app/health/ready").ok
    assert faults.active(sandbox_stack) == {}


def test_api_slow_shows_the_slow_query_in_pg_stat_statements(sandbox_stack):  # noqa: ANN001
    faults.inject(sandbox_stack, "api_slow", delay_ms=300)
    top = run(2, 'psql "${DATABASE_URL}" -c "\nSELECT query')
    assert top.ok
    first_row = top.output.splitlines()[2]
    assert "FROM core.series" in first_row  # the search query is now the slowest
    assert "http_request_delay_seconds 0.3" in get(sandbox_stack, "/metrics")[1]
    faults.heal(sandbox_stack, "api_slow")
    assert "http_request_delay_seconds 0.0" in get(sandbox_stack, "/metrics")[1]


def test_the_database_down_fails_its_probe_and_the_health_document(sandbox_stack):  # noqa: ANN001
    faults.inject(sandbox_stack, "database_down")
    down = run(3, 'psql "${DATABASE_URL}" -c "SELECT 1;"')
    assert not down.ok and "Cannot reach the target database" in down.summary
    status, body = get(sandbox_stack, "/health/ready")
    assert status == 503 and json.loads(body)["database"] == "error"
    faults.heal(sandbox_stack, "database_down")  # `docker compose restart postgres`
    assert run(3, 'psql "${DATABASE_URL}" -c "SELECT 1;"').summary == "?column? = 1"


def test_redis_down_fails_ping_and_degrades_health(sandbox_stack):  # noqa: ANN001
    faults.inject(sandbox_stack, "redis_down")
    ping = run(4, 'redis-cli -u "${REDIS_URL}" ping')
    assert not ping.ok and "Cannot reach Redis" in ping.summary
    document = json.loads(get(sandbox_stack, "/health/ready")[1])
    assert document["redis"] == "error" and document["status"] == "degraded"
    faults.heal(sandbox_stack, "redis_down")
    assert run(4, 'redis-cli -u "${REDIS_URL}" ping').summary == "PING: PONG"


def test_storage_down_makes_the_cdn_answer_502_until_it_is_back(sandbox_stack):  # noqa: ANN001
    faults.inject(sandbox_stack, "storage_down")
    cover = run(8, 'curl -I "https://cdn.yomira.app/covers/test.webp"')
    assert not cover.ok and "502" in cover.summary
    assert json.loads(get(sandbox_stack, "/health/ready")[1])["storage"] == "error"
    faults.heal(sandbox_stack, "storage_down")  # moto starts empty: re-seeded
    assert (
        "200 OK" in run(8, 'curl -I "https://cdn.yomira.app/covers/test.webp"').summary
    )


def test_smtp_broken_fails_the_test_mail_until_healed(sandbox_stack):  # noqa: ANN001
    faults.inject(sandbox_stack, "smtp_broken")
    mail = run(7, "curl -X POST https://api.yomira.app/api/v1/admin/mail/send")
    assert not mail.ok and "502" in mail.summary and "535" in mail.output
    faults.heal(sandbox_stack, "smtp_broken")
    assert run(7, "curl -X POST https://api.yomira.app/api/v1/admin/mail/send").ok
    assert list((sandbox_stack.root / "mail").glob("*.eml"))  # really delivered


def test_stuck_crawler_jobs_are_listed_then_reset_by_the_api(sandbox_stack):  # noqa: ANN001
    faults.inject(sandbox_stack, "crawler_stuck", n=4)
    stuck = run(6, "SELECT id, sourceid, status")
    assert stuck.summary == "4 rows"
    logs = run(6, "SELECT log.level, log.message")
    assert "429 Too Many Requests" in logs.output
    reset = run(6, "curl -X POST https://api.yomira.app/api/v1/admin/crawler/jobs")
    assert reset.ok and '"reset": 4' in reset.output
    assert run(6, "SELECT id, sourceid, status").summary == "0 rows"
    patched = run(
        6, "PATCH /admin/crawler/sources/:id", {"id": str(seed.SAMPLE_SOURCE_ID)}
    )
    assert '"isactive": false' in patched.output


def test_idle_in_transaction_connections_are_listed_and_released(sandbox_stack):  # noqa: ANN001
    faults.inject(sandbox_stack, "idle_in_transaction", n=50)
    counts = run(5, "SELECT count(*), state")
    assert any(
        line.split("|")[0].strip() == "50" and "idle in transaction" in line
        for line in counts.output.splitlines()
    ), counts.output
    # The step 2 probe lists queries started more than 30 s ago: wait for that.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        listed = run(5, STEP_2_SQL)
        if listed.summary.startswith("50 rows"):
            break
        time.sleep(2)
    assert listed.summary == "50 rows", listed.summary
    assert "idle in transaction" in listed.output
    assert "INSERT INTO crawler.log" in listed.output
    pid = listed.output.splitlines()[2].split("|")[0].strip()
    assert run(5, "SELECT pg_terminate_backend(pid);", {"pid": pid}).ok
    assert run(5, STEP_2_SQL).summary == "49 rows"
    # Step 4: pausing the crawler makes it let go of every connection.
    paused = run(5, "curl -X POST https://api.yomira.app/api/v1/admin/crawler/pause")
    assert '"connections_closed": 49' in paused.output
    assert run(5, STEP_2_SQL).summary == "0 rows"
    holder_pid = state.read(sandbox_stack.root)["holder"]["pid"]
    deadline = time.monotonic() + 10
    while process.alive(holder_pid, str(sandbox_stack.root)):
        assert time.monotonic() < deadline, "the holder kept running"
        time.sleep(0.1)


def test_idle_connections_are_released_by_heal(sandbox_stack):  # noqa: ANN001
    faults.inject(sandbox_stack, "idle_in_transaction", n=5)
    said = faults.heal(sandbox_stack, "idle_in_transaction")
    assert said.startswith("5 crawler connections terminated")
    with psycopg.connect(sandbox_stack.database_url()) as conn:
        left = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
            [holder.APPLICATION],
        ).fetchone()[0]
    assert left == 0


def test_the_disk_fills_and_dropping_the_old_partition_frees_it(sandbox_stack):  # noqa: ANN001
    faults.inject(sandbox_stack, "disk_full", free_percent=3)
    full = run(9, "df -h")
    assert full.data["max_used_percent"] >= 96.5
    assert "/var/lib/postgresql/data" in full.output
    assert (
        run(9, "SELECT schemaname, tablename")
        .output.splitlines()[2]
        .split("|")[1]
        .strip()
        == "pageview_2025_01"
    )
    assert run(9, "DROP TABLE IF EXISTS analytics.pageview_2025_01;").ok
    freed = run(9, "df -h")
    assert freed.data["max_used_percent"] < 80  # under the DiskUsageHigh threshold
    faults.heal(sandbox_stack, "disk_full")
    # A second drill finds the partition its fix drops, and the disk full again.
    assert faults.inject(sandbox_stack, "disk_full").endswith(
        "pageview_2025_01 restored"
    )
    assert run(9, "df -h").data["max_used_percent"] >= 96.5
    assert run(9, "DROP TABLE IF EXISTS analytics.pageview_2025_01;").ok
    assert run(9, "df -h").data["max_used_percent"] < 80


def test_without_the_variable_df_reads_the_worker_host(sandbox_stack, monkeypatch):  # noqa: ANN001
    monkeypatch.delenv("TARGET_DISK_VOLUMES")
    real = run(9, "df -h")
    assert real.ok and "yomira-db-1" not in real.summary
    assert "/var/lib/postgresql/data" not in real.output
    monkeypatch.setenv(
        "TARGET_DISK_VOLUMES", str(sandbox_stack.root / "disk/volumes.json")
    )
    assert "yomira-db-1" in run(9, "df -h").summary


def test_a_memory_leak_shows_in_the_goroutine_profile_until_restarted(sandbox_stack):  # noqa: ANN001
    faults.inject(sandbox_stack, "memory_leak", mb=16, goroutines=300)
    profile = run(10, "GET /debug/pprof/goroutine")
    total = int(profile.output.split("goroutine profile: total ")[1].split()[0])
    assert total >= 300 and "waitBody" in profile.output
    faults.heal(sandbox_stack, "memory_leak")  # `flyctl restart`
    profile = run(10, "GET /debug/pprof/goroutine")
    assert int(profile.output.split("goroutine profile: total ")[1].split()[0]) < 100


def test_a_dirty_migration_is_forced_then_applied(sandbox_stack):  # noqa: ANN001
    faults.inject(sandbox_stack, "dirty_migration")
    version = 'migrate -database "${DATABASE_URL}" -path src/common/DML/migrations'
    assert run(11, version, step=1).summary == "5 (dirty)"
    forced = run(11, f"{version} force 4")
    assert forced.summary == "forced version 4 (was 5 (dirty))"
    assert run(11, version, step=5).summary == "4"
    assert faults.migrate_up(sandbox_stack, 1) == "applied [5]"  # the simulated `up 1`
    assert run(11, version, step=5).summary == "5"
    with psycopg.connect(sandbox_stack.database_url()) as conn:
        index = conn.execute(
            "SELECT to_regclass('users.session_userid_active_idx')"
        ).fetchone()[0]
    assert index is not None


def test_token_reuse_shows_in_the_audit_log_and_revoke_all_ends_it(sandbox_stack):  # noqa: ANN001
    faults.inject(sandbox_stack, "token_reuse", attempts=40)
    audit = run(12, "SELECT * FROM system.auditlog")
    assert audit.output.count("auth.token_reuse_detected") >= 40
    revoked = run(
        12,
        "curl -X POST https://api.yomira.app/api/v1/admin/users/{userId}",
        {"userId": seed.SAMPLE_USER_ID},
    )
    assert revoked.ok
    with psycopg.connect(sandbox_stack.database_url()) as conn:
        active = conn.execute(
            "SELECT count(*) FROM users.session WHERE userid = %s AND revokedat IS NULL",
            [seed.SAMPLE_USER_ID],
        ).fetchone()[0]
    assert active == 0


REVOKE_ALL = "curl -X POST https://api.yomira.app/api/v1/admin/users/{userId}"
AUDIT_LOG = "SELECT * FROM system.auditlog"


def newest_audit_row(stack) -> str:  # noqa: ANN001
    """The first row of §12 step 4's probe (the newest entry)."""
    rows = run(12, AUDIT_LOG).structured["tables"][0]["rows"]
    return " ".join(str(c) for c in rows[0] if c is not None)


def token_reuse_health():  # noqa: ANN201
    """The token-reuse drill's health check, as its scenario file says."""
    from drills.scenarios import BUNDLED_DIR, load_file

    return load_file(BUNDLED_DIR / "token-reuse.toml").health[0]


@pytest.mark.parametrize(
    ("fix", "params"),
    [
        (REVOKE_ALL, {"userId": seed.SAMPLE_USER_ID}),
        # "Or direct DB if API is compromised": no audit row of its own.
        ("UPDATE users.session SET revokedat = NOW()", {"$1": seed.SAMPLE_USER_ID}),
    ],
)
def test_either_fix_of_token_reuse_shows_in_the_audit_log(sandbox_stack, fix, params):  # noqa: ANN001
    check = token_reuse_health()
    assert check.command == AUDIT_LOG
    faults.inject(sandbox_stack, "token_reuse", attempts=10)
    # The attacker goes on replaying: each replay is a fresh reuse detected.
    wait_until(lambda: "replayed" in newest_audit_row(sandbox_stack))
    assert "auth.token_reuse_detected" in newest_audit_row(sandbox_stack)
    probe = run(12, AUDIT_LOG)
    assert check.expect.failures(probe.ok, probe.output, probe.data, probe.structured)
    assert run(12, fix, params).ok
    # At once (the drill is checked right after the run): the revocation's own
    # audit row, written by the API or by the target's trigger.
    probe = run(12, AUDIT_LOG)
    assert (
        check.expect.failures(probe.ok, probe.output, probe.data, probe.structured)
        == []
    )
    # From then on the replays are refused: still what the health check reads.
    wait_until(lambda: "auth.refresh_rejected" in newest_audit_row(sandbox_stack))
    probe = run(12, AUDIT_LOG)
    assert (
        check.expect.failures(probe.ok, probe.output, probe.data, probe.structured)
        == []
    )
    assert "session revoked" in newest_audit_row(sandbox_stack)


def wait_until(seen, seconds: float = 30) -> None:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while not seen():
        assert time.monotonic() < deadline, "not seen in time"
        time.sleep(0.2)


def test_maintenance_mode_set_by_the_runbook_closes_the_public_api(sandbox_stack):  # noqa: ANN001
    assert get(sandbox_stack, "/api/v1/status")[0] == 200
    assert run(2, "curl -X PUT https://api.yomira.app/api/v1/admin/settings").ok
    assert get(sandbox_stack, "/api/v1/status")[0] == 503
    faults.heal(sandbox_stack, "maintenance")
    assert get(sandbox_stack, "/api/v1/status")[0] == 200


def test_an_admin_call_without_the_token_is_refused(sandbox_stack, monkeypatch):  # noqa: ANN001
    monkeypatch.setenv("TARGET_ADMIN_TOKEN", "not-the-token")
    refused = run(6, "curl -X POST https://api.yomira.app/api/v1/admin/crawler/jobs")
    assert not refused.ok and "401" in refused.summary
