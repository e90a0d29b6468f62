"""A job's page and the jobs list, live over websockets.

The job consumer checks ownership before accepting, joins the job's group
first and only then reads what is stored, so no point falls between the
replay and the live stream (the page drops duplicates by kind and step). A
client that sees a gap sends `{"after_step": n}` again. The list consumer
forwards the summaries of the user's jobs.
"""

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.http import Http404

from jobs.models import JobEvent, MetricPoint
from jobs.services import lifecycle, live

REPLAY_EVENTS = 50


class JobLiveConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        self.job_id = str(self.scope["url_route"]["kwargs"]["job_id"])
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or await self._job() is None:
            await self.close()  # before accept: the handshake is refused (403)
            return
        self.group = live.job_group(self.job_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        after = content.get("after_step") if isinstance(content, dict) else None
        if isinstance(after, bool) or not isinstance(after, int):
            await self.send_json({"type": "error", "message": 'Send {"after_step": <int>}.'})
            return
        replay = await self._replay(after)
        if replay is None:  # the job went away (or its owner lost access)
            await self.close()
            return
        await self.send_json({"type": "points", **replay})

    # --- group messages ---------------------------------------------------------------

    async def job_metric(self, message):
        await self.send_json({"type": "point", "point": message["point"]})

    async def job_event(self, message):
        await self.send_json({"type": "event", "event": message["event"]})

    async def job_summary(self, message):
        await self.send_json({"type": "summary", "job": message["job"]})

    async def job_rewind(self, message):
        await self.send_json({"type": "rewind", "after_step": message["after_step"]})

    # --- database ---------------------------------------------------------------------

    @database_sync_to_async
    def _job(self):
        try:
            return lifecycle.access_job(self.scope["user"], self.job_id)
        except Http404:
            return None

    @database_sync_to_async
    def _replay(self, after_step: int) -> dict | None:
        try:
            job = lifecycle.access_job(self.scope["user"], self.job_id)
        except Http404:
            return None
        points = MetricPoint.objects.filter(job=job, step__gt=after_step).order_by("step", "id")
        events = JobEvent.objects.filter(job=job).order_by("-id")[:REPLAY_EVENTS]
        return {
            "after_step": after_step,
            "points": [live.metric_payload(p, job.total_steps) for p in points],
            "summary": lifecycle.job_summary(job),
            "events": [live.event_payload(e) for e in reversed(events)],
        }


class JobListConsumer(AsyncJsonWebsocketConsumer):
    """Summaries of the user's jobs (staff: everyone's), as they change (the list's rows)."""

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close()
            return
        self.group = live.list_group(user)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def job_summary(self, message):
        await self.send_json({"type": "summary", "job": message["job"]})
