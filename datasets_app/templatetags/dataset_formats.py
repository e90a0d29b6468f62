"""The formats an upload accepts, as the upload form lists them: from the
format registry (engine/formats.py), so a new format appears by itself."""

from django import template

from datasets_app import engine

register = template.Library()


@register.simple_tag
def accepted_formats() -> str:
    """ "Chat, Prompt / completion, … or Answer feedback": each format's label
    without its parenthesis."""
    names = [format.label.split(" (")[0] for format in engine.DATASET_FORMATS]
    return ", ".join(names[:-1]) + " or " + names[-1]
