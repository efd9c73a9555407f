"""Production settings (DEBUG off) refuse what only development may have: running
without DATABASE_URL (the embedded PostgreSQL is development's), a database that is
not PostgreSQL, and the simulated Yomira stack with its drills (SANDBOX)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

PRODUCTION = {"DEBUG": "false", "SECRET_KEY": "x" * 50, "AUDIT_HMAC_KEY": "audit"}


def check(**extra: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "SANDBOX", "DEBUG")
    }
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**env, **PRODUCTION, **extra},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_needs_a_database_url():
    done = check()
    assert done.returncode != 0
    assert "DATABASE_URL is not set" in done.stderr


@pytest.mark.parametrize("url", ["sqlite:///db.sqlite3", "mysql://u@h/d"])
def test_production_refuses_a_database_that_is_not_postgresql(url):
    done = check(DATABASE_URL=url)
    assert done.returncode != 0
    assert "must name a PostgreSQL database" in done.stderr


def test_production_refuses_the_simulated_stack():
    done = check(DATABASE_URL="postgres://u@db.example.com/yomira", SANDBOX="true")
    assert done.returncode != 0
    assert "SANDBOX=true" in done.stderr and "development only" in done.stderr


def test_production_with_a_database_url_and_no_sandbox_starts():
    # SANDBOX said outright: `make run` writes SANDBOX=true into .env, which the
    # settings read for whatever the environment leaves unset.
    done = check(DATABASE_URL="postgres://u@db.example.com/yomira", SANDBOX="false")
    assert done.returncode == 0, done.stderr
