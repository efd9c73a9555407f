"""Shared fixtures: the bundled runbook, imported once per test that needs it, and
personas (each role signed in through a real session)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from incidents.models import Runbook
from incidents.services import import_runbook

ROOT = Path(__file__).resolve().parent.parent
YOMIRA_RUNBOOK = ROOT / "runbooks" / "yomira.md"
TEST_RUNBOOKS = Path(__file__).resolve().parent / "runbooks"
PASSWORD = "correct-horse-battery"


@pytest.fixture(scope="session")
def yomira_source() -> bytes:
    return YOMIRA_RUNBOOK.read_bytes()


@pytest.fixture
def yomira(db, yomira_source) -> Runbook:
    return import_runbook(source=yomira_source, source_name="yomira.md").runbook


@pytest.fixture
def make_user(db):
    def make(username: str, **fields) -> object:
        user = get_user_model().objects.create_user(
            username, password=PASSWORD, **fields
        )
        return user

    return make


@pytest.fixture
def responder(make_user):
    return make_user("rita")


@pytest.fixture
def responder_client(responder) -> Client:
    client = Client()
    client.force_login(responder)
    return client
