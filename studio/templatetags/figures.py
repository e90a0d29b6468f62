"""`figure_label`, `figure` and `figure_change`: a metric's label and value as
studio/figures.py words them.

    {{ name|figure_label }}           "Trained tokens"
    {{ value|figure:name }}           "54,692"
    {{ difference|figure_change:name }}  "+12.5 pts"
    {% for name, value in metrics|figures_in_order %}  in FIGURES' order
"""

from django import template

from studio import figures

register = template.Library()


@register.filter
def figures_in_order(metrics) -> list:
    return figures.in_order(metrics or {})


@register.filter
def figure_label(name) -> str:
    return figures.label(name)


@register.filter
def figure(value, name) -> str:
    return figures.value(name, value)


@register.filter
def figure_change(difference, name) -> str:
    return figures.change(name, difference)
