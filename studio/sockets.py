"""Websockets that outlive the channel layer: one idea, for every live page.

A consumer listens on two things, its client and the channel layer (Redis).
In channels, an error from the layer (Redis died or restarted) ends the
consumer while the browser's socket can stay open and silent. With
`SurvivesLayerLoss` the consumer keeps its socket: it waits for Redis to come
back, joins its group again (a restarted Redis has forgotten it) and goes on
listening. Meanwhile the page's own asks (on a gap, and its periodic
resync) are answered from the database as usual, so the page converges on
what the database holds without a reload.

Trade-off: live messages sent while Redis was away are lost, as any may be;
the page's resync, at most 10 s away, brings what they carried.
"""

import asyncio
import contextlib
import logging

import redis
from channels.exceptions import StopConsumer
from channels.layers import get_channel_layer
from channels.utils import await_many_dispatch

logger = logging.getLogger(__name__)

# How long to wait before listening again once the channel layer failed.
RETRY_S = 1.0


class SurvivesLayerLoss:
    """Mix in before an async channels consumer class; it keeps the one
    group named by `self.group` (when set) joined across a Redis restart."""

    async def __call__(self, scope, receive, send):
        # channels' AsyncConsumer.__call__, with a channel receive that
        # survives the layer's errors instead of ending the consumer.
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.channel_name = await self.channel_layer.new_channel()
        self.channel_receive = self._receive_from_layer
        self.base_send = send
        with contextlib.suppress(StopConsumer):
            await await_many_dispatch([receive, self.channel_receive], self.dispatch)

    async def _receive_from_layer(self):
        while True:
            try:
                return await self.channel_layer.receive(self.channel_name)
            except (redis.RedisError, ConnectionError, OSError) as exc:
                logger.warning("%s lost the channel layer (%s); listening again",
                               type(self).__name__, exc)  # fmt: skip
                await asyncio.sleep(RETRY_S)
                await self._join_again()

    async def _join_again(self) -> None:
        group = getattr(self, "group", None)
        if group is None:
            return
        # Still away: the next failed receive tries again.
        with contextlib.suppress(redis.RedisError, ConnectionError, OSError):
            await self.channel_layer.group_add(group, self.channel_name)
