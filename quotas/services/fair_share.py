"""Fair share: which waiting training job goes to a worker next, decided in
the database; the broker carries only released jobs (docs/architecture.md,
"Release, don't flood").

A queued job is *held* while its row has no message (`dispatched_at` is
null) and *released* once `leases.send` has sent one. `release()` sends held
jobs while a training slot is free (TAILOR_TRAINING_SLOTS; 0: no cap) and
their owner is within their running-jobs limit. The order, `waiting_line()`,
one turn at a time:

    the waiting user with the fewest jobs holding a slot,
    then the user whose last turn is oldest (never: first),
    then that user's oldest job

A user's k-th waiting job counts as if their earlier ones had started, so
one user's twenty jobs take turns with another's one instead of going
first; jobs whose owner would be over their limit come after every other.
The middle rule keeps a place true when a slot frees: the job that ends
lowers its owner's count, and without it that owner's next job would jump
ahead of the user who was first in line. Positions on the pages and in the
API are places in this same line (a place can still move as jobs end and
arrive).

Memory: while training workers report (their heartbeats), a job that none
of them can hold (its memory class, studio/services/capacity.py) stays held
in its place, which says what it waits for, and the jobs after it go; it is
released by the first release after a worker that can hold it reports. The
queue a released job is sent to is its class's (`leases.send` routes it).

`release()` runs after a job is queued (`leases.send_after_commit` hands the
training kind's rows here), after a job ends (`do_transition` to a final
status), and on every maintenance round (`dispatch`). One releaser at a time
(a Redis lock; it expires by itself if its holder dies): two processes
reading the same free slot must not both fill it. With the broker down
nothing is released and the rows wait, held, for the next round. Before it
lets go of the lock, `release()` hands the line as it now stands to
`places.publish`, which tells the open pages the places that moved.
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass

import redis
from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, OuterRef, Subquery, Window
from django.db.models.functions import RowNumber

from quotas.services.limits import holding_a_slot, limits_for_users
from studio.services import capacity

logger = logging.getLogger(__name__)

LOCK_KEY = "tailor:quotas:release"


@dataclass(frozen=True)
class Place:
    """A held job's place in the line, and why it waits."""

    job_id: str
    owner_id: int
    position: int  # 1: the next to be released
    running: int  # the owner's jobs holding a slot now
    limit: int | None  # the owner's running-jobs limit (None: unlimited)
    ahead_of_own: int  # the owner's own waiting jobs before this one
    slots_busy: int
    slots: int  # 0: no cap
    # Why no training worker reporting now can hold it ("" when one can):
    # such a job is not released (studio/services/capacity.py).
    waiting_for: str = ""

    @property
    def over_limit(self) -> bool:
        return self.limit is not None and self.running + self.ahead_of_own >= self.limit

    def reason(self, owner_name: str | None = None) -> str:
        """Why it waits, to its owner ("you have…"), or to an operator (`owner_name`)."""
        if self.waiting_for:  # first: no worker may take it, whatever the limits say
            return self.waiting_for
        has = f"{owner_name} has" if owner_name else "you have"
        their = f"{owner_name}'s" if owner_name else "your"
        if self.limit is not None and self.running >= self.limit:
            jobs = "running job" if self.running == 1 else "running jobs"
            return f"{has} {self.running:,} {jobs}, {their} limit"
        if self.over_limit:
            jobs = "running job" if self.limit == 1 else "running jobs"
            return f"{their} earlier jobs go first; {their} limit is {self.limit:,} {jobs}"
        if self.slots and self.slots_busy >= self.slots:
            return f"every training worker is busy ({self.slots_busy:,} of {self.slots:,})"
        return "about to be sent to a training worker"

    def message(self, owner_name: str | None = None) -> str:
        return f"{ordinal(self.position)} in line; {self.reason(owner_name)}"


def ordinal(number: int) -> str:
    if 10 <= number % 100 <= 20:
        suffix = "th"
    else:
        suffix = {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number:,}{suffix}"


def slots() -> int:
    return settings.TAILOR_TRAINING_SLOTS


