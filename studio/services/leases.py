"""Leased work: one claim, lease, stall check, reaper and dispatcher for every
kind of background work (training, evaluation, export, validation, generation).

The contract. A kind of work is a row, the ledger, registered once as a
`WorkKind`; Celery only rings the bell. For every kind:

- `claim(kind, pk, worker)` is one conditional UPDATE: waiting (or running
  with an expired lease) → running, attempt + 1, a lease. It returns the new
  attempt, the run's fencing token, or None when the row is not the run's to
  take. Every later write of the run filters on `owned(kind, pk, attempt)`;
  one that matches nothing means the run has lost the row and must stop.
- A `LeaseKeeper` thread renews the lease while the run makes progress
  (`progressed()`). A run that has not progressed for the kind's stall time
  is ended as lost ("stalled"), and so is its process: a hung step cannot be
  interrupted from Python, and its worker slot must come back.
- `reap()` (beat, on the `maintenance` queue) hands every row whose lease
  expired to its kind's `on_lost`: queued again for a new attempt, or failed
  in plain words once the attempts are spent.
- `dispatch()` sends a new message for every waiting row whose message is
  nowhere: never sent (the broker was down when it was created: the row is
  an outbox), lost with a Redis flush, or held by a worker that died.
- `send(kind, row)` rings the bell after commit and never raises: with the
  broker down the row stays waiting and `dispatch` sends it later.

Trade-off: every lease is stamped and compared with the database's clock
(`Now()`), so a worker whose clock is wrong neither loses nor steals one; the
price is that the lease is written in SQL, not computed in Python. Stalls are
measured on the worker's monotonic clock, which no skew can move.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import models, transaction
from django.db.models import F, Q
from django.db.models.functions import Now

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Columns:
    """Where a kind keeps its ledger fields (an export lives on its job's row)."""

    status: str = "status"
    attempt: str = "attempt"
    lease: str = "lease_expires_at"
    worker: str = "worker"
    task_id: str = "task_id"
    dispatched: str = "dispatched_at"


@dataclass(frozen=True)
class WorkKind:
    """One kind of background work, as the shared mechanism sees it."""

    name: str  # in the user's words: "training", "evaluation", …
    model: type[models.Model]
    queue: str
    task: str  # the Celery task's name; it takes `task_args(row)`
    waiting: str  # the status of a row that waits for a worker
    running: tuple[str, ...]  # statuses a live lease holds
    # What the reaper does with a row whose run was lost or stalled; returns
    # True when it changed the row. Called inside a transaction.
    on_lost: Callable[[models.Model, str], bool]
    columns: Columns = field(default_factory=Columns)
    task_args: Callable[[models.Model], list] = lambda row: [str(row.pk)]
    # Extra conditions a row must meet to be claimed or dispatched.
    scope: Q = field(default_factory=Q)
    # Waiting rows are sent again when their message is lost (generations
    # are not: their asker fails them after the start timeout instead).
    resend: bool = True
    # Seconds after which a waiting row that no worker took is handed to
    # `on_lost` as "not_taken" (generations); None: it waits (and is resent).
    give_up_waiting_after: Callable[[], float] | None = None
    send_options: Callable[[], dict] = dict
    # A kind that holds waiting rows until they may run (training: quotas and
    # fair share) sends them itself: this is called instead of sending one
    # row after commit, and by `dispatch` for rows never sent. Returns how
    # many it sent.
    release: Callable[[], int] | None = None
    # The queue of one row, where it depends on the row (training: its memory
    # class; a generation: the worker that has its base loaded); None: `queue`.
    route: Callable[[models.Model], str] | None = None
    # Every queue `route` may choose, where the dispatcher looks for a row's
    # message; those of one worker are left out (their kind is not resent).
    routes: Callable[[], tuple[str, ...]] = tuple

    def rows(self):
        return self.model.objects.filter(self.scope)

    def queue_for(self, row) -> str:
        return self.queue if self.route is None else self.route(row)

    def queues(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((self.queue, *self.routes())))


KINDS: dict[str, WorkKind] = {}


def register(kind: WorkKind) -> WorkKind:
    """Add a kind (each app registers its own in its AppConfig.ready)."""
    KINDS[kind.name] = kind
    return kind


def kind(name: str) -> WorkKind:
    return KINDS[name]


def lease_end(seconds: float | None = None):
    """The database's now plus a lease, as an SQL expression."""
    seconds = settings.TAILOR_JOB_LEASE_SECONDS if seconds is None else seconds
    return models.ExpressionWrapper(
        Now() + timedelta(seconds=seconds), output_field=models.DateTimeField()
    )


def expired(kind: WorkKind) -> Q:
    """A lease that has run out, or none at all (a row left running by a
    version of Tailor before leases)."""
    lease = kind.columns.lease
    return Q(**{f"{lease}__lt": Now()}) | Q(**{f"{lease}__isnull": True})


# --- the run's side ------------------------------------------------------------------------


def claim(kind: WorkKind, pk, worker: str, *, where: Q | None = None, **fields) -> int | None:
    """Take the row for this run; its new attempt, or None (someone holds it,
    or it is over). `where` narrows the row (a dataset's revision); `fields`
    are written with the claim (e.g. started_at)."""
    c = kind.columns
    # A running row whose lease expired is taken over; one being cancelled is not.
    claimable = (
        kind.rows()
        .filter(pk=pk)
        .filter(Q(**{c.status: kind.waiting}) | (Q(**{c.status: kind.running[0]}) & expired(kind)))
    )
    if where is not None:
        claimable = claimable.filter(where)
    claimed = claimable.update(
        **{
            c.status: kind.running[0],
            c.attempt: F(c.attempt) + 1,
            c.lease: lease_end(),
            c.worker: worker[:200],
        },
        **fields,
    )
    if not claimed:
        return None
    return kind.model.objects.filter(pk=pk).values_list(c.attempt, flat=True).first()


def owned(kind: WorkKind, pk, attempt: int):
    """The row while this run's attempt holds it: every fenced write filters on this."""
    c = kind.columns
    return kind.model.objects.filter(pk=pk, **{c.attempt: attempt, f"{c.status}__in": kind.running})


def renew(kind: WorkKind, pk, attempt: int) -> str | None:
    """Push the lease on; the row's status, or None when the run lost it."""
    if not owned(kind, pk, attempt).update(**{kind.columns.lease: lease_end()}):
        return None
    return kind.model.objects.filter(pk=pk).values_list(kind.columns.status, flat=True).first()


class LeaseKeeper(threading.Thread):
    """Renews a run's lease while it progresses.

    `progressed()` is cheap: the run calls it at every step, token or chunk.
    When the run has not progressed for `stall_seconds`, the keeper hands the
    row to the kind's `on_lost` as "stalled" (fenced on the attempt) and calls
    `on_stalled` (a Celery task passes `end_process`). `on_status` sees the
    row's status after each renewal (a job notices `cancelling` there).
    """

    def __init__(self, kind: WorkKind, pk, attempt: int, *, on_status=None, on_stalled=None,
                 stall_seconds: float | None = None):  # fmt: skip
        super().__init__(name=f"lease-{kind.name}-{pk}", daemon=True)
        self.kind, self.pk, self.attempt = kind, pk, attempt
        self.on_status, self.on_stalled = on_status, on_stalled
        self.stall_seconds = stall_seconds or settings.TAILOR_STALL_SECONDS
        self.last_progress = time.monotonic()
        self.lost = threading.Event()
        self.stalled = threading.Event()
        self.done = threading.Event()

    def progressed(self) -> None:
        self.last_progress = time.monotonic()

    def run(self) -> None:
        from django.db import close_old_connections

        while not self.done.wait(settings.TAILOR_HEARTBEAT_SECONDS):
            if time.monotonic() - self.last_progress > self.stall_seconds:
                self._end_stalled()
                return
            try:
                status = renew(self.kind, self.pk, self.attempt)
            except Exception:  # a database blip: try again at the next beat
                logger.exception("Renewing the lease of %s %s failed", self.kind.name, self.pk)
                close_old_connections()
                continue
            if status is None:
                self.lost.set()
                return
            if self.on_status is not None:
                self.on_status(status)

    def _end_stalled(self) -> None:
        self.stalled.set()
        self.lost.set()
        minutes = self.stall_seconds / 60
        logger.error(
            "%s %s made no progress for %.1f min; ending the run", self.kind.name, self.pk, minutes
        )
        try:
            end_lost_run(self.kind, self.pk, self.attempt, why="stalled")
        except Exception:
            logger.exception("Could not record the stall of %s %s", self.kind.name, self.pk)
        if self.on_stalled is not None:
            self.on_stalled()

    def stop(self) -> None:
        self.done.set()
        if self is not threading.current_thread():
            self.join(timeout=10)


def end_process() -> None:
    """A Celery pool child that holds a hung run ends itself; its parent
    starts a fresh child, and the hung step's memory (a GPU's too) is freed."""
    logging.shutdown()
    os._exit(70)


def end_lost_run(kind: WorkKind, pk, attempt: int, *, why: str) -> bool:
    """Hand a run's row to its kind's `on_lost`, if that attempt still holds it."""
    with transaction.atomic():
        row = owned(kind, pk, attempt).select_for_update().first()
        return bool(row is not None and kind.on_lost(row, why))


# --- ringing the bell ----------------------------------------------------------------------


def send(kind: WorkKind, pk) -> bool:
    """Send the row's task now; False (and the row waits for `dispatch`) when
    the broker cannot take it. Never raises: the row is the outbox."""
    from studio.celery import app

    row = kind.model.objects.filter(pk=pk).first()
    if row is None:
        return False
    try:
        # The row is the result: with a result backend subscribed, a broker
        # that is down would hold this call for ~20 s of reconnects.
        result = app.send_task(
            kind.task,
            args=kind.task_args(row),
            queue=kind.queue_for(row),
            retry=False,
            ignore_result=True,
            **kind.send_options(),
        )
    except Exception as exc:  # kombu and redis-py each have their own errors
        logger.warning(
            "The broker did not take %s %s (%s); it is sent when the broker is back",
            kind.name, pk, exc,
        )  # fmt: skip
        return False
    c = kind.columns
    kind.model.objects.filter(pk=pk).update(**{c.task_id: result.id, c.dispatched: Now()})
    return True


def send_after_commit(kind: WorkKind, pk) -> None:
    if kind.release is not None:
        transaction.on_commit(kind.release)
        return
    transaction.on_commit(lambda: send(kind, pk))


def requeue(kind: WorkKind, row, **fields) -> bool:
    """running → waiting for a new attempt (fenced on the row's attempt), sent after commit."""
    c = kind.columns
    done = owned(kind, row.pk, getattr(row, c.attempt)).update(
        **{c.status: kind.waiting, c.lease: None, c.task_id: "", c.dispatched: None}, **fields
    )
    if done:
        send_after_commit(kind, row.pk)
    return bool(done)


def attempts_left(kind: WorkKind, row) -> bool:
    limit = getattr(row, "max_attempts", None) or settings.TAILOR_JOB_MAX_ATTEMPTS
    return getattr(row, kind.columns.attempt) < limit


def requeue_or_fail(kind: WorkKind, row, *, failed: dict, **requeue_fields) -> bool:
    """What most kinds do with a lost run: a new attempt while attempts
    remain, else the `failed` fields (fenced on the row's attempt)."""
    if attempts_left(kind, row):
        return requeue(kind, row, **requeue_fields)
    c = kind.columns
    return bool(owned(kind, row.pk, getattr(row, c.attempt)).update(**{c.lease: None}, **failed))


def lost_cause(why: str) -> str:
    """How a lost run ended, as the end of a sentence about its worker."""
    return "stopped making progress" if why == "stalled" else "was lost"


# --- handing a lost run over --------------------------------------------------------------


def _running_and_expired(kind: WorkKind) -> Q:
    return Q(**{f"{kind.columns.status}__in": kind.running}) & expired(kind)


def _hand_over(kind: WorkKind, pk, still: Q, why: str) -> bool:
    """Lock the row and, if it still matches `still`, give it to `on_lost`."""
    with transaction.atomic():
        row = kind.model.objects.select_for_update().filter(still, pk=pk).first()
        return bool(row is not None and kind.on_lost(row, why))


def reap_if_expired(kind: WorkKind, pk) -> bool:
    """Hand one row to `on_lost` now if its lease has expired (a new request
    for the same work does not wait for the next reaper run)."""
    return _hand_over(kind, pk, _running_and_expired(kind), "lost")


# The reaper and the dispatcher live in their own module; their names stay here.
from studio.services.reaper import (  # noqa: E402
    REAPER_ALIVE_KEY,
    dispatch,
    mark_reaper_alive,
    reap,
    reaper_last_run_age,
    reaper_stale_after,
    run_maintenance,
)

__all__ = [
    "KINDS", "REAPER_ALIVE_KEY", "Columns", "LeaseKeeper", "WorkKind", "attempts_left", "claim",
    "dispatch", "end_lost_run", "end_process", "expired", "kind", "lease_end", "lost_cause",
    "mark_reaper_alive", "owned", "reap", "reap_if_expired", "reaper_last_run_age",
    "reaper_stale_after", "register", "renew", "requeue", "requeue_or_fail", "run_maintenance",
    "send", "send_after_commit",
]  # fmt: skip
