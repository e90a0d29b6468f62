"""How /ops/ writes sizes and durations (jobs/human.py's words)."""

from pathlib import PurePath

from django import template

from jobs.human import human_bytes, human_duration

register = template.Library()


@register.filter
def size(count) -> str:
    return human_bytes(count)


@register.filter
def duration(seconds) -> str:
    return human_duration(seconds)


@register.filter
def model_name(source: str) -> str:
    """A loaded model as an operator knows it: a Hugging Face id as it is,
    a folder (a demo model, a full fine-tune) by its last part."""
    return PurePath(source).name if str(source).startswith("/") else source
