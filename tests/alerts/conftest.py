"""The alerts tests' world: the bundled runbook imported, an Alertmanager and a
Grafana source with their tokens, and a way to post a webhook body and apply it
the way the worker would (after the commit)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.test import Client

from alerts import intake, sources
from alerts.models import AlertSource, Receipt
from incidents.actors import Actor

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "alertmanager"


def fixture_body(name: str) -> dict:
    """The webhook body of a captured request (tests/fixtures/alertmanager)."""
    data = json.loads((FIXTURES / name).read_text())
    if "attempts" in data:
        data = data["attempts"][-1]
    return data["body"]


@dataclass
class Hook:
    source: AlertSource
    token: str
    client: Client
    capture: object

    @property
    def url(self) -> str:
        return f"/hooks/{self.source.kind}/{self.source.name}"

    def post(self, body: dict | bytes | str, token: str | None = None, **headers: str):
        """POST as the sender would; returns the response (nothing processed yet)."""
        raw = (
            body
            if isinstance(body, bytes)
            else (body.encode() if isinstance(body, str) else json.dumps(body).encode())
        )
        auth = {
            "HTTP_AUTHORIZATION": f"Bearer {self.token if token is None else token}"
        }
        if token == "":
            auth = {}
        extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
        return self.client.post(
            self.url, data=raw, content_type="application/json", **auth, **extra
        )

    def deliver(self, body: dict, **headers: str) -> intake.Applied:
        """POST and apply it as the worker does once the request has committed."""
        with self.capture(execute=False):
            response = self.post(body, **headers)
        assert response.status_code == 202, response.content
        return intake.process(response.json()["receipt"])


@pytest.fixture(autouse=True)
def _sources_read_afresh():
    """Each test reads sources from the database (the per-process cache of
    alerts.sources would carry one test's source into the next)."""
    sources.forget_cached()
    yield
    sources.forget_cached()


@pytest.fixture
def alertmanager(yomira, django_capture_on_commit_callbacks) -> Hook:
    source, token = sources.create(
        name="prod-am", kind="alertmanager", actor=Actor.system("test")
    )
    return Hook(source, token, Client(), django_capture_on_commit_callbacks)


@pytest.fixture
def grafana(yomira, django_capture_on_commit_callbacks) -> Hook:
    source, token = sources.create(
        name="grafana", kind="grafana", actor=Actor.system("test")
    )
    return Hook(source, token, Client(), django_capture_on_commit_callbacks)


def receipts() -> int:
    return Receipt.objects.count()
