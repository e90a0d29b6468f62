"""{% sweep_fields %}: the wizard's sweep section, drawn from the posted sweep
form when the sweep page sent one back with errors, else empty."""

from django import template

register = template.Library()


@register.inclusion_tag("jobs/_sweep_fields.html", takes_context=True)
def sweep_fields(context):
    from jobs.sweep_views import form_context

    return {
        **form_context(context.get("sweep_form")),
        "sweep_open": context.get("sweep_open", False),
    }
