"""A job's tags in templates: `job|tag_names`, as the API lists them."""

from django import template

from jobs.services.organise import tag_names as names_of

register = template.Library()


@register.filter
def tag_names(job) -> list[str]:
    return names_of(job)
