"""Live places in the training line: when the line moves, every open page
that shows a held job's place hears the new one, without asking.

The contract. `publish(line)` runs at the end of every `fair_share.release()`
(after a job is queued, after one ends or is cancelled, on every maintenance
round), under the release lock, with the line as it stands after the
release: the line is read once per change, however many pages listen, and
publications go out one at a time in the order of the changes. It compares
the line with the last one published, kept in Redis (`STORE_KEY`: one field
per held job, and the version), and sends only what changed:

- to `line_group(owner)`, for each owner with a place that changed, those
  places;
- to `OPERATORS_GROUP`, every place that changed;

each place as its fields (`fair_share.Place`) and its owner's name, so that
a socket words it for its reader ("you have…" or "alice has…"), and, as
released, the jobs that left the line still queued (sent to a worker). A
job that left the line otherwise (cancelled) is not named: its status change
reaches the pages as a summary. Then it stores the new line.

Each publication carries a version, Redis's clock in microseconds and above
the previous one's, so a page keeps per job the newest place it was told
and ignores a message that arrived late. A message can be lost: the pages'
resync (on every reconnect and every few seconds) is answered from the
stored line (`stored`, one HMGET for the jobs a page shows), never by
reading the line again. A lost "released" is not said again: the job's
summary moves its page on when a worker starts it.

Trade-off: a job that leaves the head of the line moves every place behind
it, so each owner with a held job hears one message per change and the
operators' group the changed places (about 200 bytes each; an operator's
socket forwards only the rows its page shows). Sending changes only keeps
the common case small: a job queued at the end of the line is one place.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import asdict
from typing import TypedDict

import redis

from quotas.services import fair_share
from studio.events import publish as publish_to

logger = logging.getLogger(__name__)

STORE_KEY = "tailor:quotas:line"
VERSION_FIELD = "version"  # job ids are UUIDs: no job's field has this name
OPERATORS_GROUP = "line-for-operators"


def line_group(owner_id) -> str:
    """Where an owner's pages (their jobs list and job pages) hear their places."""
    return f"line-of-{owner_id}"


def group_for(user) -> str:
    """The line group of a jobs list: an operator's shows everyone's jobs."""
    return OPERATORS_GROUP if user.is_staff else line_group(user.pk)


class ShownPlace(TypedDict):
    """What a page shows of a queued job's place (position None: released)."""

    id: str
    position: int | None
    message: str  # the jobs list's line: "2nd in line; you have 1 running job, your limit"
    sentence: str  # the job page's: "Queued: 2nd in line; …."


def _client() -> redis.Redis:
    return fair_share._lock_client()


def _stored_form(place: fair_share.Place, owner_name: str) -> str:
    fields = asdict(place)
    del fields["job_id"]
    return json.dumps({**fields, "owner_name": owner_name}, sort_keys=True)


def _version(client: redis.Redis, previous: int) -> int:
    seconds, microseconds = client.time()
    return max(seconds * 1_000_000 + microseconds, previous + 1)


