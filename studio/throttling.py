"""The native API's rate limit: requests a minute per user of API tokens, and
per token for a token with a limit of its own (see `studio.services.rate_limits`).
Browser sessions are not limited."""

from rest_framework import exceptions
from rest_framework.throttling import BaseThrottle

from studio.models import ApiToken
from studio.services.rate_limits import Quota, count_request


class TokenRateLimited(exceptions.Throttled):
    """429 with the limit in the message and Retry-After (DRF's handler adds
    the header from `wait`)."""

    def __init__(self, quota: Quota):
        # No `wait` to the parent: it would append its own "Expected available
        # in N seconds." to a message that already says when.
        super().__init__(detail=quota.message)
        self.wait = quota.retry_after


class ApiTokenRateThrottle(BaseThrottle):
    def allow_request(self, request, view):
        if not isinstance(request.auth, ApiToken):
            return True
        quota = count_request(request.auth)
        if quota is None:
            return True
        # On the Django request, where RateLimitHeadersMiddleware finds it.
        request._request.rate_limit = quota
        if quota.exceeded:
            raise TokenRateLimited(quota)
        return True
