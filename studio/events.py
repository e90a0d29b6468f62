"""Live events to the browser: one long-lived publisher per process.

Workers call `publish(group, message)` from synchronous code. Each process
keeps one event loop in a daemon thread and hands it group sends with
`run_coroutine_threadsafe`, instead of paying for a fresh `async_to_sync`
loop per event. A failed publish is logged and forgotten: the database holds
the truth, and a page that missed an event catches up when it reconnects.
"""

import asyncio
import logging
import os
import threading

import redis
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)


class Publisher:
    def __init__(self):
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid: int | None = None

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            # A forked Celery child inherits the parent's object but not its
            # thread: start a loop of its own.
            if self._loop is None or self._pid != os.getpid():
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="event-publisher", daemon=True
                )
                thread.start()
                self._loop, self._pid = loop, os.getpid()
            return self._loop

    def publish(self, group: str, message: dict):
        """Send `message` to `group` without waiting; returns a Future."""
        layer = get_channel_layer()
        future = asyncio.run_coroutine_threadsafe(
            _send(layer, group, message), self._running_loop()
        )
        future.add_done_callback(_log_failure)
        return future

    def drain(self, timeout: float = 5.0) -> None:
        """Wait until every send handed over so far has finished (or `timeout`
        passed): before a process exits, or when the next step must not
        overtake what was published before it."""
        with self._lock:
            loop = self._loop if self._pid == os.getpid() else None
        if loop is None:
            return
        future = asyncio.run_coroutine_threadsafe(_others_done(), loop)
        try:
            future.result(timeout)
        except TimeoutError:
            logger.warning("Live events still in flight after %.0f s", timeout)


async def _send(layer, group: str, message: dict) -> None:
    """Send once; when the connection a restarted Redis left dead fails it,
    drop the layer's pools and send once more on a fresh connection."""
    try:
        await layer.group_send(group, message)
    except (redis.RedisError, OSError):
        await layer.close_pools()
        await layer.group_send(group, message)


async def _others_done() -> None:
    current = asyncio.current_task()
    pending = [task for task in asyncio.all_tasks() if task is not current]
    await asyncio.gather(*pending, return_exceptions=True)


def _log_failure(future) -> None:
    if not future.cancelled() and future.exception() is not None:
        logger.warning("Live event not delivered: %s", future.exception())


_publisher = Publisher()


def publish(group: str, message: dict):
    return _publisher.publish(group, message)


def drain(timeout: float = 5.0) -> None:
    _publisher.drain(timeout)
