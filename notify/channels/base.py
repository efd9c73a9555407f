"""What every channel kind is given and gives back, and the one HTTP call the
webhook kinds share (timeouts, a wall-clock deadline, a capped answer)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.utils import timezone


@dataclass(frozen=True)
class DiagnosisLine:
    command: str
    state: str
    summary: str


@dataclass(frozen=True)
class ApprovalNotice:
    """An approval request as its message tells it: what would run (the command
    as the runbook wrote it, and the parameters typed), what its preview said, who
    asked, who may decide, until when, and where to decide."""

    request_id: int
    where: str  # "step 3: Drop old partitions" or "Diagnosis"
    command: str
    parameters: dict[str, str]
    requested_by: str
    approvers: str  # "abe or ada"; "" when nobody may
    expires: str  # "12:34 UTC"
    url: str  # the queue, where the request is decided in place
    preview: str = ""  # the preview's headline
    facts: list[str] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)  # the approvers' addresses


@dataclass(frozen=True)
class Brief:
    """The incident as a message tells it: plain data, read once from the
    database (notify.content), so every kind formats the same facts."""

    incident_id: int
    title: str
    url: str
    severity: str
    status: str
    playbook: str  # "§4 Redis Down / Unreachable"
    event: str  # trigger | acknowledge | resolve | escalate | approval
    note: str = ""  # "acknowledged by cole", "not acknowledged 5 minutes after ..."
    dedup_key: str = ""
    diagnosis: list[DiagnosisLine] = field(default_factory=list)
    source: str = "yomira-console"
    approval: ApprovalNotice | None = None  # the request an `approval` asks about
    drill: bool = False  # a practice incident: its messages go to the drill sink

    @property
    def label(self) -> str:
        return f"#{self.incident_id} {self.title}"


@dataclass(frozen=True)
class Answer:
    """What the other end said. `status` is the HTTP or SMTP code (None when
    nothing came back); `retry` says whether trying again can help (429, 5xx, a
    connection that failed), `retry_after` what the other end asked for."""

    status: int | None
    text: str
    retry: bool = False
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class NotConfigured(Exception):
    """The channel cannot send as configured (its secret is unset or unusable):
    a failure with a message, never retried."""


@dataclass(frozen=True)
class Kind:
    """A channel kind: which incident events it tells about, whether its message
    carries the Diagnosis results (so the first send waits briefly for them), and
    `send(brief, channel, secret) -> Answer`."""

    name: str
    events: frozenset[str]
    send: Callable[..., Answer]
    waits_for_diagnosis: frozenset[str] = frozenset()


def escape_mrkdwn(text: str) -> str:
    """Slack's three control characters: text from people and alerts must not
    turn into links, mentions (<!channel>) or markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def http_url(value: str, variable: str) -> str:
    if urlsplit(value).scheme not in {"http", "https"}:
        raise NotConfigured(f"{variable} is set but is not an http(s) URL.")
    return value


def retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: a number, or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - timezone.now()).total_seconds())


def post_json(url: str, body: dict) -> Answer:
    """POST `body`; never follows a redirect, stops reading at the answer cap and
    at the deadline (a server trickling bytes is cut off, not waited for)."""
    cap = settings.NOTIFY_ANSWER_MAX
    timeout = httpx.Timeout(
        settings.NOTIFY_TIMEOUT, connect=settings.NOTIFY_CONNECT_TIMEOUT
    )
    deadline = time.monotonic() + settings.NOTIFY_TIMEOUT
    status, wait, chunks, size = None, None, [], 0
    try:
        with (
            httpx.Client(timeout=timeout, follow_redirects=False) as client,
            client.stream("POST", url, json=body) as response,
        ):
            status = response.status_code
            wait = retry_after(response.headers.get("Retry-After"))
            for chunk in response.iter_bytes():
                chunks.append(chunk)
                size += len(chunk)
                if size >= cap or time.monotonic() > deadline:
                    break
    except httpx.TransportError as exc:
        if status is None:
            # Refused, reset, timed out before an answer: it may go through later.
            return Answer(None, f"{type(exc).__name__}: {exc}", retry=True)
        # The status line came: the message arrived, only its answer was cut.
        chunks.append(f" (answer cut off: {type(exc).__name__})".encode())
    return Answer(
        status,
        b"".join(chunks)[: cap + 64].decode("utf-8", "replace"),
        retry=status == 429 or status >= 500,
        retry_after=wait,
    )
