"""`{% simulation incident command as did %}`: what "simulate" would do for a
manual command in a running drill ("" when nothing is offered)."""

from django import template

from incidents.models import Command, Incident

from ..services import simulation_for

register = template.Library()


@register.simple_tag
def simulation(incident: Incident | None, command: Command) -> str:
    if incident is None or not getattr(incident, "drill", False):
        return ""
    return simulation_for(incident, command)
