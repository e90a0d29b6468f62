"""Where a queued job stands, as the pages and the API say it.

The contract. `Standings(viewer, jobs).of(job)` answers for one of `jobs`
(or any other job asked): None unless the job is queued; "released" once
its row says it was sent to a worker; else its place in the training line.

Places come from the line last published (places.py keeps it in Redis;
every `fair_share.release()` republishes it, so after every queued, ended
or cancelled job and every maintenance round): one HMGET answers a whole
page, where reading the line itself costs five queries and grows with
every waiting job of every user (bench/load.py). The line is read from the
database only when a held job is not in the published one (queued a moment
ago, before its release published) or Redis cannot answer.

Trade-off: a place can lag a change that did not go through a release (an
operator's new limit) until the next maintenance round republishes, a few
seconds; the pages' live places come from the same store, so the API, the
pages and their sockets always agree.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis

from quotas.services.fair_share import RELEASED, RELEASED_MESSAGE, Place, sentence, waiting_line
from quotas.services.limits import limits_for_users, running_jobs

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class QueueStanding:
    """What the pages and the API say of a queued job."""

    position: int | None  # None once released
    released: bool
    reason: str
    message: str
    running_jobs: int
    running_limit: int | None

    @property
    def sentence(self) -> str:
        return sentence(self.message if self.position else None)

    def as_dict(self) -> dict:
        return {
            "position": self.position,
            "released": self.released,
            "reason": self.reason,
            "message": self.message,
            "running_jobs": self.running_jobs,
            "running_limit": self.running_limit,
        }


def _held(job) -> bool:
    from jobs.models import JobStatus

    return job.status == JobStatus.QUEUED and job.dispatched_at is None


class Standings:
    """Where each queued job stands; `jobs` (a page) are looked up together."""

    def __init__(self, viewer=None, jobs=()):
        self.viewer = viewer
        self._waiting = [str(job.pk) for job in jobs if _held(job)]
        self._asked: set[str] = set()
        self._places: dict[str, Place] = {}
        self._line_read = False
        self._owners: dict[int, tuple[int, int | None]] = {}  # running jobs, limit

    def of(self, job) -> QueueStanding | None:
        from jobs.models import JobStatus

        if job.status != JobStatus.QUEUED:
            return None
        place = self._place(str(job.pk)) if job.dispatched_at is None else None
        if place is None:  # released (or released since the line was published)
            running, limit = self._owner(job.owner_id)
            return QueueStanding(
                position=None, released=True, reason=RELEASED, message=RELEASED_MESSAGE,
                running_jobs=running, running_limit=limit,
            )  # fmt: skip
        owner_name = None
        if self.viewer is not None and self.viewer.pk != job.owner_id:
            owner_name = job.owner.username
        return QueueStanding(
            position=place.position, released=False, reason=place.reason(owner_name),
            message=place.message(owner_name), running_jobs=place.running,
            running_limit=place.limit,
        )  # fmt: skip

    def _place(self, job_id: str) -> Place | None:
        if job_id not in self._asked and not self._line_read:
            wanted = [job_id, *(other for other in self._waiting if other not in self._asked)]
            self._asked.update(wanted)
            self._places.update(_published(wanted))
        if job_id not in self._places and not self._line_read:
            self._line_read = True
            self._places = {place.job_id: place for place in waiting_line()}
        return self._places.get(job_id)

    def _owner(self, owner_id: int) -> tuple[int, int | None]:
        if owner_id not in self._owners:
            limit = limits_for_users([owner_id])[owner_id].running_jobs
            self._owners[owner_id] = (running_jobs(owner_id), limit)
        return self._owners[owner_id]


def _published(job_ids: list[str]) -> dict[str, Place]:
    """The places of those jobs in the line last published ({} when Redis
    cannot say: the caller reads the line)."""
    from quotas.services import places

    try:
        return places.stored_places(job_ids)
    except redis.RedisError as exc:
        logger.warning("The published line could not be read (%s); reading the line", exc)
        return {}


def standing(job, viewer=None) -> QueueStanding | None:
    return Standings(viewer, [job]).of(job)
