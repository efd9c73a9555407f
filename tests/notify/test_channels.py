"""The channel kinds' table and the small rules every send relies on: how long to
wait before trying again, how severities map onto PagerDuty's."""

from __future__ import annotations

from email.utils import format_datetime

from django.utils import timezone

from notify import escalation, services
from notify.channels import KINDS, kind
from notify.channels.base import retry_after
from notify.channels.pagerduty import severity
from notify.models import Channel


def test_every_channel_kind_is_in_the_table_and_tells_about_trigger():
    assert list(KINDS) == list(Channel.Kind.values)
    for name in KINDS:
        assert kind(name).name == name and "trigger" in kind(name).events


def test_retry_after_reads_seconds_and_dates():
    assert retry_after("7") == 7.0
    assert retry_after(None) is None and retry_after("soon") is None
    later = timezone.now() + timezone.timedelta(seconds=90)
    assert 80 < retry_after(format_datetime(later, usegmt=True)) <= 90


def test_backoff_doubles_honours_retry_after_and_is_capped(settings):
    settings.NOTIFY_RETRY_BASE_SECONDS = 10
    settings.NOTIFY_RETRY_MAX_SECONDS = 60
    assert [services.backoff(n, None) for n in (1, 2, 3, 4)] == [10, 20, 40, 60]
    assert services.backoff(1, 3) == 3 and services.backoff(1, 3600) == 60


def test_severities_map_onto_pagerdutys_four():
    found = [severity(s) for s in ("Critical", "warning", "info", "high", "")]
    assert found == ["critical", "warning", "info", "error", "error"]


def test_the_escalation_delays_skip_a_typo_and_keep_the_rest(settings):
    settings.NOTIFY_ESCALATE_AFTER = "critical=5, Warning=15,info=soon,low=0"
    assert escalation.thresholds() == {"critical": 5, "warning": 15}
    settings.NOTIFY_ESCALATE_AFTER = {"critical": 2}
    assert escalation.thresholds() == {"critical": 2}


def test_an_answer_keeps_neither_the_webhook_url_nor_its_token():
    secret = "https://hooks.slack.com/services/T1/B2/tokenvalue123"
    text = services.mask(
        f"bad call to {secret} and /services/T1/B2/tokenvalue123", secret
    )
    assert "tokenvalue123" not in text and "••••" in text
