"""The live pages' websockets: they outlive the channel layer, and end with their session.

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

`SessionSocket`, the base of every live page's consumer, adds the other
idea: a socket ends with the session that opened it. Once accepted it joins
its user's group (studio/services/sessions.py) and closes with
SESSION_ENDED_CODE on a `session.ended` message for its session (a logout
there, a password change or a deactivation: every session of the user), and
when its session expires, which it checks at the expiry it reads and at least
every SESSION_RECHECK_S (the safety net for an ending that sent no message:
an operator deleting rows, a bulk update).
"""

import asyncio
import contextlib
import logging

import redis
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.layers import get_channel_layer
from channels.utils import await_many_dispatch
from django.db import DatabaseError
from django.utils import timezone

from studio.services.sessions import session_expiry, user_group

logger = logging.getLogger(__name__)

# How long to wait before listening again once the channel layer failed.
RETRY_S = 1.0
# The close code of a socket whose session ended: 4000-4999 are the
# application's, and 4401 echoes HTTP's 401. The page reloads on it, which
# signs in again (or keeps going, for the browser that changed its password).
SESSION_ENDED_CODE = 4401
# A socket asks whether its session still holds at least this often: one
# read of the session and one of the user per socket, every five minutes.
SESSION_RECHECK_S = 300.0
# Asked just after the session's expiry, so that the row reads as expired.
EXPIRY_MARGIN_S = 0.5
# A database that cannot be read is asked again this much later: its being
# away does not end anyone's session.
DATABASE_RETRY_S = 30.0
_LAYER_ERRORS = (redis.RedisError, ConnectionError, OSError)


class SurvivesLayerLoss:
    """Mix in before an async channels consumer class; it keeps the groups
    of `kept_groups()` (the one named by `self.group`, when set) joined
    across a Redis restart."""

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
            except _LAYER_ERRORS as exc:
                logger.warning("%s lost the channel layer (%s); listening again",
                               type(self).__name__, exc)  # fmt: skip
                await asyncio.sleep(RETRY_S)
                await self._join_again()

    def kept_groups(self) -> list[str]:
        group = getattr(self, "group", None)
        return [] if group is None else [group]

    async def _join_again(self) -> None:
        # Still away: the next failed receive tries again.
        with contextlib.suppress(*_LAYER_ERRORS):
            for group in self.kept_groups():
                await self.channel_layer.group_add(group, self.channel_name)


class SessionSocket(SurvivesLayerLoss):
    """Mix in before an async channels websocket consumer: every socket it
    accepts ends with its session (see the module's docstring).

    A consumer refuses a caller that is not signed in before it accepts; a
    socket whose scope has no session (a test's scope that names its user)
    closes only when all of the user's sessions end.
    """

    async def accept(self, *args, **kwargs):
        user = self.scope["user"]
        self.session_key = getattr(self.scope.get("session"), "session_key", None)
        self.user_group = user_group(user.pk)
        await self.channel_layer.group_add(self.user_group, self.channel_name)
        self.session_watch = None
        if self.session_key is not None:
            self.session_watch = asyncio.create_task(self._watch_session(user.pk))
        await super().accept(*args, **kwargs)

    def kept_groups(self) -> list[str]:
        user_group = getattr(self, "user_group", None)
        return super().kept_groups() + ([] if user_group is None else [user_group])

    async def websocket_disconnect(self, message):
        if getattr(self, "session_watch", None) is not None:
            self.session_watch.cancel()
        if getattr(self, "user_group", None) is not None:
            # A group left behind expires by itself: a dead layer must not keep the socket.
            with contextlib.suppress(*_LAYER_ERRORS):
                await self.channel_layer.group_discard(self.user_group, self.channel_name)
        await super().websocket_disconnect(message)

    async def session_ended(self, message):
        if message.get("session_key") in (None, self.session_key):
            await self.close(code=SESSION_ENDED_CODE)

    async def _watch_session(self, user_id) -> None:
        while True:
            try:
                expires_at = await database_sync_to_async(session_expiry)(self.session_key, user_id)
            except DatabaseError as exc:
                logger.warning("Could not check a socket's session (%s); asking again", exc)
                await asyncio.sleep(DATABASE_RETRY_S)
                continue
            if expires_at is None:
                await self.close(code=SESSION_ENDED_CODE)
                return
            until_expiry = (expires_at - timezone.now()).total_seconds() + EXPIRY_MARGIN_S
            await asyncio.sleep(min(max(until_expiry, 0.0), SESSION_RECHECK_S))
