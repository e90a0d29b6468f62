"""How /ops/ writes sizes and durations (jobs/human.py's words)."""

from django import template

from jobs.human import human_bytes, human_duration

register = template.Library()


@register.filter
def size(count) -> str:
    return human_bytes(count)


@register.filter
def duration(seconds) -> str:
    return human_duration(seconds)
