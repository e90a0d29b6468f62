"""Who is acting, from where and through which door: set once per request (or
socket message) and read by `audit.services.record`.

A context variable, not an argument threaded through every service: the
services are called by pages, both APIs, the admin, sockets and workers
alike, and only the edge knows which. `AuditContextMiddleware` sets it for
each request; a socket consumer uses `acting_from_socket`; code with no
request (workers, beat, commands) records as the `system` door.
"""

import contextlib
import contextvars
from dataclasses import dataclass, field

from axes.helpers import get_client_ip_address

from audit.models import Door


@dataclass
class Acting:
    """Where the current change comes from. `request` is read for its user
    when an entry is written, not before: an API request's user is known
    only once DRF (or /v1/'s `authenticate`) has checked its token."""

    door: str
    ip: str | None
    request: object | None = None
    user: object | None = None
    # (target_type, target_id) recorded in this request: the admin's own log
    # of a change a service recorded already is not copied (audit.services).
    recorded: set = field(default_factory=set)

    @property
    def actor(self):
        user = self.user
        if user is None and self.request is not None:
            user = getattr(self.request, "user", None)
        return user if user is not None and user.is_authenticated else None


_acting: contextvars.ContextVar[Acting | None] = contextvars.ContextVar(
    "audit_acting", default=None
)


def current() -> Acting | None:
    return _acting.get()


def door_of(path: str) -> str:
    """The door of a request path: the admin, the native API, /v1/, else a page."""
    if path.startswith("/admin/"):
        return Door.ADMIN
    if path.startswith("/api/"):
        return Door.API
    if path.startswith("/v1/"):
        return Door.OPENAI
    return Door.PAGE


def for_request(request) -> Acting:
    # The address django-axes counts failed logins by: one rule for both.
    ip = get_client_ip_address(request) or None
    return Acting(door=door_of(request.path), ip=ip, request=request)


@contextlib.contextmanager
def acting(context: Acting):
    token = _acting.set(context)
    try:
        yield context
    finally:
        _acting.reset(token)


def acting_from_socket(scope):
    """For a socket consumer's work: the page's door, the scope's user and address."""
    client = scope.get("client") or (None, None)
    return acting(Acting(door=Door.PAGE, ip=client[0], user=scope.get("user")))
