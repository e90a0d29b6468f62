"""A job's page and the jobs list, live over websockets.

The job consumer checks ownership before accepting, joins the job's group
first and only then reads what is stored, so no point falls between the
replay and the live stream (the page drops duplicates by kind and step).
The page asks `{"after_step": n, "attempt": a}` on connect, when it sees a
gap, and every few seconds while the job is active: a cursor from an
attempt that a later one replaced is answered with a `rewind` first, and
every answer carries the job's summary and what the database holds in all,
so a page that missed any message converges on the database. The list
consumer forwards the summaries of the user's jobs and answers
`{"jobs": [ids]}` with their summaries now.

Both also join the line group of the jobs they show (quotas/services/places.py)
and forward, worded for their reader, the places in the training line of
the queued jobs their page shows ("2nd in line; …"), as the line moves; an
answer that finds a shown job queued is followed by its place as last
published. Nobody reads the line for a listener: it is read once per change.
"""

import logging
import uuid

import redis
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.http import Http404

from jobs.models import FineTuneJob, JobEvent, JobStatus, MetricPoint
from jobs.numbers import NumberError, read_number
from jobs.services import lifecycle, live
from quotas.services import places
from studio.sockets import SessionSocket

logger = logging.getLogger(__name__)

REPLAY_EVENTS = 50
# The jobs list re-asks for its active rows; a page holds at most this many.
REFRESH_JOBS = 100


# Bounded like the REST cursor: a step or attempt column is a 32-bit integer.
CURSOR_MAX = 2**31 - 1


def places_message(version: int, shown: list) -> dict:
    return {"type": "places", "version": version, "places": shown}


def stored_places(job_ids: list[str], reader_id: int) -> dict | None:
    """The places of queued `job_ids` in the line last published (None: nothing to say)."""
    try:
        version, shown = places.stored(job_ids, reader_id)
    except redis.RedisError as exc:
        logger.warning("Could not read the places in line (%s)", exc)
        return None
    return places_message(version, shown) if shown else None


class LineListener:
    """Mix in before SessionSocket: joins `self.line_group` (set before
    `join_line`), keeps it across a Redis restart, and forwards the places
    of the jobs in `self.shown`."""

    async def join_line(self, group: str, reader_id: int, shown: set[str]) -> None:
        self.line_group, self.reader_id, self.shown = group, reader_id, shown
        await self.channel_layer.group_add(group, self.channel_name)

    def kept_groups(self) -> list[str]:
        line = getattr(self, "line_group", None)
        return super().kept_groups() + ([] if line is None else [line])

    async def leave_line(self) -> None:
        if hasattr(self, "line_group"):
            await self.channel_layer.group_discard(self.line_group, self.channel_name)

    async def job_places(self, message):
        shown = places.for_reader(message, self.reader_id, self.shown)
        if shown:
            await self.send_json(places_message(message["version"], shown))


