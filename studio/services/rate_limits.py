"""API request limits, counted in Redis so that every web process shares one count.

The limit belongs to the user, not to the token: every request made with any
of a user's tokens counts in one window, the user's, against the studio's
TAILOR_API_RATE_LIMIT; were each token its own window, a token could mint
tokens and multiply its allowance. A token with a limit of its own (a lower
one, to keep one script in check) also counts in a window of its own, so
that its cap holds whatever the user's other scripts do. An operator may
lift a token (`create_token --rate-limit`: 0, or more than the studio's).

A window is a fixed minute that its first request opens: one INCR (and, for
the window's first request, PEXPIRE) per window in a Lua script, so a count
and its expiry never part, and both windows cost one round trip. A fixed
window may let a user through twice the limit across a window's edge; the
limit is there to stop a runaway script from crowding out everyone else, and
for that one round trip and a key or two per request is the right price.

Redis being unreachable must not take the API down with it: the request
passes, and a warning is logged (at most once a minute per process).
"""

import functools
import logging
import math
import time
from dataclasses import dataclass
from enum import StrEnum

import redis
from django.conf import settings

from studio.models import ApiToken

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60
# The most requests a minute `create_token --rate-limit` accepts (0 is unlimited).
MAX_RATE_LIMIT = 1_000_000
WARNING_INTERVAL_SECONDS = 60

# KEYS: the counters to count this request in; ARGV[1]: the window in
# milliseconds. Returns {requests in the window, milliseconds until it
# closes} for each key, in order, as one flat list.
COUNT_REQUEST = """
local result = {}
for _, key in ipairs(KEYS) do
    local count = redis.call('INCR', key)
    local ttl = redis.call('PTTL', key)
    if ttl < 0 then
        redis.call('PEXPIRE', key, ARGV[1])
        ttl = tonumber(ARGV[1])
    end
    table.insert(result, count)
    table.insert(result, ttl)
end
return result
"""


class Scope(StrEnum):
    """Whose window a quota counts: the user's (all their tokens) or one token's."""

    USER = "user"
    TOKEN = "token"


@dataclass(frozen=True)
class Quota:
    """Where one window stands, after counting this request."""

    limit: int
    count: int
    resets_in_ms: int
    scope: Scope

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
        who = "this API token may" if self.scope == Scope.TOKEN else "your API tokens together may"
        return (
            f"Rate limit reached: {who} make {self.limit:,} requests a minute. "
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


def windows(token: ApiToken) -> list[tuple[Scope, int]]:
    """The windows a request made with `token` counts in, each with its limit.

    The user's window holds the request to the studio's limit, or to the
    token's own where an operator set that higher; a token with a limit of
    its own counts in its own window too. 0 (the studio's or the token's)
    means no window.
    """
    studio, own = settings.TAILOR_API_RATE_LIMIT, token.rate_limit_per_minute
    if own == 0:
        return []
    counted = [(Scope.USER, max(studio, own or 0))] if studio else []
    if own is not None:
        counted.append((Scope.TOKEN, own))
    return counted


def rate_limit_key(token: ApiToken) -> str:
    """The counter of the token's own window."""
    return f"tailor:rate-limit:token:{token.pk}"


def user_rate_limit_key(user_id) -> str:
    """The counter of the window all of a user's tokens share."""
    return f"tailor:rate-limit:user:{user_id}"


def _key(scope: Scope, token: ApiToken) -> str:
    return rate_limit_key(token) if scope == Scope.TOKEN else user_rate_limit_key(token.user_id)


@functools.cache
def _count_script(url: str):
    # Short timeouts: a Redis that hangs would otherwise hold every API request.
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
    return client.register_script(COUNT_REQUEST)


def count_request(token: ApiToken) -> Quota | None:
    """Count one request made with `token` in each of its windows, and say
    where the tighter one stands.

    None when nothing limits the token, or when Redis cannot be reached (the
    request should pass; a warning is logged). The caller refuses the request
    when the returned quota is `exceeded`: then it is the window that holds
    the request back longest.
    """
    counted = windows(token)
    if not counted:
        return None
    try:
        replies = _count_script(settings.REDIS_RATE_LIMIT_URL)(
            keys=[_key(scope, token) for scope, _ in counted], args=[WINDOW_SECONDS * 1000]
        )
    except redis.RedisError as exc:
        _warn_unreachable(exc)
        return None
    quotas = [
        Quota(limit=limit, count=int(count), resets_in_ms=int(resets_in_ms), scope=scope)
        for (scope, limit), count, resets_in_ms in zip(
            counted, replies[::2], replies[1::2], strict=True
        )
    ]
    exceeded = [quota for quota in quotas if quota.exceeded]
    if exceeded:
        return max(exceeded, key=lambda quota: quota.resets_in_ms)
    return min(quotas, key=lambda quota: quota.remaining)


_last_warning = {"at": -math.inf}


def _warn_unreachable(exc: Exception) -> None:
    # Once a minute: during an outage every API request would log it otherwise.
    now = time.monotonic()
    if now - _last_warning["at"] >= WARNING_INTERVAL_SECONDS:
        _last_warning["at"] = now
        logger.warning("API rate limits are not enforced: Redis cannot be reached (%s).", exc)
