"""The dataset page's live validation progress over a websocket.

The consumer checks ownership before accepting, joins the dataset's group
first and only then reads the current state, so no event falls between the
two. It sends HTML fragments that htmx's websocket extension swaps by id.
"""

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.http import Http404
from django.template.loader import render_to_string
from django.urls import reverse

from datasets_app.services import access_dataset, group_name
from studio.sockets import SessionSocket


class DatasetProgressConsumer(SessionSocket, AsyncWebsocketConsumer):
    async def connect(self):
        self.dataset_id = self.scope["url_route"]["kwargs"]["dataset_id"]
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close()
            return
        if await self._load() is None:
            await self.close()  # before accept: the handshake is refused (403)
            return
        self.group = group_name(self.dataset_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        dataset = await self._load()
        if dataset is None or dataset.is_finished:
            await self._send_finished()
        else:
            await self._send_progress(
                phase="file", rows=dataset.rows_checked, percent=dataset.progress_percent
            )

    async def disconnect(self, code):
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def dataset_progress(self, event):
        await self._send_progress(
            phase=event["phase"], rows=event["rows"], percent=event["percent"]
        )

    async def dataset_finished(self, event):
        await self._send_finished()

    @database_sync_to_async
    def _load(self):
        try:
            return access_dataset(self.scope["user"], self.dataset_id)
        except Http404:
            return None

    async def _send_progress(self, *, phase: str, rows: int, percent: int):
        html = render_to_string(
            "datasets_app/_progress.html", {"phase": phase, "rows": rows, "percent": percent}
        )
        await self.send(text_data=html)

    async def _send_finished(self):
        # The page fetches its own fresh body (forms there need the page's
        # CSRF token, which a socket message cannot carry).
        html = render_to_string(
            "datasets_app/_finished.html",
            {"detail_url": reverse("dataset-detail", args=[self.dataset_id])},
        )
        await self.send(text_data=html)
