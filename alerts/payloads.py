"""Webhook bodies, validated: Alertmanager's (version 4) and Grafana's contact point
(version 1), both read into one shape. Unknown fields are ignored (newer versions
add some); a missing or malformed field is named in the error (`alerts.0.labels`).

Facts from a real Alertmanager 0.25 (tests/fixtures/alertmanager/README.md):
firing alerts carry `endsAt: 0001-01-01T00:00:00Z`, which means "no end yet"; a
resolved notification lists only the alerts not reported resolved before."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

# Label and annotation sizes: generous for real alerts, bounded for storage.
MAX_ALERTS = 2000
MAX_LABELS = 100
MAX_VALUE = 8192


class PayloadError(ValueError):
    """A body that can never succeed: the message names the field."""


def _labels(value: dict) -> dict:
    if len(value) > MAX_LABELS:
        raise ValueError(f"at most {MAX_LABELS} entries")
    for key, item in value.items():
        if not isinstance(item, str):
            raise ValueError(f"{key!r} must be a string")
        if len(key) > 200 or len(item) > MAX_VALUE or "\x00" in key + item:
            raise ValueError(f"{key!r} is too long or holds a NUL character")
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", str_max_length=MAX_VALUE)


class AlertIn(_Model):
    status: str = Field(pattern="^(firing|resolved)$")
    labels: dict[str, object]
    annotations: dict[str, object] = Field(default_factory=dict)
    startsAt: datetime  # noqa: N815 - the payload's own names
    endsAt: datetime | None = None  # noqa: N815
    generatorURL: str = ""  # noqa: N815
    fingerprint: str = Field(default="", max_length=64)

    _check_labels = field_validator("labels", "annotations")(_labels)

    @field_validator("startsAt")
    @classmethod
    def _starts(cls, value: datetime) -> datetime:
        return _sane_time(value)

    @field_validator("endsAt")
    @classmethod
    def _ends(cls, value: datetime | None) -> datetime | None:
        return None if value is None else _sane_time(value, zero_is_none=True)

    @field_validator("labels")
    @classmethod
    def _has_labels(cls, value: dict) -> dict:
        if not value:
            raise ValueError("an alert needs at least one label")
        return value


class AlertmanagerIn(_Model):
    version: str = "4"
    receiver: str = Field(default="", max_length=500)
    status: str = Field(pattern="^(firing|resolved)$")
    alerts: list[AlertIn] = Field(max_length=MAX_ALERTS)
    groupKey: str = Field(min_length=1, max_length=MAX_VALUE)  # noqa: N815
    groupLabels: dict[str, object] = Field(default_factory=dict)  # noqa: N815
    truncatedAlerts: int = 0  # noqa: N815

    _check_labels = field_validator("groupLabels")(_labels)

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        if value != "4":
            raise ValueError(f"webhook version {value} is not supported (4 is)")
        return value


class GrafanaIn(AlertmanagerIn):
    version: str = "1"
    title: str = ""
    message: str = ""
    orgId: int | None = None  # noqa: N815

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        if value != "1":
            raise ValueError(f"webhook version {value} is not supported (1 is)")
        return value


@dataclass(frozen=True)
class Alert:
    status: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime
    ends_at: datetime | None
    generator_url: str
    fingerprint: str

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "")

    @property
    def firing(self) -> bool:
        return self.status == "firing"


@dataclass(frozen=True)
class Notification:
    receiver: str
    status: str
    group_key: str
    group_labels: dict[str, str]
    alerts: list[Alert]
    truncated: int


def parse(kind: str, body: bytes) -> Notification:
    """The body as a Notification, or PayloadError naming what is wrong."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadError(f"The body is not JSON: {exc}.") from None
    if not isinstance(data, dict):
        raise PayloadError("The body must be a JSON object.")
    if b"\\u" in body:  # only an escape can smuggle in what cannot be stored
        found = _unstorable_at(data)
        if found:
            raise PayloadError(f"{found[0]}: holds {found[1]}, which cannot be stored.")
    model = GrafanaIn if kind == "grafana" else AlertmanagerIn
    try:
        payload = model.model_validate(data)
    except ValidationError as exc:
        raise PayloadError(_describe(exc)) from None
    return Notification(
        receiver=payload.receiver,
        status=payload.status,
        group_key=payload.groupKey,
        group_labels=dict(payload.groupLabels),
        alerts=[_alert(a) for a in payload.alerts],
        truncated=max(0, payload.truncatedAlerts),
    )


def _unstorable(text: str) -> str:
    """What in a string PostgreSQL cannot store ("" if nothing): a NUL, or a lone
    surrogate escape (not UTF-8, so jsonb and text both refuse it)."""
    if "\x00" in text:
        return "a NUL character (\\u0000)"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "a lone surrogate escape (\\ud800-\\udfff), not UTF-8"
    return ""


def _unstorable_at(value: object, path: str = "") -> tuple[str, str] | None:
    """Where the first string PostgreSQL cannot store is, as a dotted path
    (`alerts.0.labels.job`), and what is wrong with it."""
    if isinstance(value, str):
        what = _unstorable(value)
        return (path or "body", what) if what else None
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        # A bad key is named, not repeated (it would break the message too).
        shown = str(key).encode("utf-8", "backslashreplace").decode()
        shown = shown.replace("\x00", "\\u0000")
        here = f"{path}.{shown}" if path else shown
        what = _unstorable(key) if isinstance(key, str) else ""
        if what:
            return here, what
        found = _unstorable_at(item, here)
        if found:
            return found
    return None


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors()[:5]:
        where = ".".join(str(part) for part in error["loc"]) or "body"
        problems.append(f"{where}: {error['msg']}")
    more = exc.error_count() - len(problems)
    return "; ".join(problems) + (f" (and {more} more)" if more > 0 else "")


# Alert times outside these years are refused: PostgreSQL stores them (BC dates,
# year 10000 after a negative offset) but cannot read them back into Python.
EARLIEST, LATEST = 1970, 2200


def _sane_time(value: datetime, *, zero_is_none: bool = False) -> datetime | None:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if zero_is_none and value.year < 1970:
        return None  # Alertmanager's 0001-01-01: no end yet
    try:
        year = value.astimezone(UTC).year
    except OverflowError:
        year = value.year
    if not EARLIEST <= year <= LATEST:
        raise ValueError(f"must be between {EARLIEST} and {LATEST}")
    return value


def _no_end(value: datetime | None) -> datetime | None:
    """Alertmanager's zero time (year 1) means the alert has not ended."""
    if value is None or value.year < 1970:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _alert(a: AlertIn) -> Alert:
    labels = {k: str(v) for k, v in a.labels.items()}
    starts = a.startsAt if a.startsAt.tzinfo else a.startsAt.replace(tzinfo=UTC)
    return Alert(
        status=a.status,
        labels=labels,
        annotations={k: str(v) for k, v in a.annotations.items()},
        starts_at=starts,
        ends_at=_no_end(a.endsAt),
        generator_url=a.generatorURL,
        # Grafana and old senders may omit it: the label set identifies the alert.
        fingerprint=a.fingerprint or label_fingerprint(labels),
    )


def label_fingerprint(labels: dict[str, str]) -> str:
    canonical = json.dumps(sorted(labels.items()), separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]
