"""A flood of unauthenticated webhook requests: every one refused, the first
DENIALS_AUDITED a minute from an address audited, the rest only counted, and the
count reported in the next audited denial."""

from __future__ import annotations

from types import SimpleNamespace

from alerts import sources
from incidents.models import AuditEvent


def denials() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(verb="permission.denied").order_by("seq"))


def test_a_flood_is_refused_every_time_and_audited_within_a_budget(
    alertmanager, monkeypatch
):
    now = [1_800_000_000.0]
    monkeypatch.setattr(sources, "time", SimpleNamespace(time=lambda: now[0]))
    extra = 7
    for _ in range(sources.DENIALS_AUDITED + extra):
        assert alertmanager.post({"status": "firing"}, token="wrong").status_code == 401
    audited = denials()
    assert len(audited) == sources.DENIALS_AUDITED
    assert all("not_audited_before" not in e.data for e in audited)
    # The next minute: audited again, saying how many were not.
    now[0] += 60
    assert alertmanager.post({"status": "firing"}, token="wrong").status_code == 401
    last = denials()[-1]
    assert len(denials()) == sources.DENIALS_AUDITED + 1
    assert last.data["not_audited_before"] == extra
    assert last.data["why"] == "a missing or wrong token"
    # Reported once.
    assert alertmanager.post({"status": "firing"}, token="wrong").status_code == 401
    assert "not_audited_before" not in denials()[-1].data
