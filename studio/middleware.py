"""The studio's middleware: `SyncAndAsync`, the base that keeps a middleware
off the event loop's way, and X-RateLimit-* headers on answers to requests
made with an API token.

Whatever counted the request against its token's limit (the DRF throttle for
/api/v1/, `authenticate` for /v1/) leaves the `Quota` on the Django request
as `rate_limit`; this adds it to the answer, refusals (429) included.
"""

from asgiref.sync import iscoroutinefunction, markcoroutinefunction


def add_rate_limit_headers(request, response):
    quota = getattr(request, "rate_limit", None)
    if quota is not None:
        response.headers.setdefault("X-RateLimit-Limit", str(quota.limit))
        response.headers.setdefault("X-RateLimit-Remaining", str(quota.remaining))
    return response


class SyncAndAsync:
    """A middleware of both kinds, so that the async /v1/ views (streams)
    stay on the event loop: `before(request)` runs first (it may raise),
    `after(request, response)` on the answer."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def before(self, request) -> None:
        pass

    def after(self, request, response):
        return response

    def __call__(self, request):
        if self.is_async:
            return self.__acall__(request)
        self.before(request)
        return self.after(request, self.get_response(request))

    async def __acall__(self, request):
        self.before(request)
        return self.after(request, await self.get_response(request))


class RateLimitHeadersMiddleware(SyncAndAsync):
    def after(self, request, response):
        return add_rate_limit_headers(request, response)
