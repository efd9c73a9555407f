"""Parts of the console's pages that the edges contribute (the alerts that opened an
incident, the notifications sent, a playbook's unmapped escalation names).
incidents never imports an edge: an edge registers a panel when its app is ready,
and the page renders what is registered for its place."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from django.utils.html import format_html_join
from django.utils.safestring import SafeString

# The places a page offers, and what its panels are given.
INCIDENT_HEADER = "incident_header"  # fn(incident)
PLAYBOOK_HEADER = "playbook_header"  # fn(playbook)
PLACES = (INCIDENT_HEADER, PLAYBOOK_HEADER)

Panel = Callable[[object], SafeString]
_panels: dict[str, list[tuple[int, Panel]]] = defaultdict(list)


def panel(place: str, order: int = 50) -> Callable[[Panel], Panel]:
    """Register `fn(obj) -> SafeString` (a rendered template, so escaped) at a
    place; lower `order` first."""
    if place not in PLACES:
        raise ValueError(f"No page offers a panel place named {place!r}.")

    def register(fn: Panel) -> Panel:
        _panels[place].append((order, fn))
        _panels[place].sort(key=lambda pair: pair[0])
        return fn

    return register


def render(place: str, obj: object) -> SafeString:
    return format_html_join("", "{}", ((fn(obj),) for _, fn in _panels[place]))
