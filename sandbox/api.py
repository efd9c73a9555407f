"""The Yomira API and its CDN, as the runbook sees them: `python -m sandbox.api
--root ROOT --port PORT`. Every answer comes from the other parts: health checks
really ask the database, Redis and S3; admin endpoints really change the target
database or send through the SMTP part; covers are read from the S3 part.

Fault modes (5xx, slow answers, a memory and goroutine leak, maintenance) are set
through /_sandbox/control with the control token from root/state.json; without
the token that path answers 404 like any unknown one."""

from __future__ import annotations

import argparse
import hmac
import json
import random
import re
import smtplib
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg
import redis

from . import seed, state, storage

VERSION = "3.4.2"
STARTED = time.time()
STUCK = "status = 'running' AND startedat < now() - interval '30 minutes'"


class Modes:
    """What the fault injections switched on, in this process only (a restart
    of the API clears them, as a restart of the real one would)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.error_rate = 0.0
        self.delay_ms = 0
        self.delayed = 0  # answers held back by the delay (the /metrics counter)
        self.maintenance = False
        self.leaked: list[bytearray] = []
        self.goroutines: list[threading.Thread] = []
        self.release = threading.Event()
        self.requests: dict[int, int] = {}

    def leak(self, megabytes: int, goroutines: int) -> None:
        with self.lock:
            for _ in range(megabytes):
                block = bytearray(1024 * 1024)
                block[::4096] = b"\1" * len(block[::4096])  # touch every page
                self.leaked.append(block)
            for _ in range(goroutines):
                t = threading.Thread(target=self.release.wait, daemon=True)
                t.start()
                self.goroutines.append(t)

    def heal_leak(self) -> None:
        with self.lock:
            self.leaked.clear()
            self.release.set()
            self.goroutines.clear()
            self.release = threading.Event()

    def snapshot(self) -> dict:
        return {
            "error_rate": self.error_rate,
            "delay_ms": self.delay_ms,
            "maintenance": self.maintenance,
            "leaked_mb": len(self.leaked),
            "leaked_goroutines": len(self.goroutines),
        }


MODES = Modes()


class Api:
    def __init__(self, root: Path) -> None:
        self.root = root

    def state(self) -> dict:
        return state.read(self.root)

    def part(self, name: str) -> dict:
        return self.state().get("parts", {}).get(name, {})

    def db(self) -> psycopg.Connection:
        socket = self.part("database").get("socket")
        return psycopg.connect(
            f"postgresql://yomira@/yomira?host={socket}",
            connect_timeout=2,
            application_name="yomira-api",
            autocommit=True,
        )

    def maintenance(self, *, strict: bool = False) -> bool:
        """Maintenance mode: the control's switch, or the site.maintenance_mode
        setting in the database (what §2 step 5's PUT /admin/settings sets).
        With the database unreachable the setting counts as off, unless
        `strict` (a public request needs the database anyway: 503 either way)."""
        if MODES.maintenance:
            return True
        try:
            with self.db() as conn:
                on = conn.execute(
                    "SELECT value FROM system.setting "
                    "WHERE key = 'site.maintenance_mode'"
                ).fetchone()
        except psycopg.Error:
            if strict:
                raise
            return False
        return bool(on) and on[0] == "true"

    # -- health ---------------------------------------------------------------
    def check_database(self) -> str:
        try:
            with self.db() as conn:
                conn.execute("SELECT 1")
            return "ok"
        except psycopg.Error:
            return "error"

    def check_redis(self) -> str:
        try:
            port = self.part("redis").get("port")
            client = redis.Redis(port=port, socket_timeout=1, socket_connect_timeout=1)
            client.ping()
            client.close()
            return "ok"
        except (redis.RedisError, TypeError):
            return "error"

    def check_storage(self) -> str:
        port = self.part("s3").get("port")
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/{storage.BUCKET}", method="HEAD"
        )
        try:
            with urllib.request.urlopen(request, timeout=1.5):
                return "ok"
        except (urllib.error.URLError, OSError):
            return "error"

    def check_smtp(self) -> str:
        """What sending needs, short of sending: a relay that refuses the sender
        (a revoked key) answers MAIL FROM with an error."""
        port = self.part("smtp").get("port")
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=1.5) as smtp:
                smtp.ehlo("api.yomira.app")
                code, _ = smtp.mail("health@yomira.app")
                smtp.rset()
            return "ok" if code == 250 else "error"
        except (smtplib.SMTPException, OSError, TypeError):
            return "error"

    def health(self) -> tuple[int, dict]:
        checks = {
            "database": self.check_database(),
            "redis": self.check_redis(),
            "storage": self.check_storage(),
            "smtp": self.check_smtp(),
        }
        # Redis, storage or mail down degrades (rate limits, covers, emails: the
        # API still serves, as §7 says of mail); only the database down fails.
        status = "ok"
        if "error" in checks.values():
            status = "error" if checks["database"] == "error" else "degraded"
        document = {
            "status": status,
            "version": VERSION,
            "uptime_seconds": int(time.time() - STARTED),
            **checks,
        }
        return (503 if checks["database"] == "error" else 200), document


class Handler(BaseHTTPRequestHandler):
    server_version = "yomira-api/" + VERSION
    protocol_version = "HTTP/1.1"
    api: Api

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        return  # the console's worker shows what it asked; no access log needed

    # -- plumbing ---------------------------------------------------------------
    def send(self, status: int, body: bytes, content_type: str, head: bool = False,
             headers: dict[str, str] | None = None) -> None:  # fmt: skip
        with MODES.lock:
            MODES.requests[status] = MODES.requests.get(status, 0) + 1
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def json(self, status: int, payload: dict) -> None:
        body = (json.dumps(payload, default=str) + "\n").encode()
        self.send(status, body, "application/json", head=self.command == "HEAD")

    def body(self) -> dict:
        length = self.headers.get("Content-Length") or "0"
        if not length.isdigit() or int(length) > 1024 * 1024:
            raise BadRequest("Content-Length must be a number up to 1 MB")
        raw = self.rfile.read(int(length)) if int(length) else b""
        if not raw:
            return {}
        try:
            found = json.loads(raw)
        except ValueError as exc:
            raise BadRequest(f"the body is not JSON: {exc}") from None
        if not isinstance(found, dict):
            raise BadRequest("the body must be a JSON object")
        return found

    def do_GET(self) -> None:  # noqa: N802
        self.dispatch()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET  # noqa: N815

    def dispatch(self) -> None:
        path = self.path.split("?", 1)[0]
        try:
            if path.startswith("/_sandbox/"):
                return self.control(path)
            if path not in {"/metrics", "/health/live"}:
                # The delay is the load (§2): maintenance mode takes it off.
                if MODES.delay_ms and not self.api.maintenance():
                    with MODES.lock:
                        MODES.delayed += 1
                    time.sleep(MODES.delay_ms / 1000)
                if MODES.error_rate and random.random() < MODES.error_rate:  # noqa: S311
                    return self.json(500, PANIC)
            return self.route(path)
        except BadRequest as exc:
            return self.json(400, {"error": str(exc)})
        except psycopg.OperationalError:
            return self.json(503, {"error": "database unavailable"})
        except psycopg.Error as exc:
            return self.json(500, {"error": type(exc).__name__})

    def route(self, path: str) -> None:
        method = self.command
        if path == "/health/ready" and method in {"GET", "HEAD"}:
            return self.json(*self.api.health())
        if path == "/health/live":
            return self.json(200, {"status": "ok"})
        if path == "/metrics" and method == "GET":
            return self.send(200, metrics().encode(), "text/plain; version=0.0.4")
        if path == "/debug/pprof/goroutine" and method == "GET":
            return self.send(200, goroutines().encode(), "text/plain; charset=utf-8")
        if path.startswith("/covers/") and method in {"GET", "HEAD"}:
            return self.cover(path)
        if path.startswith("/api/v1/admin/"):
            return self.admin(path[len("/api/v1/admin") :], method)
        if path.startswith("/api/v1/"):
            return self.public(path)
        return self.json(404, {"error": "not found"})

    # -- CDN --------------------------------------------------------------------
    def cover(self, path: str) -> None:
        port = self.api.part("s3").get("port")
        url = f"http://127.0.0.1:{port}/{storage.BUCKET}{path}"
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                data = answer.read()
                kind = answer.headers.get("Content-Type", "image/webp")
        except urllib.error.HTTPError as exc:
            status = 404 if exc.code == 404 else 502
            return self.json(status, {"error": f"origin answered {exc.code}"})
        except (urllib.error.URLError, OSError):
            return self.json(502, {"error": "origin unreachable (object storage)"})
        head = self.command == "HEAD"
        self.send(200, data, kind, head=head, headers=CDN_HEADERS)

    # -- public -----------------------------------------------------------------
    def public(self, path: str) -> None:
        if self.api.maintenance(strict=True):
            return self.json(503, {"error": "maintenance", "retry_after": 300})
        if path == "/api/v1/status":
            return self.json(200, {"status": "ok", "version": VERSION})
        return self.json(404, {"error": "not found"})

    # -- admin ------------------------------------------------------------------
    def admin(self, path: str, method: str) -> None:
        token = self.api.state().get("admin_token", "")
        given = self.headers.get("Authorization", "")
        if not token or not hmac.compare_digest(
            given.encode(), f"Bearer {token}".encode()
        ):
            return self.json(401, {"error": "unauthorized"})
        if path == "/settings" and method == "PUT":
            return self.put_setting(self.body())
        if path == "/crawler/pause" and method == "POST":
            return self.pause_crawler()
        if path == "/crawler/jobs/reset-stuck" and method == "POST":
            return self.reset_stuck()
        source = re.fullmatch(r"/crawler/sources/([^/]+)", path)
        if source and method == "PATCH":
            return self.patch_source(source.group(1), self.body())
        if path == "/mail/send" and method == "POST":
            return self.send_mail(self.body())
        user = re.fullmatch(r"/users/([^/]+)/sessions/revoke-all", path)
        if user and method == "POST":
            return self.revoke_all(user.group(1))
        return self.json(404, {"error": "not found"})

    def audit(self, conn: psycopg.Connection, action: str, entity: str,
              entityid: str, metadata: dict) -> None:  # fmt: skip
        conn.execute(
            "INSERT INTO system.auditlog (action, entitytype, entityid, ip, metadata) "
            "VALUES (%s, %s, %s, %s, %s)",
            [action, entity, entityid, self.client_address[0], json.dumps(metadata)],
        )

    def put_setting(self, body: dict) -> None:
        key, value = body.get("key"), body.get("value")
        if not isinstance(key, str) or not isinstance(value, str):
            raise BadRequest('expected {"key": "...", "value": "..."} (both strings)')
        with self.api.db() as conn, conn.transaction():
            row = conn.execute(
                "UPDATE system.setting SET value = %s, updatedat = now(), "
                "updatedby = 'admin-api' WHERE key = %s RETURNING key, value, updatedat",
                [value, key],
            ).fetchone()
            if row is None:
                return self.json(404, {"error": f"no setting {key!r}"})
            self.audit(conn, "admin.setting.update", "setting", key, {"value": value})
        self.json(200, {"key": row[0], "value": row[1], "updatedat": row[2]})

    def pause_crawler(self) -> None:
        with self.api.db() as conn, conn.transaction():
            conn.execute(
                "UPDATE system.setting SET value = 'true', updatedat = now(), "
                "updatedby = 'admin-api' WHERE key = 'crawler.paused'"
            )
            # A paused crawler lets go of its connections (and of the open
            # transactions on them).
            closed = conn.execute(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) "
                "FROM pg_stat_activity WHERE application_name = 'yomira-crawler'"
            ).fetchone()[0]
            self.audit(
                conn, "admin.crawler.pause", "crawler", "all", {"closed": closed}
            )
        self.json(200, {"paused": True, "connections_closed": closed})

    def reset_stuck(self) -> None:
        with self.api.db() as conn, conn.transaction():
            ids = [
                r[0]
                for r in conn.execute(
                    "UPDATE crawler.job SET status = 'pending', startedat = NULL "
                    f"WHERE {STUCK} RETURNING id"
                ).fetchall()
            ]
            self.audit(conn, "admin.crawler.reset_stuck", "job", "*", {"ids": ids})
        self.json(200, {"reset": len(ids), "ids": sorted(ids)})

    def patch_source(self, raw_id: str, body: dict) -> None:
        if not raw_id.isdigit() or len(raw_id) > 9:
            raise BadRequest(f"source id must be a number, not {raw_id[:40]!r}")
        active = body.get("isactive")
        if not isinstance(active, bool):
            raise BadRequest('expected {"isactive": true|false}')
        with self.api.db() as conn, conn.transaction():
            row = conn.execute(
                "UPDATE crawler.source SET isactive = %s, updatedat = now() "
                "WHERE id = %s RETURNING id, name, isactive",
                [active, int(raw_id)],
            ).fetchone()
            if row is None:
                return self.json(404, {"error": f"no crawler source {raw_id}"})
            self.audit(conn, "admin.crawler.source.update", "source", raw_id, body)
        self.json(200, {"id": row[0], "name": row[1], "isactive": row[2]})

    def send_mail(self, body: dict) -> None:
        to, subject = body.get("to"), body.get("subject")
        text = body.get("bodytext", "")
        if (
            not isinstance(to, list)
            or not to
            or not all(isinstance(a, str) and "@" in a for a in to)
            or not isinstance(subject, str)
            or not isinstance(text, str)
        ):
            raise BadRequest(
                'expected {"to": ["a@b"], "subject": "...", "bodytext": "..."}'
            )
        message = EmailMessage()
        message["From"] = "Yomira <no-reply@yomira.app>"
        message["To"] = ", ".join(to)
        message["Subject"] = subject
        message.set_content(text)
        port = self.api.part("smtp").get("port")
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=3) as smtp:
                smtp.send_message(message)
        except smtplib.SMTPResponseException as exc:
            reason = f"{exc.smtp_code} {exc.smtp_error.decode(errors='replace')}"
            return self.json(502, {"error": "mail send failed", "provider": reason})
        except (smtplib.SMTPException, OSError) as exc:
            return self.json(502, {"error": "mail send failed", "provider": str(exc)})
        self.json(200, {"sent": len(to), "provider": "smtp"})

    def revoke_all(self, raw_id: str) -> None:
        try:
            user = uuid.UUID(raw_id)
        except ValueError:
            raise BadRequest(f"user id must be a UUID, not {raw_id[:40]!r}") from None
        with self.api.db() as conn, conn.transaction():
            found = conn.execute(
                "SELECT 1 FROM users.account WHERE id = %s", [user]
            ).fetchone()
            if not found:
                return self.json(404, {"error": f"no user {user}"})
            revoked = conn.execute(
                "UPDATE users.session SET revokedat = now() "
                "WHERE userid = %s AND revokedat IS NULL",
                [user],
            ).rowcount
            self.audit(conn, "admin.sessions.revoke_all", "user", str(user),
                       {"revoked": revoked})  # fmt: skip
        self.json(200, {"userid": str(user), "revoked": revoked})

    # -- control (fault injection) ------------------------------------------------
    def control(self, path: str) -> None:
        token = self.api.state().get("control_token", "")
        given = self.headers.get("X-Sandbox-Token", "")
        if not token or not hmac.compare_digest(given.encode(), token.encode()):
            return self.json(404, {"error": "not found"})
        if path != "/_sandbox/control":
            return self.json(404, {"error": "not found"})
        if self.command == "POST":
            body = self.body()
            try:
                if "error_rate" in body:
                    MODES.error_rate = min(1.0, max(0.0, float(body["error_rate"])))
                if "delay_ms" in body:
                    MODES.delay_ms = max(0, min(60_000, int(body["delay_ms"])))
                if "maintenance" in body:
                    MODES.maintenance = bool(body["maintenance"])
                if "leak_mb" in body or "leak_goroutines" in body:
                    MODES.leak(
                        max(0, min(512, int(body.get("leak_mb", 0)))),
                        max(0, min(5000, int(body.get("leak_goroutines", 0)))),
                    )
                if body.get("heal_leak"):
                    MODES.heal_leak()
            except (TypeError, ValueError) as exc:
                raise BadRequest(str(exc)) from None
        self.json(200, MODES.snapshot())


class BadRequest(Exception):
    pass


# -- §12: the attacker behind the token_reuse fault ---------------------------------
ATTACKERS = "185.220.101.0/24"  # the Tor exits the fault's sessions come from
REPLAY_SECONDS = 2.0
GIVE_UP_AFTER = 60  # refused replays (two minutes) before the attacker stops


class Attacker:
    """While the token_reuse fault is recorded in the state file, its attacker
    replays the user's stolen refresh token every two seconds, and the API writes
    what it made of each replay to the audit log (§12 step 4's probe reads it).
    While a session the attacker opened is active, the reuse is only detected
    (auth.token_reuse_detected); once they are revoked, through the admin API or
    by §12's UPDATE straight in the database, the replay is refused
    (auth.refresh_rejected). So either fix shows in the audit log, as it would
    in Yomira's. Read from the state file, so a restarted API carries on."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.refused: dict[str, int] = {}

    def run(self) -> None:
        while True:
            time.sleep(REPLAY_SECONDS)
            try:
                self.replay()
            except psycopg.Error:
                continue  # the database is down: the replay fails like any request
            except Exception as exc:  # noqa: BLE001 - one bad replay is not the end
                print(f"attacker: replay failed: {exc!r}", file=sys.stderr, flush=True)

    def replay(self) -> str | None:
        """One replay: the audit action it caused (None: no attack going on)."""
        fault = self.api.state().get("faults", {}).get("token_reuse")
        if not fault:
            self.refused.clear()
            return None
        user = fault.get("params", {}).get("user_id") or seed.SAMPLE_USER_ID
        attack = f"{user}@{fault.get('at')}"
        if self.refused.get(attack, 0) >= GIVE_UP_AFTER:
            return None
        with self.api.db() as conn, conn.transaction():
            stolen = conn.execute(
                "SELECT id, revokedat IS NULL FROM users.session "
                "WHERE userid = %s AND ip << %s::inet "
                "ORDER BY revokedat IS NULL DESC, createdat DESC LIMIT 1",
                [user, ATTACKERS],
            ).fetchone()
            if stolen is None:
                return None
            session, active = stolen
            if active:
                action = "auth.token_reuse_detected"
                metadata = {"family": "refresh", "replayed": True}
            else:
                action = "auth.refresh_rejected"
                metadata = {"family": "refresh", "reason": "session revoked"}
                self.refused[attack] = self.refused.get(attack, 0) + 1
            conn.execute(
                "INSERT INTO system.auditlog (actorid, action, entitytype, entityid, "
                "ip, useragent, metadata) VALUES (%s, %s, 'session', %s, %s, "
                "'python-requests/2.32.3', %s)",
                [user, action, str(session),
                 f"185.220.101.{random.randint(10, 16)}",  # noqa: S311
                 json.dumps(metadata)],
            )  # fmt: skip
        return action


PANIC = {
    "error": "internal server error",
    "detail": "panic recovered: runtime error: invalid memory address or nil "
    "pointer dereference (handlers/chapter.go:118)",
}
CDN_HEADERS = {"Cache-Control": "public, max-age=31536000", "CF-Cache-Status": "MISS"}


def rss_bytes() -> int:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0
    import os

    return pages * os.sysconf("SC_PAGE_SIZE")


def goroutine_count() -> int:
    return threading.active_count() + 14  # the runtime's own (GC, timers, netpoll)


def goroutines() -> str:
    leaked = len(MODES.goroutines)
    lines = [f"goroutine profile: total {goroutine_count()}"]
    if leaked:
        lines += [
            f"{leaked} @ 0x43b1f6 0x44a7e5 0x8c2f1a 0x8c3a44 0x471a21",
            "#\t0x8c2f19\tgithub.com/yomira/api/internal/crawler.(*Fetcher).waitBody+0x99"
            "\t/app/internal/crawler/fetch.go:212",
            "#\t0x8c3a43\tgithub.com/yomira/api/internal/crawler.(*Fetcher).Run.func1+0x63"
            "\t/app/internal/crawler/fetch.go:87",
            "",
        ]
    lines += [
        "4 @ 0x43b1f6 0x4071cc 0x406d58 0x7d0a3e 0x471a21",
        "#\t0x7d0a3d\tnet/http.(*persistConn).readLoop+0x9dd\t/usr/local/go/src/net/http/transport.go:2395",
        "",
    ]
    return "\n".join(lines) + "\n"


def metrics() -> str:
    with MODES.lock:
        counts = dict(MODES.requests)
    lines = [
        "# TYPE http_requests_total counter",
        *(f'http_requests_total{{code="{c}"}} {n}' for c, n in sorted(counts.items())),
        "# TYPE go_goroutines gauge",
        f"go_goroutines {goroutine_count()}",
        "# TYPE process_resident_memory_bytes gauge",
        f"process_resident_memory_bytes {rss_bytes()}",
        "# TYPE http_request_delay_seconds gauge",
        f"http_request_delay_seconds {MODES.delay_ms / 1000}",
        "# TYPE http_requests_delayed_total counter",
        f"http_requests_delayed_total {MODES.delayed}",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    Handler.api = Api(args.root)
    threading.Thread(target=Attacker(Handler.api).run, daemon=True).start()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
