"""The drills' events in words, as the timeline and the exports say them."""

from __future__ import annotations

from django.utils import timezone

from drills.timeline import describe_drill
from incidents import timeline
from incidents.models import AuditEvent


def event(verb: str, **data: object) -> AuditEvent:
    return AuditEvent(verb=verb, data=data, created_at=timezone.now())


def test_a_simulated_step_reads_as_simulated():
    said = describe_drill(
        event(
            "drill.simulated",
            step=3,
            command="docker compose restart redis",
            did="restarted the Redis container",
        ),
        timeline.PLAIN,
    )
    assert said == (
        "simulated `docker compose restart redis` (step 3) in the drill: "
        "restarted the Redis container"
    )


def test_the_other_drill_events():
    assert "healed 42 s after" in describe_drill(
        event("drill.healed", mitigation_seconds=42), timeline.PLAIN
    )
    assert (
        describe_drill(
            event("drill.abandoned", drill=7, why="Redis started again"), timeline.PLAIN
        )
        == "abandoned drill #7: Redis started again"
    )
    fired = describe_drill(
        event(
            "drill.alert_fired",
            drill=7,
            scenario="redis-stopped",
            injected=["Redis stopped (process gone)"],
            alert="HealthCheckFailing",
        ),
        timeline.PLAIN,
    )
    assert "Redis stopped (process gone)" in fired and "HealthCheckFailing" in fired


def test_registered_where_the_timeline_offers_a_table():
    describers = getattr(timeline, "DESCRIBERS", None)
    if describers is None:
        return  # incidents.timeline has no table yet (asked of the lead)
    assert describers["drill."] is describe_drill
