"""Refuse a NUL character in a request's path or query string, before any view.

PostgreSQL's text cannot hold a NUL, so a NUL reaching a filter or a lookup
(`?q=%00`, `/api/v1/models/a%00b/`) failed in the driver: a 500 on
PostgreSQL where SQLite answered normally. No name, id or search term of the
studio contains one, so the request is refused whole, with a 400 that says
where, in the shape its caller reads (`studio.api_errors.bad_request`).

Trade-off: one scan of the path and the query string per request (short
strings); bodies are checked field by field where they are read.
"""

from django.core.exceptions import SuspiciousOperation

from studio.middleware import SyncAndAsync


class NulCharacter(SuspiciousOperation):
    """Django answers a SuspiciousOperation with handler400."""


def refuse_nul(request) -> None:
    if "\x00" in request.path:
        raise NulCharacter("The address contains a NUL character (%00).")
    for key, values in request.GET.lists():
        if "\x00" in key or any("\x00" in value for value in values):
            name = key.replace("\x00", "%00")[:40]
            raise NulCharacter(f"The query parameter {name} contains a NUL character (%00).")


class RefuseNulMiddleware(SyncAndAsync):
    def before(self, request) -> None:
        refuse_nul(request)
