"""Finding one of a user's objects by id, with one 404 for missing, foreign and malformed ids."""

import uuid

from django.http import Http404


def one_or_404(queryset, object_id, message: str):
    """The object of `queryset` (already narrowed to what the user may see) with
    this UUID primary key; Http404(message) when there is none or the id is not
    a UUID, so that nobody learns whether someone else's object exists."""
    try:
        uuid.UUID(str(object_id))
    except ValueError:
        raise Http404(message) from None
    found = queryset.filter(pk=object_id).first()
    if found is None:
        raise Http404(message)
    return found
