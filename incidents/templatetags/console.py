from datetime import timedelta

from django import template
from django.conf import settings
from django.utils.safestring import SafeString

from incidents import panels, timeline
from incidents.models import AuditEvent, Command
from incidents.rendering import highlight_code
from probes import commands, targets

register = template.Library()


@register.simple_tag
def panels_at(place: str, obj: object) -> SafeString:
    """What the edges show at this place of a page (see incidents/panels.py)."""
    return panels.render(place, obj)


@register.filter
def highlight(code: str, language: str) -> SafeString:
    """Pygments-highlighted, escaped code."""
    return highlight_code(code or "", language or "text")


@register.filter
def get_item(mapping: dict | None, key: str) -> object:
    return (mapping or {}).get(key)


@register.filter
def highlight_command(command: Command) -> SafeString:
    """The command as written, its trailing comment back on its own line."""
    text = command.text
    if command.comment:
        marker = "--" if command.language == "sql" else "#"
        text = f"{text}   {marker} {command.comment}"
    return highlight_code(text, command.language or "text")


@register.filter
def describe(event: AuditEvent) -> str:
    return timeline.describe(event)


@register.filter
def event_kind(event: AuditEvent) -> str:
    return timeline.kind(event)


@register.filter
def duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {seconds:02d}s"


@register.filter
def fresh_key(command: Command) -> str:
    """A one-time key for a Run form: a double click sends the same key twice.
    A sentinel here, replaced per answer (incidents.fragments.personalise), so
    cached HTML never carries one person's key to another."""
    from incidents.fragments import REQUEST_KEY_SENTINEL

    return REQUEST_KEY_SENTINEL


@register.filter
def confirm_word(command: Command) -> str:
    return commands.confirm_word(command)


@register.filter
def missing_targets(command: Command) -> list[str]:
    return commands.missing_targets(command)


@register.filter
def site_warning(command: Command) -> str:
    """Why a run of this command would not be taken (its site has no live worker,
    or its targets are at two sites): "" when nothing to say. Cached HTML holding
    it is keyed by services.sites.signature (incidents/fragments.py)."""
    from incidents.services import sites

    return sites.warning(command)


@register.simple_tag
def drill_targets_in_use() -> bool:
    """Whether this console's targets point at the simulated Yomira stack (the top
    bar says so on every page, so nobody mistakes it for production)."""
    return bool(targets.simulated())


@register.simple_tag
def drills_available() -> bool:
    """Drills exist only beside the simulated stack (SANDBOX, development only):
    production's top bar has no link to a page that could never start one."""
    return bool(getattr(settings, "SANDBOX", False))
