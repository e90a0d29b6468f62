"""Following a generation from async code that is not a consumer (the
OpenAI-compatible views): join its group on a channel of our own, send the
request, then yield the worker's messages in order until it is done.

Messages (sent by serving/worker.py to `generation_group(id)`):
  {"type": "generation.started", "seq": 0, "id"}
  {"type": "generation.progress", "seq": n, "id", "texts": [str per pane]}
  {"type": "generation.done", "seq": n, "id", "status", "error", "error_detail",
   "results": [...]}
Texts are cumulative, so a message lost or overtaken costs nothing: the
next one carries everything. `seq` orders them. `error_detail` (and each
result's) is for staff only: `generations.done_as_seen_by` leaves it out for
anyone else.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from serving.errors import sentence
from serving.services import generations


def failure_message(generation_id, error: str) -> dict:
    return {
        "type": "generation.done",
        "seq": 1 << 30,
        "id": str(generation_id),
        "status": "failed",
        "error": error,
        "results": [],
    }


async def follow(generation_id) -> AsyncIterator[dict]:
    """Dispatch the (already stored) generation and yield its messages.

    Ends after the done message. When no worker takes the request within the
    start timeout, or a taken one goes silent past the idle timeout, the
    generation is failed and a done message saying why is yielded. Closing
    the iterator early (the client went away) asks the worker to stop.
    """
    layer = get_channel_layer()
    channel = await layer.new_channel()
    group = generations.generation_group(generation_id)
    await layer.group_add(group, channel)
    finished = False
    try:
        await sync_to_async(generations.dispatch)(generation_id)
        last_seq = -1
        started = False
        while True:
            timeout = (
                settings.TAILOR_GENERATION_IDLE_TIMEOUT_SECONDS
                if started
                else settings.TAILOR_GENERATION_START_TIMEOUT_SECONDS
            )
            try:
                message = await asyncio.wait_for(layer.receive(channel), timeout)
            except TimeoutError:
                if started:
                    error = sentence("worker_silent", seconds=timeout)
                elif await sync_to_async(generations.give_up_unstarted)(generation_id):
                    error = generations.no_worker_message()
                else:
                    # A worker took it just now: its first message is on its way.
                    started = True
                    continue
                finished = True
                yield failure_message(generation_id, error)
                return
            started = True
            if message.get("seq", 0) <= last_seq:
                continue
            last_seq = message["seq"]
            if message["type"] == "generation.done":
                finished = True
            yield message
            if finished:
                return
    finally:
        await layer.group_discard(group, channel)
        if not finished:
            await sync_to_async(generations.request_cancel)(generation_id)
