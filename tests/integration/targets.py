"""Real stand-ins for the systems the Yomira runbook touches: a PostgreSQL target
database seeded with the tables it queries, Redis, an HTTP server playing the
Yomira API and CDN, moto's S3 server and an aiosmtpd SMTP server."""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

import psycopg
from werkzeug import Request, Response

from tests.stack import free_port as free_port  # re-exported for the tests
from tests.stack import with_database

ADMIN_TOKEN = "canary-admin-token-5f1e2d"  # must never appear in stored output
DB_PASSWORD_CANARY = "canary-db-password-93a1"

TARGET_SCHEMA = """
CREATE SCHEMA crawler;
CREATE TABLE crawler.job (id serial PRIMARY KEY, sourceid int, status text,
    scheduledat timestamptz, startedat timestamptz);
CREATE TABLE crawler.log (id serial PRIMARY KEY, jobid int, level text, message text,
    createdat timestamptz DEFAULT now());
CREATE SCHEMA users;
CREATE TABLE users.session (id serial PRIMARY KEY, userid text, token text,
    createdat timestamptz DEFAULT now(), revokedat timestamptz);
CREATE SCHEMA system;
CREATE TABLE system.auditlog (id serial PRIMARY KEY, action text,
    createdat timestamptz DEFAULT now());
CREATE SCHEMA analytics;
CREATE TABLE analytics.pageview (id serial PRIMARY KEY, path text, at timestamptz DEFAULT now());
CREATE TABLE analytics.pageview_2025_01 (id serial PRIMARY KEY, path text);
CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL);
INSERT INTO crawler.job (sourceid, status, scheduledat, startedat) VALUES
    (1, 'running', now() - interval '3 hours', now() - interval '2 hours'),
    (2, 'running', now() - interval '2 hours', now() - interval '90 minutes'),
    (3, 'running', now(), now() - interval '1 minute'),
    (4, 'pending', now(), NULL);
INSERT INTO crawler.log (jobid, level, message) VALUES
    (1, 'ERROR', 'fetch https://example.org: 429 Too Many Requests'),
    (2, 'WARN', 'retrying after 403');
INSERT INTO users.session (userid, token) VALUES ('u-42', 't1'), ('u-42', 't2'), ('u-7', 't3');
INSERT INTO system.auditlog (action) VALUES ('login'), ('token.reuse');
INSERT INTO analytics.pageview (path) SELECT '/p/' || g FROM generate_series(1, 50) g;
INSERT INTO schema_migrations VALUES (5, true);
CREATE TABLE counter (n int NOT NULL);
INSERT INTO counter VALUES (0);
"""


def target_database_name(console_url: str) -> str:
    """Named after the console's database, so two test runs on one server (each with
    its own console database) never share or drop each other's target."""
    return urlsplit(console_url).path.lstrip("/") + "_target"


def create_target_database(console_url: str) -> str:
    """A fresh target database; returns its URL."""
    name = target_database_name(console_url)
    admin = with_database(console_url, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = with_database(console_url, name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(TARGET_SCHEMA)
    return url


def reset_target_data(url: str) -> None:
    """The seeded rows as they were: for a test whose expectation depends on them
    (another test's actions, in any order, really change the target)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "DROP SCHEMA IF EXISTS crawler, users, system, analytics CASCADE;"
            "DROP TABLE IF EXISTS schema_migrations, counter;"
        )
        conn.execute(TARGET_SCHEMA)


def drop_target_database(console_url: str) -> None:
    name = target_database_name(console_url)
    with psycopg.connect(
        with_database(console_url, "postgres"), autocommit=True
    ) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def yomira_api(request: Request) -> Response:
    """The Yomira API and CDN, as far as the runbook uses them."""
    path, method = request.path, request.method
    if path == "/health/ready":
        return _json({"status": "ok", "database": "ok", "redis": "ok", "storage": "ok"})
    if path == "/covers/test.webp":
        return Response(b"RIFF....WEBP", content_type="image/webp")
    if path == "/debug/pprof/goroutine":
        return Response("goroutine profile: total 42\n", content_type="text/plain")
    if path.startswith("/api/v1/admin/"):
        if request.headers.get("Authorization") != f"Bearer {ADMIN_TOKEN}":
            return _json({"error": "unauthorized"}, 401)
        body = request.get_data(as_text=True)
        echo = {
            "ok": True,
            "method": method,
            "path": path,
            "received": body,
            # A careless API that echoes the token: redaction must remove it.
            "auth_seen": request.headers.get("Authorization"),
        }
        return _json(echo)
    if path == "/redirect-elsewhere":
        return Response(
            status=302, headers={"Location": "http://169.254.169.254/latest/"}
        )
    return _json({"error": "not found", "path": path}, 404)


def _json(payload: dict, status: int = 200) -> Response:
    return Response(json.dumps(payload), status=status, content_type="application/json")


class SilentServer:
    """Accepts TCP connections and never answers: the target that hangs."""

    def __init__(self) -> None:
        import threading

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(50)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()