def publish(line: list[fair_share.Place]) -> int:
    """Send the places that changed since the last call, and store `line`;
    the version sent (0: nothing changed). Call under the release lock.
    Raises RedisError (nothing is stored then: the next call sends again)."""
    from django.contrib.auth import get_user_model

    from jobs.models import FineTuneJob, JobStatus

    client = _client()
    old = {key.decode(): value.decode() for key, value in client.hgetall(STORE_KEY).items()}
    previous = int(old.pop(VERSION_FIELD, 0))
    names = dict(
        get_user_model()
        .objects.filter(pk__in={place.owner_id for place in line})
        .values_list("pk", "username")
    )
    new = {place.job_id: _stored_form(place, names.get(place.owner_id, "")) for place in line}
    changed = {job_id: form for job_id, form in new.items() if old.get(job_id) != form}
    left = [job_id for job_id in old if job_id not in new]
    if not changed and not left:
        return 0
    released = set()
    if left:
        released = {
            str(pk)
            for pk in FineTuneJob.objects.filter(
                pk__in=left, status=JobStatus.QUEUED, dispatched_at__isnull=False
            ).values_list("pk", flat=True)
        }
    version = _version(client, previous)
    pipe = client.pipeline(transaction=True)  # readers see one line, whole
    if left:
        pipe.hdel(STORE_KEY, *left)
    pipe.hset(STORE_KEY, mapping={**changed, VERSION_FIELD: version})
    pipe.execute()

    places = {job_id: json.loads(form) for job_id, form in changed.items()}
    by_owner: dict[int, dict] = defaultdict(lambda: {"places": {}, "released": []})
    for job_id, fields in places.items():
        by_owner[fields["owner_id"]]["places"][job_id] = fields
    for job_id in released:
        by_owner[json.loads(old[job_id])["owner_id"]]["released"].append(job_id)
    for owner_id, news in by_owner.items():
        publish_to(line_group(owner_id), {"type": "job.places", "version": version, **news})
    if places or released:
        message = {"places": places, "released": sorted(released)}
        publish_to(OPERATORS_GROUP, {"type": "job.places", "version": version, **message})
    return version


def shown(job_id: str, fields: dict | None, reader_id: int) -> ShownPlace:
    """A place (`fields` as stored; None: released) worded for the user
    `reader_id`: their own job in the second person, another's with its
    owner's name."""
    if fields is None:
        message = fair_share.RELEASED_MESSAGE
        return {"id": job_id, "position": None, "message": message,
                "sentence": fair_share.sentence(None)}  # fmt: skip
    place, owner_name = _place(job_id, fields)
    message = place.message(None if reader_id == place.owner_id else owner_name)
    return {"id": job_id, "position": place.position, "message": message,
            "sentence": fair_share.sentence(message)}  # fmt: skip


def for_reader(message: dict, reader_id: int, only: set[str]) -> list[ShownPlace]:
    """The places of a group message that a socket's page shows (`only`), worded for it."""
    answer = [shown(job_id, fields, reader_id) for job_id, fields in message["places"].items()
              if job_id in only]  # fmt: skip
    answer += [shown(job_id, None, reader_id) for job_id in message["released"] if job_id in only]
    return answer


def _place(job_id: str, fields: dict) -> tuple[fair_share.Place, str]:
    """A place as stored, and its owner's name."""
    fields = dict(fields)
    owner_name = fields.pop("owner_name")
    return fair_share.Place(job_id=job_id, **fields), owner_name


def _read(job_ids: list[str]) -> tuple[int, dict[str, dict]]:
    """The last line published's version (0: none yet) and the stored fields
    of those of `job_ids` it holds. Raises RedisError."""
    if not job_ids:
        return 0, {}
    version, *forms = _client().hmget(STORE_KEY, [VERSION_FIELD, *job_ids])
    if version is None:
        return 0, {}
    found = {
        job_id: json.loads(form)
        for job_id, form in zip(job_ids, forms, strict=True)
        if form is not None
    }
    return int(version), found


def stored_places(job_ids: list[str]) -> dict[str, fair_share.Place]:
    """The places of those jobs in the line last published (a job not in it
    is left out: released, or queued since). Raises RedisError."""
    return {job_id: _place(job_id, fields)[0] for job_id, fields in _read(job_ids)[1].items()}


def stored(job_ids: list[str], reader_id: int) -> tuple[int, list[ShownPlace]]:
    """Where those of the queued jobs `job_ids` that were held stand in the
    last line published, and its version (0: none published yet). A job not
    in that line is left out: released (its summary follows as it starts) or
    queued since (the publication that places it follows). The caller checks
    that the reader may see them. Raises RedisError."""
    version, found = _read(job_ids)
    return version, [shown(job_id, fields, reader_id) for job_id, fields in found.items()]
