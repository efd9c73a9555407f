"""The alert sources' credentials and counters, down to their edges: a signature
without a timestamp, the window's exact end, rotation's record, the per-minute
counters' windows (what mutation testing found unpinned)."""

from __future__ import annotations

import hashlib
import hmac
import json
from types import SimpleNamespace

from django.core.cache import cache

from alerts import sources
from alerts.models import AlertSource
from incidents.actors import Actor
from incidents.models import AuditEvent

from .test_hooks import SECRET, SECRET_ENV, grafana_body, signed


def test_a_signature_without_a_timestamp_covers_the_body_alone(grafana, monkeypatch):
    monkeypatch.setenv(SECRET_ENV, SECRET)
    AlertSource.objects.filter(pk=grafana.source.pk).update(
        hmac_secret_env=SECRET_ENV, timestamp_header=""
    )
    raw = json.dumps(grafana_body()).encode()
    mac = hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    assert grafana.post(raw, **{"X-Grafana-Alerting-Signature": mac}).status_code == 202
    empty = hmac.new(SECRET.encode(), b"", hashlib.sha256).hexdigest()
    assert (
        grafana.post(raw, **{"X-Grafana-Alerting-Signature": empty}).status_code == 401
    )


def test_the_window_ends_at_exactly_five_minutes(grafana, monkeypatch, settings):
    monkeypatch.setenv(SECRET_ENV, SECRET)
    AlertSource.objects.filter(pk=grafana.source.pk).update(hmac_secret_env=SECRET_ENV)
    now = 1_800_000_000
    monkeypatch.setattr(sources, "time", SimpleNamespace(time=lambda: float(now)))
    raw = json.dumps(grafana_body()).encode()
    window = settings.ALERT_SIGNATURE_WINDOW_SECONDS
    assert grafana.post(raw, **signed(raw, now - window)).status_code == 202
    assert grafana.post(raw, **signed(raw, now + window)).status_code == 202
    assert grafana.post(raw, **signed(raw, now - window - 1)).status_code == 401


def test_rotation_is_recorded_on_the_source_and_in_the_log(alertmanager):
    before = AlertSource.objects.get(pk=alertmanager.source.pk).token_rotated_at
    sources.rotate(source=alertmanager.source, actor=Actor.system("test"))
    source = AlertSource.objects.get(pk=alertmanager.source.pk)
    assert source.token_rotated_at > before
    rotated = AuditEvent.objects.get(verb="alert_source.token_rotated")
    assert (rotated.object_type, rotated.object_id) == ("alertsource", str(source.pk))
    created = AuditEvent.objects.get(verb="alert_source.created")
    assert created.object_id == str(source.pk)


def test_a_counter_counts_and_starts_again_when_it_expired(monkeypatch):
    assert [sources.count("k", timeout=60) for _ in range(3)] == [1, 2, 3]
    # Expired between adding and incrementing (Django's incr refuses a missing
    # key): a new window that starts at one.
    real = cache.incr

    def gone(key, delta=1):  # noqa: ANN001, ANN202
        cache.delete(key)
        return real(key, delta)

    monkeypatch.setattr(cache, "incr", gone)
    assert sources.count("k", timeout=60) == 1
    monkeypatch.undo()
    assert sources.count("k", timeout=60) == 2


def test_the_windows_are_calendar_minutes(monkeypatch):
    """A 60-second window starting on the minute: 61 would straddle two."""
    now = [3660.0 * 491_803]  # a multiple of 60 and of 61
    monkeypatch.setattr(sources, "time", SimpleNamespace(time=lambda: now[0]))
    for _ in range(sources.DENIALS_AUDITED):
        assert sources.denial_budget("10.0.0.9") is not None
    assert sources.denial_budget("10.0.0.9") is None
    now[0] += 60
    assert sources.denial_budget("10.0.0.9") == 1
    assert sources.denial_budget("10.0.0.9") == 0
    # Each address has its own budget.
    assert sources.denial_budget("10.0.0.10") == 0
