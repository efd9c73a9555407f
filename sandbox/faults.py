"""Faults a drill injects into the stack, and how each is undone.

Every fault is real: a stopped process, rows really changed, the API process
really answering 5xx or slowly. The runbook's own actions fix them where it has
one (terminating the backends or pausing the crawler, POST reset-stuck,
`migrate force 4`, revoke-all, DROP TABLE analytics.pageview_2025_01); `heal`
is for the manual steps a drill simulates and for tests.

    faults.inject(stack, "idle_in_transaction", n=50) -> "50 connections ..."
    faults.heal(stack, "idle_in_transaction")
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

import psycopg

from . import disk, holder, migrations, seed, state
from .stack import Stack


@dataclass(frozen=True)
class Fault:
    name: str
    description: str
    inject: Callable[..., str]
    heal: Callable[..., str]


def control(stack: Stack, **modes: object) -> dict:
    """Switch the API process's fault modes (needs the control token)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{stack.port('api')}/_sandbox/control",
        data=json.dumps(modes).encode(),
        headers={"X-Sandbox-Token": stack.control_token(),
                 "Content-Type": "application/json"},
        method="POST",
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def _db(stack: Stack) -> psycopg.Connection:
    return psycopg.connect(stack.database_url(), autocommit=True, connect_timeout=5)


# -- §1, §2, §10: the API process -------------------------------------------------
def _api_errors(stack: Stack, rate: float = 1.0) -> str:
    control(stack, error_rate=rate)
    return f"the API answers 500 (panic recovered) to {rate:.0%} of requests"


def _api_errors_heal(stack: Stack) -> str:
    control(stack, error_rate=0)
    return "the API answers normally again"


SLOW_QUERY = -6150224930104178821  # the search query in pg_stat_statements


def _maintenance_off(stack: Stack) -> bool:
    """Maintenance mode off, in the API process and in the setting (whether it
    was on)."""
    was = control(stack, maintenance=False)["maintenance"]
    with _db(stack) as conn:
        changed = conn.execute(
            "UPDATE system.setting SET value = 'false' "
            "WHERE key = 'site.maintenance_mode' AND value <> 'false'"
        ).rowcount
    return bool(was or changed)


def _api_slow(stack: Stack, delay_ms: int = 1500) -> str:
    # Maintenance mode takes the load (the delay) off: a site left in maintenance
    # by an earlier drill would not be slow at all.
    reopened = _maintenance_off(stack)
    control(stack, delay_ms=delay_ms)
    with _db(stack) as conn:
        # The search query went slow: its statistics show it.
        conn.execute(
            "UPDATE monitoring.statement SET calls = calls + 4000, "
            "total_exec_time = total_exec_time + 4000 * %s, "
            "max_exec_time = greatest(max_exec_time, %s) WHERE queryid = %s",
            [delay_ms * 0.9, delay_ms * 1.6, SLOW_QUERY],
        )
    said = f"every API answer takes {delay_ms} ms more; the search query is slow"
    return said + ("; maintenance mode was on: turned off" if reopened else "")


def _api_slow_heal(stack: Stack) -> str:
    control(stack, delay_ms=0)
    _maintenance_off(stack)  # the fix (§2 step 5) turned it on: the site reopens
    with _db(stack) as conn:
        conn.execute(
            "UPDATE monitoring.statement SET calls = 184220, total_exec_time = "
            "2394860.0, max_exec_time = 412.7 WHERE queryid = %s",
            [SLOW_QUERY],
        )
    return "API answers at normal speed; maintenance mode off"


def _memory_leak(stack: Stack, mb: int = 96, goroutines: int = 800) -> str:
    control(stack, leak_mb=mb, leak_goroutines=goroutines)
    return f"the API process holds {mb} MB more and {goroutines} stuck goroutines"


def _memory_leak_heal(stack: Stack) -> str:
    # What `flyctl restart` does: a fresh process (every API fault mode cleared).
    stack.part("api").stop()
    stack.part("api").start()
    return "the API process was restarted"


def _maintenance(stack: Stack) -> str:
    control(stack, maintenance=True)
    return "the API answers 503 maintenance to public requests"


def _maintenance_heal(stack: Stack) -> str:
    _maintenance_off(stack)
    return "maintenance mode off"


# -- §3, §4, §8: a part down --------------------------------------------------------
def _down(part: str, what: str) -> tuple[Callable[..., str], Callable[..., str]]:
    def inject(stack: Stack) -> str:
        stack.part(part).stop()
        return f"{what} stopped (process gone)"

    def heal(stack: Stack) -> str:
        stack.part(part).start()
        return f"{what} started again"

    return inject, heal


# -- §5: connections idle in transaction ---------------------------------------------
def _idle(stack: Stack, n: int = 50) -> str:
    pid = holder.start(stack.root, stack.database_url(), n)
    return f"{n} crawler connections idle in transaction (holder pid {pid})"


