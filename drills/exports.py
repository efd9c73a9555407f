"""The scorecard in a drill incident's post-mortem. The incidents app cannot import
drills (the layering points the other way), so it offers a list of post-mortem
sections that other apps fill in at start-up: `incidents.exports.POSTMORTEM_SECTIONS`,
each a function (incident) -> Markdown ("" to add nothing)."""

from __future__ import annotations

from incidents import exports
from incidents.models import Incident

from . import scorecards
from .models import Drill


def scorecard_section(incident: Incident) -> str:
    if not incident.drill:
        return ""
    drill = Drill.objects.filter(incident=incident).first()
    return scorecards.markdown(drill) if drill is not None else ""


def register() -> None:
    """Add the section where incidents offers one (once, however often called)."""
    sections = getattr(exports, "POSTMORTEM_SECTIONS", None)
    if sections is not None and scorecard_section not in sections:
        sections.append(scorecard_section)
