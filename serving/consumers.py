"""The playground's websocket: send a run, receive its panes as they grow.

The browser sends {"action": "run", "models": [...], "system", "prompt" |
"text", "max_new_tokens", "temperature", "top_p", "seed"} or {"action":
"stop"}. The consumer checks the request with the same services as the APIs,
joins the generation's group and only then sends the request to the
inference worker, so no token can be missed; it forwards the worker's
messages as {"type": "started" | "progress" | "done", ...}; a failure's
`error_detail` only to staff. Leaving the page stops the generation.
"""

import asyncio

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from audit.context import acting_from_socket
from quotas.services import QuotaExceeded
from serving.models import GenerationSource
from serving.services import generations, playground
from serving.services.generations import GenerationRequest, InvalidRequest
from serving.services.names import UnknownModel
from studio.sockets import SessionSocket


class PlaygroundConsumer(SessionSocket, AsyncJsonWebsocketConsumer):
    async def connect(self):
        # Set before any refusal: disconnect() reads them for a refused socket too.
        self.generation_id = None
        self.watchdog = None
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close()
            return
        await self.accept()

    async def disconnect(self, code):
        await self._leave(cancel=True)

    async def receive_json(self, content, **kwargs):
        action = content.get("action") if isinstance(content, dict) else None
        if action == "run":
            await self._run(content)
        elif action == "stop":
            if self.generation_id:
                await database_sync_to_async(generations.request_cancel)(self.generation_id)
        else:
            await self.send_json(
                {"type": "invalid", "errors": {"action": 'Send {"action": "run", ...}.'}}
            )

    async def _run(self, content):
        await self._leave(cancel=True)
        try:
            generation = await self._create(content)
        except UnknownModel as exc:
            await self.send_json({"type": "invalid", "errors": {"models": exc.message}})
            return
        except QuotaExceeded as exc:  # the page says it where it says the models' problems
            await self.send_json({"type": "invalid", "errors": {"models": exc.message}})
            return
        except InvalidRequest as exc:
            # The page's own words, not the API's field paths (services/playground.py).
            await self.send_json({"type": "invalid", "errors": playground.page_errors(exc.errors)})
            return
        self.generation_id = str(generation.pk)
        self.group = generations.generation_group(self.generation_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await database_sync_to_async(generations.dispatch)(self.generation_id)
        await self.send_json(
            {"type": "queued", "id": self.generation_id, "panes": generation.panes,
             "task": generation.task}
        )  # fmt: skip
        self.watchdog = asyncio.create_task(self._watch(self.generation_id))

    async def _watch(self, generation_id):
        """Fail the request if no worker takes it in time."""
        await asyncio.sleep(settings.TAILOR_GENERATION_START_TIMEOUT_SECONDS)
        if await database_sync_to_async(generations.give_up_unstarted)(generation_id):
            await self.send_json(
                {"type": "done", "id": generation_id, "status": "failed",
                 "error": generations.no_worker_message(), "results": []}
            )  # fmt: skip

    async def _leave(self, *, cancel: bool):
        if self.watchdog is not None:
            self.watchdog.cancel()
            self.watchdog = None
        if getattr(self, "generation_id", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)
            if cancel:
                await database_sync_to_async(generations.request_cancel)(self.generation_id)
            self.generation_id = None

    @database_sync_to_async
    def _create(self, content):
        request = GenerationRequest(
            models=content.get("models") if isinstance(content.get("models"), list) else [],
            messages=_chat(content),
            text=content.get("text") or "",
            params={k: content.get(k) for k in ("max_new_tokens", "temperature", "top_p", "seed")},
        )
        checked = generations.check_request(self.scope["user"], request)
        with acting_from_socket(self.scope):
            return generations.create_generation(
                self.scope["user"], checked, source=GenerationSource.PLAYGROUND
            )

    # --- the worker's messages ---------------------------------------------------------

    def _current(self, message) -> bool:
        return message.get("id") == self.generation_id

    async def generation_started(self, message):
        if self._current(message):
            if self.watchdog is not None:
                self.watchdog.cancel()
                self.watchdog = None
            await self.send_json({"type": "started", "seq": message["seq"], "id": message["id"]})

    async def generation_progress(self, message):
        if self._current(message):
            await self.send_json(
                {"type": "progress", "seq": message["seq"], "id": message["id"],
                 "texts": message["texts"]}
            )  # fmt: skip

    async def generation_done(self, message):
        if self._current(message):
            shown = generations.done_as_seen_by(self.scope["user"], message)
            await self.send_json({**shown, "type": "done"})
            await self._leave(cancel=False)


def _chat(content) -> list[dict] | None:
    """The playground's system + user fields as chat messages (None for a text)."""
    if content.get("text") and not content.get("prompt"):
        return None
    system = content.get("system") or ""
    prompt = content.get("prompt") or ""
    messages = [{"role": "system", "content": system}] if system.strip() else []
    return [*messages, {"role": "user", "content": prompt}]
