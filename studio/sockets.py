"""Websockets that outlive the channel layer: one idea, for every live page.

A consumer listens on two things, its client and the channel layer (Redis).
When Redis dies or restarts under an open socket, channels' dispatch loop
raises and the consumer is gone, while the browser's socket may stay open
and silent. `SurvivesLayerLoss` closes the socket instead (1012, "service
restart"), so the page reconnects, joins its groups again (a restarted Redis
has forgotten them) and asks for what it missed: every live page already
catches up from the database on reconnect.

Trade-off: a page loses its live stream for a reconnect's back-off (a second
or two) rather than staying connected with no messages.
"""

import asyncio
import contextlib
import logging

import redis

logger = logging.getLogger(__name__)

SERVICE_RESTART = 1012
# Leaving the groups is courtesy (a restarted Redis has forgotten them): never wait long.
LEAVE_TIMEOUT_S = 2


class SurvivesLayerLoss:
    """Mix in before the channels consumer class."""

    async def __call__(self, scope, receive, send):
        try:
            await super().__call__(scope, receive, send)
        except (redis.RedisError, ConnectionError, OSError) as exc:
            logger.warning("%s lost the channel layer (%s); closing its socket",
                           type(self).__name__, exc)  # fmt: skip
            # The client first: leaving the groups may wait on the same Redis.
            with contextlib.suppress(Exception):
                await send({"type": "websocket.close", "code": SERVICE_RESTART})
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.disconnect(SERVICE_RESTART), LEAVE_TIMEOUT_S)