def waiting_line(
    limit: int | None = None, fleet: list[capacity.TrainingWorker] | None = None
) -> list[Place]:
    """Every held training job in the order `release` would send them, one
    turn at a time (see the module's docstring); only the first `limit` when
    a page shows no more (the order of those does not depend on the rest).
    Each says whether a training worker of `fleet` (default: those reporting
    now) can hold it."""
    from jobs.models import FineTuneJob, JobStatus

    held = FineTuneJob.objects.filter(status=JobStatus.QUEUED, dispatched_at__isnull=True)
    if limit is not None:
        # An owner has at most `limit` of the first `limit` places, each their
        # next job in order: the rest of a long backlog is not read.
        oldest_first = (F("created_at").asc(), F("id").asc())
        held = held.annotate(
            turn=Window(RowNumber(), partition_by=F("owner_id"), order_by=oldest_first)
        ).filter(turn__lte=limit)
    held = list(
        held.order_by("created_at", "id").values_list("id", "owner_id", "estimate__memory_bytes")
    )
    if not held:
        return []
    fleet = capacity.training_fleet() if fleet is None else fleet
    memory = {job_id: int(estimated or 0) for job_id, _, estimated in held}
    holding = FineTuneJob.objects.filter(holding_a_slot()).order_by()
    busy = Counter(dict(holding.values_list("owner_id").annotate(jobs=Count("pk"))))
    slots_busy, cap = sum(busy.values()), slots()
    queues: dict[int, list] = defaultdict(list)  # each owner's held jobs, oldest first
    for index, (job_id, owner, _) in enumerate(held):
        queues[owner].append((index, job_id))
    limits = limits_for_users(queues)
    turns = _last_turns(queues)

    def key(owner: int, ahead: int, turn: tuple) -> tuple:
        count, limit = busy[owner] + ahead, limits[owner].running_jobs
        return (limit is not None and count >= limit, count, turn, queues[owner][ahead][0])

    heap = [(key(owner, 0, turns[owner]), owner, 0) for owner in queues]
    heapq.heapify(heap)
    places: list[Place] = []
    while heap and (limit is None or len(places) < limit):
        _, owner, ahead = heapq.heappop(heap)
        places.append(
            Place(
                job_id=str(queues[owner][ahead][1]),
                owner_id=owner,
                position=len(places) + 1,
                running=busy[owner],
                limit=limits[owner].running_jobs,
                ahead_of_own=ahead,
                slots_busy=slots_busy,
                slots=cap,
                waiting_for=capacity.shortfall(memory[queues[owner][ahead][1]], fleet),
            )
        )
        if ahead + 1 < len(queues[owner]):
            # Its owner's next job comes after a turn taken now, the latest of all.
            heapq.heappush(heap, (key(owner, ahead + 1, (2, len(places))), owner, ahead + 1))
    return places


def _last_turns(owners) -> dict[int, tuple]:
    """When each owner's job last went to a worker, as a sortable key: never
    first, then the longest ago. Two index lookups per owner (jobs'
    owner/started_at and owner/dispatched_at), however many jobs they ran."""
    from django.contrib.auth import get_user_model

    from jobs.models import FineTuneJob

    def newest(field: str) -> Subquery:
        jobs = FineTuneJob.objects.filter(owner=OuterRef("pk"), **{f"{field}__isnull": False})
        return Subquery(jobs.order_by(f"-{field}").values(field)[:1])

    turns = {owner: (0, 0.0) for owner in owners}
    rows = (
        get_user_model()
        .objects.filter(pk__in=turns)
        .annotate(started=newest("started_at"), sent=newest("dispatched_at"))
        .values_list("pk", "started", "sent")
    )
    for owner, started, sent in rows:
        if times := [t for t in (started, sent) if t is not None]:
            turns[owner] = (1, max(times).timestamp())
    return turns


@functools.cache
def _lock_client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_FLAGS_URL, socket_timeout=5)


def release(*, wait: float = 10) -> int:
    """Send held jobs while a slot is free and their owner is within limits;
    how many were sent. Never raises: what is not sent now waits, held, for
    the next call (a maintenance round at the latest)."""
    try:
        lock = _lock_client().lock(LOCK_KEY, timeout=60, blocking_timeout=wait)
        if not lock.acquire():
            logger.warning("Another process held the release lock for %s s", wait)
            return 0
    except redis.RedisError as exc:
        logger.warning("Could not take the release lock (%s); the next round releases", exc)
        return 0
    try:
        try:
            sent, line = _release_now()
        except Exception:
            logger.exception("Releasing queued jobs failed; the next round tries again")
            return 0
        _publish_places(line, moved=sent > 0)
        return sent
    finally:
        # Expired (a release past 60 s) or Redis gone: nothing to give back.
        with contextlib.suppress(redis.RedisError):
            lock.release()


def _release_now() -> tuple[int, list[Place]]:
    """How many were sent, and the line read before sending them."""
    from studio.services import leases

    training = leases.kind("training")
    sent = 0
    line = waiting_line()
    for place in line:
        if place.over_limit:
            break  # the line puts these last: nobody after can go either
        if place.waiting_for:
            continue  # no worker reporting can hold it; those after may go
        if place.slots and place.slots_busy + sent >= place.slots:
            break
        if not leases.send(training, place.job_id):
            break  # the broker is down: the rest waits too
        sent += 1
    return sent, line


def _publish_places(line: list[Place], *, moved: bool) -> None:
    """The line as it stands after a release (read again when the release
    `moved` it), to the pages that show places (places.py). Never raises:
    the pages catch up on the next change."""
    from quotas.services import places

    try:
        places.publish(waiting_line() if moved else line)
    except Exception:
        logger.exception("Publishing the places in line failed; the next change sends them")


def release_after_commit() -> None:
    transaction.on_commit(release)


# --- the words for a queued job (standings.py says where one stands) -------------------------


RELEASED = "sent to a training worker; it starts when the worker takes it"
RELEASED_MESSAGE = f"Next: {RELEASED}"


def sentence(message: str | None) -> str:
    """The job page's status sentence for a queued job, from its place's
    message (None: released): "Queued: 2nd in line; you have 1 running job,
    your limit."."""
    return f"Queued: {RELEASED if message is None else message}."
