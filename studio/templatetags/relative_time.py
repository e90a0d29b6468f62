"""`until`: how far off a future time is, for tables ("12 days", "5 hours")."""

from django import template
from django.utils import timezone
from django.utils.timesince import timeuntil
from django.utils.translation import ngettext

register = template.Library()


@register.filter
def until(value) -> str:
    # Whole days once it is a day away: Django's `timeuntil` would call 12
    # days "1 week, 5 days", and with one unit, "1 week". The exact time is
    # in the cell's title.
    if not value:
        return ""
    now = timezone.now()
    days = (value - now).days
    if days >= 1:
        return ngettext("%(days)d day", "%(days)d days", days) % {"days": days}
    return timeuntil(value, now, depth=1)