def _idle_heal(stack: Stack) -> str:
    with _db(stack) as conn:
        closed = conn.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) "
            "FROM pg_stat_activity WHERE application_name = %s",
            [holder.APPLICATION],
        ).fetchone()[0]
        conn.execute(
            "UPDATE system.setting SET value = 'false' WHERE key = 'crawler.paused'"
        )
    holder.stop(stack.root)
    return f"{closed} crawler connections terminated; crawler resumed"


# -- §6: stuck crawler jobs ------------------------------------------------------------
def _crawler_stuck(stack: Stack, n: int = 6) -> str:
    with _db(stack) as conn, conn.transaction():
        ids = [
            r[0]
            for r in conn.execute(
                "INSERT INTO crawler.job (sourceid, kind, status, attempts, "
                "scheduledat, startedat) SELECT %s, 'chapter-sync', 'running', 1, "
                "now() - (40 + g * 25) * interval '1 minute', "
                "now() - (35 + g * 25) * interval '1 minute' "
                "FROM generate_series(1, %s) g RETURNING id",
                [seed.SAMPLE_SOURCE_ID, n],
            ).fetchall()
        ]
        for i, job in enumerate(ids):
            conn.execute(
                "INSERT INTO crawler.log (jobid, level, message, createdat) VALUES "
                "(%s, 'WARN', 'fetch https://api.mangadex.org/chapter: 429 Too Many "
                "Requests, retry in 60s', now() - %s * interval '1 minute'), "
                "(%s, 'ERROR', 'fetch https://api.mangadex.org/manga: 403 Forbidden "
                "(cf-ray 8e2f1c)', now() - %s * interval '1 minute')",
                [job, 30 + i * 25, job, 29 + i * 25],
            )
    return f"{n} jobs of source {seed.SAMPLE_SOURCE_ID} running for 35 min to {35 + n * 25} min"


def _crawler_stuck_heal(stack: Stack) -> str:
    with _db(stack) as conn:
        reset = conn.execute(
            "UPDATE crawler.job SET status = 'pending', startedat = NULL "
            "WHERE status = 'running' AND startedat < now() - interval '30 minutes'"
        ).rowcount
        conn.execute(
            "UPDATE crawler.source SET isactive = true WHERE id = %s",
            [seed.SAMPLE_SOURCE_ID],
        )
    return f"{reset} stuck jobs back to pending; source {seed.SAMPLE_SOURCE_ID} active"


# -- §7: SMTP ----------------------------------------------------------------------------
def _smtp_broken(stack: Stack) -> str:
    (stack.root / "smtp.refuse").touch()
    return "the SMTP relay refuses every sender (535: API key revoked)"


def _smtp_heal(stack: Stack) -> str:
    (stack.root / "smtp.refuse").unlink(missing_ok=True)
    return "the SMTP relay accepts mail again"


# -- §9: disk ----------------------------------------------------------------------------
def _disk_full(stack: Stack, free_percent: float = 3) -> str:
    # The fix drops the old partition: a drill after an earlier one needs it back.
    with _db(stack) as conn:
        restored = seed.restore_old_partition(conn)
    said = disk.fill(stack.root, free_percent)
    return said + ("; analytics.pageview_2025_01 restored" if restored else "")


def _disk_heal(stack: Stack) -> str:
    return disk.unfill(stack.root)


# -- §11: a dirty migration -------------------------------------------------------------
def _dirty_migration(stack: Stack) -> str:
    """Migration 5 failed half-way in a deploy: dirty, its index not built."""
    with _db(stack) as conn, conn.transaction():
        conn.execute(migrations.files("down")[5].read_text())
        migrations.set_state(conn, 5, True)
    return "schema_migrations at 5 (dirty); migration 5's index missing"


def _dirty_heal(stack: Stack) -> str:
    with _db(stack) as conn:
        version, dirty = migrations.state(conn)
        if dirty:  # `migrate force 4`
            with conn.transaction():
                migrations.set_state(conn, (version or 1) - 1, False)
        applied = migrations.up(conn)  # `migrate up`
    return (
        f"forced clean, applied {applied or 'nothing'}: version {migrations.latest()}"
    )


def migrate_up(stack: Stack, steps: int = 1) -> str:
    """What `migrate ... up 1` does (for a drill's "simulate")."""
    with _db(stack) as conn:
        applied = migrations.up(conn, steps)
    return f"applied {applied or 'nothing'}"


# -- §12: token reuse ----------------------------------------------------------------------
# Yomira audits every revocation of a session in the database itself, so that a
# revocation made straight in SQL (§12 step 1's "direct DB if API is compromised")
# is in the audit log as surely as the admin API's revoke-all. Made here, if
# missing, so that a stack seeded before it has it too.
REVOCATION_AUDIT = """
CREATE OR REPLACE FUNCTION system.audit_session_revoked() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO system.auditlog (actorid, action, entitytype, entityid, metadata)
    VALUES (NEW.userid, 'auth.session_revoked', 'session', NEW.id::text,
            jsonb_build_object('by', current_user, 'ip', host(NEW.ip)));
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS session_revoked_audit ON users.session;
CREATE TRIGGER session_revoked_audit AFTER UPDATE OF revokedat ON users.session
FOR EACH ROW WHEN (OLD.revokedat IS NULL AND NEW.revokedat IS NOT NULL)
EXECUTE FUNCTION system.audit_session_revoked();
"""


