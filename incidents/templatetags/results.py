from django import template

from incidents.results import Shown, shown_result

register = template.Library()


@register.simple_tag(takes_context=True)
def result_of(context: template.Context, execution: object) -> Shown | None:
    """The run's result as tables or an HTTP answer, with pickers for what the
    viewer may run. The pickers come from the checklist being drawn (`pickers`
    in a step's context, `checklist.pickers` in an answer's), or none."""
    pickers = context.get("pickers")
    if pickers is None:
        pickers = getattr(context.get("checklist"), "pickers", None)
    incident = context.get("incident")
    return shown_result(
        execution,
        pickers,
        context.get("can"),
        active=incident is not None and incident.is_active,
    )
