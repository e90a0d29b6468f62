"""`{{ job|export_memory }}`: the job page's sentence on what a merged export
takes, said before the analyst asks for one (jobs/services/artifacts.py)."""

from django import template

from jobs.services import artifacts

register = template.Library()


@register.filter
def export_memory(job) -> str:
    return artifacts.export_memory_sentence(job)