def _token_reuse(
    stack: Stack, user_id: str = seed.SAMPLE_USER_ID, attempts: int = 40
) -> str:
    with _db(stack) as conn, conn.transaction():
        conn.execute(REVOCATION_AUDIT)
        conn.execute(
            "INSERT INTO users.session (id, userid, tokenhash, ip, useragent, "
            "createdat, lastseenat, expiresat) SELECT gen_random_uuid(), %s, "
            "encode(sha256(gen_random_uuid()::text::bytea), 'hex'), "
            "('185.220.101.' || (10 + g))::inet, 'python-requests/2.32.3', "
            "now() - g * interval '1 minute', now(), now() + interval '30 days' "
            "FROM generate_series(1, 4) g",
            [user_id],
        )
        conn.execute(
            "INSERT INTO system.auditlog (actorid, action, entitytype, entityid, ip, "
            "useragent, metadata, createdat) SELECT %s, 'auth.token_reuse_detected', "
            "'session', md5(%s || g)::uuid::text, ('185.220.101.' || (10 + g %% 7))::inet, "
            "'python-requests/2.32.3', jsonb_build_object('family', 'refresh', "
            "'generation', 40 + g), now() - g * interval '9 seconds' "
            "FROM generate_series(1, %s) g",
            [user_id, user_id, attempts],
        )
    # The attacker carries on (sandbox.api.Attacker) until the sessions are revoked.
    return (
        f"{attempts} refresh-token reuse attempts for user {user_id} from Tor exits, "
        "still going on"
    )


def _token_reuse_heal(stack: Stack, user_id: str = seed.SAMPLE_USER_ID) -> str:
    with _db(stack) as conn:
        revoked = conn.execute(
            "UPDATE users.session SET revokedat = now() "
            "WHERE userid = %s AND revokedat IS NULL",
            [user_id],
        ).rowcount
    return f"{revoked} sessions of {user_id} revoked"


_db_down = _down("database", "the target PostgreSQL")
_redis_down = _down("redis", "Redis")
_s3_down = _down("s3", "the object storage (S3)")

FAULTS: dict[str, Fault] = {
    f.name: f
    for f in [
        Fault("api_errors", "The API answers 5xx (a bad deploy panics).",
              _api_errors, _api_errors_heal),
        Fault("api_slow", "Every API answer is slow; the search query is slow.",
              _api_slow, _api_slow_heal),
        Fault("database_down", "The target PostgreSQL is stopped.", *_db_down),
        Fault("redis_down", "Redis is stopped.", *_redis_down),
        Fault("idle_in_transaction",
              "Crawler connections left idle in transaction exhaust the pool.",
              _idle, _idle_heal),
        Fault("crawler_stuck", "Crawler jobs running for hours (source 3 blocks us).",
              _crawler_stuck, _crawler_stuck_heal),
        Fault("smtp_broken", "The mail relay refuses every message.",
              _smtp_broken, _smtp_heal),
        Fault("storage_down", "The object storage is stopped; the CDN answers 502.",
              *_s3_down),
        Fault("disk_full", "The database volume has 3 % free.", _disk_full, _disk_heal),
        Fault("memory_leak", "The API process leaks memory and goroutines.",
              _memory_leak, _memory_leak_heal),
        Fault("maintenance", "The API is in maintenance mode.",
              _maintenance, _maintenance_heal),
        Fault("dirty_migration", "Migration 5 failed half-way: version 5 (dirty).",
              _dirty_migration, _dirty_heal),
        Fault("token_reuse", "A burst of refresh-token reuse for one user.",
              _token_reuse, _token_reuse_heal),
    ]
}  # fmt: skip


def _fault(name: str) -> Fault:
    if name not in FAULTS:
        raise KeyError(f"no fault {name!r}: one of {', '.join(sorted(FAULTS))}")
    return FAULTS[name]


def inject(stack: Stack, name: str, **params: object) -> str:
    said = _fault(name).inject(stack, **params)
    with state.locked(stack.root) as s:
        s.setdefault("faults", {})[name] = {"params": params, "at": time.time()}
    return said


def heal(stack: Stack, name: str, **params: object) -> str:
    said = _fault(name).heal(stack, **params)
    with state.locked(stack.root) as s:
        s.setdefault("faults", {}).pop(name, None)
    return said


def active(stack: Stack) -> dict[str, dict]:
    return dict(state.read(stack.root).get("faults", {}))


def ALL_HEAL(stack: Stack) -> list[str]:  # noqa: N802 - the name INTERFACES.md gives
    """Back to a healthy stack: every part running, every fault undone."""
    stack.start()
    return [heal(stack, name) for name in FAULTS]