class JobLiveConsumer(LineListener, SessionSocket, AsyncJsonWebsocketConsumer):
    async def connect(self):
        self.job_id = str(self.scope["url_route"]["kwargs"]["job_id"])
        user = self.scope.get("user")
        job = None
        if user is not None and user.is_authenticated:
            job = await self._job()
        if job is None:
            await self.close()  # before accept: the handshake is refused (403)
            return
        self.group = live.job_group(self.job_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        # The owner's line group: an operator's page words the place with the owner's name.
        await self.join_line(places.line_group(job.owner_id), user.pk, {self.job_id})
        await self.accept()

    async def disconnect(self, code):
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)
        await self.leave_line()

    async def receive_json(self, content, **kwargs):
        content = content if isinstance(content, dict) else {}
        try:
            # A JSON message sends numbers as numbers: "3" is not a cursor.
            after = read_number(
                content.get("after_step"), whole=True, lowest=-1, highest=CURSOR_MAX, text=False
            )
            attempt = read_number(
                content.get("attempt", 0), whole=True, lowest=0, highest=CURSOR_MAX, text=False
            )
        except NumberError:
            await self.send_json(
                {"type": "error", "message": 'Send {"after_step": <int>, "attempt": <int>}.'}
            )
            return
        replay = await self._replay(after, attempt)
        if replay is None:  # the job went away (or its owner lost access)
            await self.close()
            return
        rewind, answer, standing = replay
        if rewind is not None:
            await self.send_json(rewind)
        await self.send_json(answer)
        if standing is not None:
            await self.send_json(standing)

    # --- group messages ---------------------------------------------------------------

    async def job_metric(self, message):
        answer = {"type": "point", "point": message["point"]}
        if "summary" in message:  # the job's figures after this point (live.publish_point)
            answer["summary"] = message["summary"]
        await self.send_json(answer)

    async def job_event(self, message):
        await self.send_json({"type": "event", "event": message["event"]})

    async def job_summary(self, message):
        await self.send_json({"type": "summary", "job": message["job"]})

    async def job_rewind(self, message):
        # From the ledger as a resumed attempt starts: nothing of it is shown
        # yet, so every point past the step goes.
        await self.send_json({"type": "rewind", "after_step": message["after_step"]})

    # --- database ---------------------------------------------------------------------

    @database_sync_to_async
    def _job(self):
        try:
            return lifecycle.access_job(self.scope["user"], self.job_id)
        except Http404:
            return None

    @database_sync_to_async
    def _replay(
        self, after_step: int, attempt: int
    ) -> tuple[dict | None, dict, dict | None] | None:
        """The rewind to send first (or None), the points answer, and the
        queued job's place as last published (or None)."""
        try:
            job = lifecycle.access_job(self.scope["user"], self.job_id)
        except Http404:
            return None
        stored = live.stored_since(job, after_step=after_step, attempt=attempt)
        rewind = None
        if stored.rewind_to is not None:
            # Points of attempts up to the cursor's past the step are gone.
            rewind = {"type": "rewind", "after_step": stored.rewind_to, "attempt": attempt}
        points = MetricPoint.objects.filter(job=job, step__gt=stored.after_step)
        events = JobEvent.objects.filter(job=job).order_by("-id")[:REPLAY_EVENTS]
        answer = {
            "type": "points",
            "after_step": stored.after_step,
            # From the start: these are all the points stored through stored.last_step.
            "reset": stored.after_step < 0,
            "points": [
                live.metric_payload(p, job.total_steps) for p in points.order_by("step", "id")
            ],
            "stored": {"count": stored.count, "last_step": stored.last_step},
            "summary": live.page_summary(job),
            "events": [live.event_payload(e) for e in reversed(events)],
        }
        standing = None
        if job.status == JobStatus.QUEUED:
            standing = stored_places([self.job_id], self.reader_id)
        return rewind, answer, standing


class JobListConsumer(LineListener, SessionSocket, AsyncJsonWebsocketConsumer):
    """Summaries of the user's jobs (staff: everyone's), as they change (the
    list's rows), and the places of the queued ones among the rows the page
    last asked about."""

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close()
            return
        self.group = live.list_group(user)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.join_line(places.group_for(user), user.pk, set())
        await self.accept()

    async def disconnect(self, code):
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)
        await self.leave_line()

    async def job_summary(self, message):
        await self.send_json({"type": "summary", "job": message["job"]})

    async def receive_json(self, content, **kwargs):
        ids = content.get("jobs") if isinstance(content, dict) else None
        if not isinstance(ids, list) or len(ids) > REFRESH_JOBS:
            message = f'Send {{"jobs": [<job id>, …]}}, at most {REFRESH_JOBS}.'
            await self.send_json({"type": "error", "message": message})
            return
        summaries, standing = await self._summaries(ids)
        # The rows the page shows that may still move: their places are forwarded.
        self.shown = {summary["id"] for summary in summaries}
        await self.send_json({"type": "summaries", "jobs": summaries})
        if standing is not None:
            await self.send_json(standing)

    @database_sync_to_async
    def _summaries(self, ids: list) -> tuple[list[dict], dict | None]:
        """The summaries of those of `ids` the user may see (others are left
        out), and the places of the queued ones as last published."""
        wanted = []
        for value in ids:
            try:
                wanted.append(uuid.UUID(str(value)))
            except ValueError:
                continue
        jobs = FineTuneJob.objects.for_user(self.scope["user"]).filter(pk__in=wanted)
        summaries = [lifecycle.job_summary(job) for job in jobs.order_by("-created_at")]
        queued = [s["id"] for s in summaries if s["status"] == JobStatus.QUEUED]
        return summaries, stored_places(queued, self.reader_id) if queued else None
