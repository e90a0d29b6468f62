"""How a dataset's report reads on its page: an error's sentence without the
place the table shows apart, with the names it quotes in `backticks` set as
code."""

import re

from django import template
from django.utils.html import escape
from django.utils.safestring import mark_safe

from datasets_app import engine

register = template.Library()

_QUOTED = re.compile(r"`([^`\n]+)`")


@register.filter
def problem(error: dict) -> str:
    """The error's sentence, its place left out, its `names` as <code>."""
    sentence = escape(engine.problem_of(error))
    return mark_safe(_QUOTED.sub(r"<code>\1</code>", sentence))  # noqa: S308  (escaped above)


@register.filter
def place(error: dict) -> str:
    """A line's number ("12"), else "element 3" or "row 7"; "" for the file as a whole."""
    line = error.get("line")
    if line is None:
        return ""
    where = engine.where_of(error)
    return f"{line:,}" if where == "line" else f"{where} {line:,}"
