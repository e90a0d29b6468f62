"""Per-token request limits, counted in Redis so that every web process shares one count.

Each token gets a fixed one-minute window that its first request opens: one
INCR (and, for the window's first request, PEXPIRE) in a Lua script, so the
count and its expiry never part. A fixed window may let a token through twice
its limit across a window's edge; the limit is there to stop a runaway script
from crowding out everyone else, and for that one round trip and one key per
token is the right price.

Redis being unreachable must not take the API down with it: the request
passes, and a warning is logged (at most once a minute per process).
"""

import functools
import logging
import math
import time
from dataclasses import dataclass

import redis
from django.conf import settings

from studio.models import ApiToken

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60
# The most requests a minute `create_token --rate-limit` accepts (0 is unlimited).
MAX_RATE_LIMIT = 1_000_000
WARNING_INTERVAL_SECONDS = 60

# KEYS[1]: the token's counter; ARGV[1]: the window in milliseconds.
# Returns {requests in this window, milliseconds until it closes}.
COUNT_REQUEST = """
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
    redis.call('PEXPIRE', KEYS[1], ARGV[1])
    ttl = tonumber(ARGV[1])
end
return {count, ttl}
"""


@dataclass(frozen=True)
class Quota:
    """Where a token stands in its current window, after counting this request."""

    limit: int
    count: int
    resets_in_ms: int

    @property
    def exceeded(self) -> bool:
        return self.count > self.limit

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.count)

    @property
    def retry_after(self) -> int:
        """Whole seconds until the window frees (at least 1), for Retry-After."""
        return max(1, math.ceil(self.resets_in_ms / 1000))

    @property
    def message(self) -> str:
        seconds = "1 second" if self.retry_after == 1 else f"{self.retry_after} seconds"
        return (
            f"Rate limit reached: this API token may make {self.limit:,} requests a minute. "
            f"Try again in {seconds}."
        )


def limit_for(token: ApiToken) -> int:
    """Requests a minute the token may make; 0 is unlimited."""
    if token.rate_limit_per_minute is None:
        return settings.TAILOR_API_RATE_LIMIT
    return token.rate_limit_per_minute


def personal_limit_problem(limit: int) -> str | None:
    """Why a user may not give one of their tokens this limit (1 or more), or None.

    Users may only lower the studio's limit for a token (to keep a script in
    check); raising it is an operator's call (`create_token --rate-limit`).
    """
    ceiling = settings.TAILOR_API_RATE_LIMIT or MAX_RATE_LIMIT
    if limit > ceiling:
        if settings.TAILOR_API_RATE_LIMIT:
            return f"must be at most {ceiling:,}, the studio's limit; an operator may set more."
        return f"must be at most {ceiling:,}."
    return None


def rate_limit_key(token: ApiToken) -> str:
    return f"tailor:rate-limit:{token.pk}"


@functools.cache
def _count_script(url: str):
    # Short timeouts: a Redis that hangs would otherwise hold every API request.
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
    return client.register_script(COUNT_REQUEST)


def count_request(token: ApiToken) -> Quota | None:
    """Count one request made with `token` and say where it stands.

    None when the token is unlimited, or when Redis cannot be reached (the
    request should pass; a warning is logged). The caller refuses the request
    when the returned quota is `exceeded`.
    """
    limit = limit_for(token)
    if limit == 0:
        return None
    try:
        count, resets_in_ms = _count_script(settings.REDIS_RATE_LIMIT_URL)(
            keys=[rate_limit_key(token)], args=[WINDOW_SECONDS * 1000]
        )
    except redis.RedisError as exc:
        _warn_unreachable(exc)
        return None
    return Quota(limit=limit, count=int(count), resets_in_ms=int(resets_in_ms))


_last_warning = {"at": -math.inf}


def _warn_unreachable(exc: Exception) -> None:
    # Once a minute: during an outage every API request would log it otherwise.
    now = time.monotonic()
    if now - _last_warning["at"] >= WARNING_INTERVAL_SECONDS:
        _last_warning["at"] = now
        logger.warning("API rate limits are not enforced: Redis cannot be reached (%s).", exc)
