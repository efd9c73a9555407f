"""How the drills' events read on an incident's timeline and in its exports
("simulated `docker compose restart redis` (step 3): restarted the Redis
container"). The incidents app cannot import drills, so its timeline offers a
table of describers by verb prefix, `incidents.timeline.DESCRIBERS`, which
drills fills in at start-up."""

from __future__ import annotations

from incidents import timeline
from incidents.models import AuditEvent


def describe_drill(event: AuditEvent, style: timeline.Style) -> str:
    t, c = style.text, style.code
    d = event.data or {}
    what = event.verb.split(".", 1)[1]
    if what == "simulated":
        where = f" (step {t(str(d['step']))})" if d.get("step") else ""
        command = d.get("command") or ""
        shown = c(command) if command.strip() else "a manual step"
        return f"simulated {shown}{where} in the drill: {t(str(d.get('did', '')))}"
    if what == "alert_fired":
        injected = "; ".join(str(i) for i in d.get("injected", []))
        return (
            f"started drill #{t(str(d.get('drill')))} ({t(str(d.get('scenario', '')))})"
            f": {t(injected)}; fired {t(str(d.get('alert', '')))} through the intake"
        )
    if what == "healed":
        after = d.get("mitigation_seconds")
        took = (
            f" {t(str(after))} s after the incident opened" if after is not None else ""
        )
        return f"the drill's health probes pass: healed{took}"
    if what == "abandoned":
        why = f": {t(str(d['why']))}" if d.get("why") else ""
        return f"abandoned drill #{t(str(d.get('drill')))}{why}"
    return t(event.verb.replace(".", " "))


def register() -> None:
    """Add the describer where the timeline offers a table (once)."""
    describers = getattr(timeline, "DESCRIBERS", None)
    if describers is not None:
        describers["drill."] = describe_drill
