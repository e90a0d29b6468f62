"""Running a websocket scenario on an event loop of its own, and tidying up after it.

Playwright's session-wide browser keeps an event loop in the test thread, so
a scenario runs in a thread of its own. It also gets a channel layer of its
own: channels_redis remembers which loop is receiving, and a consumer left
waiting on its channel (a refused socket's, say) would otherwise make every
later scenario fail with "Two event loops are trying to receive()". What is
still running when the scenario ends is cancelled, with a bounded wait, so
that no test can hang on another's leftovers.
"""

import asyncio
from concurrent.futures import ThreadPoolExecutor

from channels.layers import channel_layers

TEARDOWN_SECONDS = 5


def run_in_own_loop(scenario, timeout: float = 60):
    """Run `scenario()` (a coroutine function) to the end, or fail after `timeout` seconds."""

    def run():
        loop = asyncio.new_event_loop()
        try:
            return loop.run_until_complete(asyncio.wait_for(scenario(), timeout))
        finally:
            leftovers = asyncio.all_tasks(loop)
            for task in leftovers:
                task.cancel()
            if leftovers:
                loop.run_until_complete(asyncio.wait(leftovers, timeout=TEARDOWN_SECONDS))
            loop.close()

    channel_layers.backends.clear()  # a layer for this scenario's loop alone
    try:
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(run).result(timeout + 2 * TEARDOWN_SECONDS)
    finally:
        channel_layers.backends.clear()


def socket_for(user, path: str):
    """A websocket to `path` of the whole ASGI application, as the browser
    reaches it, signed in as `user` (the scope's user replaces the session,
    as AuthMiddlewareStack would set it)."""
    from channels.testing import WebsocketCommunicator

    from studio.asgi import application

    communicator = WebsocketCommunicator(application, path)
    communicator.scope["user"] = user
    communicator.scope["headers"] = [(b"host", b"127.0.0.1"), (b"origin", b"http://127.0.0.1")]
    return communicator
