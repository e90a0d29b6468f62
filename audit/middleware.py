"""Sets the audit context (who, from where, which door) for each request.

Placed after AuthenticationMiddleware. The user is read when an entry is
written, so an API request's token user counts (DRF and /v1/ set
`request.user` once they have checked the token).

The admin writes its own log (LogEntry) for every add, change and delete,
in bulk for a deletion of several objects, which sends no signal. So a
staff member's unsafe admin request runs in one transaction, and before it
ends the log entries it wrote are copied into the audit log: entry and
change commit, or roll back, together.
"""

from django.db import transaction
from django.utils import timezone

from audit import context
from audit.models import Door
from audit.services import record_admin_log
from studio.middleware import SyncAndAsync

SAFE_METHODS = ("GET", "HEAD", "OPTIONS", "TRACE")


class AuditContextMiddleware(SyncAndAsync):
    def __call__(self, request):
        if self.is_async:
            return self.__acall__(request)
        with context.acting(context.for_request(request)):
            return self.get_response(request)

    async def __acall__(self, request):
        with context.acting(context.for_request(request)):
            return await self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        """The admin's unsafe requests by staff: the view, then its log copied, in
        one transaction (the view's own atomic blocks nest inside it)."""
        user = getattr(request, "user", None)
        if (
            request.method in SAFE_METHODS
            or context.door_of(request.path) != Door.ADMIN
            or user is None
            or not user.is_staff
        ):
            return None
        with transaction.atomic():
            since = timezone.now()
            response = view_func(request, *view_args, **view_kwargs)
            record_admin_log(user, since)
        return response
