"""The reaper and the dispatcher of leased work (studio/services/leases.py),
run by beat on the `maintenance` queue, where no long task can starve them.

`reap()` hands every expired lease to its kind's `on_lost`; `dispatch()`
sends waiting rows whose message is nowhere (a kind with `release`, such as
training's fair share, sends its never-sent rows itself); `run_maintenance()` does both
and leaves a self-expiring Redis key that /healthz reads (no clock compared).
"""

from __future__ import annotations

import logging
from datetime import timedelta

import redis
from django.conf import settings
from django.db.models import Q
from django.db.models.functions import Now

from audit.services import forget_old_entries
from studio.services.db_retry import retry_database
from studio.services.leases import KINDS, _hand_over, _running_and_expired, send

logger = logging.getLogger(__name__)

REAPER_ALIVE_KEY = "tailor:reaper:alive"


def reap() -> dict[str, int]:
    """Every kind's rows whose lease expired, handed to `on_lost` ("lost"),
    and the waiting rows nobody took in time, for kinds that give up
    ("not_taken")."""
    handled = {}
    for kind in KINDS.values():
        lost = _running_and_expired(kind)
        count = sum(
            _hand_over(kind, pk, lost, "lost")
            for pk in kind.model.objects.filter(lost).values_list("pk", flat=True)
        )
        if kind.give_up_waiting_after is not None:
            c = kind.columns
            since = Now() - timedelta(seconds=kind.give_up_waiting_after())
            untaken = Q(**{c.status: kind.waiting, f"{c.dispatched}__lt": since})
            count += sum(
                _hand_over(kind, pk, untaken, "not_taken")
                for pk in kind.model.objects.filter(untaken).values_list("pk", flat=True)
            )
        handled[kind.name] = count
    return handled


def _pending_messages() -> str:
    """Every message waiting in a queue of a registered kind, as one text."""
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=5)
    try:
        queues = {queue for kind in KINDS.values() for queue in kind.queues()}
        return "\n".join(
            item.decode("utf-8", "replace") for q in queues for item in client.lrange(q, 0, -1)
        )
    finally:
        client.close()


def _held_by_live_workers() -> set[str] | None:
    """Task ids that a live worker has started or reserved (one broadcast);
    None when no worker answered (then nothing can be said of them)."""
    from studio.celery import app

    inspect = app.control.inspect(timeout=1.0)
    held: set[str] = set()
    answered = False
    for reply in (inspect.active(), inspect.reserved()):
        for tasks in (reply or {}).values():
            answered = True
            held.update(task["id"] for task in tasks)
    return held if answered else None


def dispatch() -> dict[str, int]:
    """Send again what waits with no message anywhere: never sent, lost with
    the broker, or held by a dead worker (whose unacknowledged message Redis
    would only return after the visibility timeout, days later)."""
    grace = timedelta(seconds=settings.TAILOR_DISPATCH_GRACE_SECONDS)
    overdue: dict[str, list] = {}
    for kind in KINDS.values():
        if not kind.resend:
            continue
        c = kind.columns
        rows = kind.rows().filter(**{c.status: kind.waiting})
        never_sent = rows.filter(**{f"{c.dispatched}__isnull": True})
        late = rows.filter(**{f"{c.dispatched}__lt": Now() - grace})
        # A kind that releases its rows itself sends those never sent (below).
        unsent = [] if kind.release else never_sent.values_list("pk", flat=True)
        overdue[kind.name] = [*((pk, "") for pk in unsent), *late.values_list("pk", c.task_id)]
    if not any(overdue.values()):
        released = {kind.name: kind.release() for kind in KINDS.values() if kind.release}
        return {name: count for name, count in released.items() if count}
    pending = _pending_messages()
    held = None
    if any(task_id and task_id not in pending for rows in overdue.values() for _, task_id in rows):
        held = _held_by_live_workers() or set()
    sent = {}
    for name, rows in overdue.items():
        kind = KINDS[name]
        # In the kinds' order, as before: a validation is not sent after a training.
        count = kind.release() if kind.release else 0
        for pk, task_id in rows:
            if task_id and (task_id in pending or task_id in (held or ())):
                continue
            if task_id:
                logger.warning("The message of %s %s was lost; sending it again", name, pk)
            count += send(kind, pk)
        sent[name] = count
    return sent


def run_maintenance() -> dict:
    """What beat runs: reap, then dispatch; records that the reaper ran."""
    reaped = retry_database(reap)
    sent = retry_database(dispatch)
    retry_database(forget_old_entries)  # the audit log's retention (audit/)
    # Sweeps whose runs ended without their advance (a worker lost, a job
    # cancelled before it started, an evaluation finished): moved on here.
    from jobs.services.sweeps import advance_running_sweeps

    advanced = retry_database(advance_running_sweeps)
    mark_reaper_alive()
    return {"reaped": reaped, "dispatched": sent, "sweeps_advanced": advanced}


def reaper_stale_after() -> int:
    """Seconds without a reaper run after which /healthz turns unhealthy."""
    return max(3 * settings.TAILOR_REAPER_INTERVAL_SECONDS, 15)


def mark_reaper_alive() -> None:
    """A key that expires by itself: present means the reaper ran lately,
    whatever the clocks of the reaper and of the web say."""
    from jobs.services.lifecycle import flags_client

    stale_after = reaper_stale_after()
    try:
        # The value says how long the key was set to live, so that a reader
        # with other settings still tells the age right.
        flags_client().set(REAPER_ALIVE_KEY, stale_after, ex=stale_after)
    except redis.RedisError:
        logger.warning("Could not record the reaper's run")


def reaper_last_run_age() -> float | None:
    """Seconds since the reaper last ran, or None when it has not run lately."""
    from jobs.services.lifecycle import flags_client

    client = flags_client()
    lived, ttl = client.get(REAPER_ALIVE_KEY), client.pttl(REAPER_ALIVE_KEY)
    if lived is None or ttl is None or ttl < 0:
        return None
    return max(0.0, float(lived) - ttl / 1000)
