"""Device time: each training attempt's hold on its device, written by the
training worker, read by the quotas, the usage pages and the job page.

The contract. One `DeviceUse` row per (job, attempt), stamped with the
database's clock (as leases are: a worker's wrong clock moves nothing):

- `begin(job, worker=, device=)` is called inside the claim's transaction
  (jobs.services.ledger.claim): the row exists exactly when the attempt
  does, started and last seen now, priced at its device's price now.
- `advance(job_id, attempt)` after each lease renewal (the lease keeper's
  beat, every TAILOR_HEARTBEAT_SECONDS): last seen now.
- `close(job_id, attempt)` inside the transaction that ends the run
  (ledger.finish_*): ended now.
- `close_lost(job_id, attempt)` when the reaper hands a lost run on
  (ledger.training_lost): ended at its last renewal.

`begin`, `advance` and `close` are fenced like every write of a run: they
match only while that attempt still holds the job (`leases.owned`), so a
run that lost its lease adds no time. A worker that dies leaves its row at
its last renewal: a killed run counts up to about its last beat, never up
to when the reaper noticed.

Trade-off: time moves on the lease's beat, not at every step, so a running
attempt's figure lags by up to one beat (30 s by default), and a run that
hangs counts until its stall is noticed (its device is held all that
while). Exact to the step would cost a write per step.

Reading: a row spans [started_at, ended_at or last_seen_at]; the part of it
inside a window (a calendar month, UTC) is what that window counts.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Now

from studio.services import leases
from usage.models import DeviceUse
from usage.services import prices

# --- the worker's side -------------------------------------------------------------------------


def begin(job, *, worker: str, device: str) -> None:
    """Open the row of `job`'s current attempt (the caller has just claimed it,
    in the same transaction)."""
    DeviceUse.objects.create(
        owner_id=job.owner_id, job=job, job_name=job.name[:200], attempt=job.attempt,
        worker=worker[:200], device=(device or "unknown")[:200],
        price_per_hour=prices.price_for(device), started_at=Now(), last_seen_at=Now(),
    )  # fmt: skip


def _open_and_owned(job_id, attempt: int):
    held = leases.owned(leases.kind("training"), job_id, attempt).values("pk")
    return DeviceUse.objects.filter(
        job_id=job_id, attempt=attempt, ended_at__isnull=True, job__in=held
    )


def _stamp(job_id, attempt: int, rows, **fields) -> bool:
    """Write `fields` on the attempt's row if `rows` finds it, then its seconds."""
    with transaction.atomic():
        if not rows.update(**fields):
            return False
        pk, started, seen = (
            DeviceUse.objects.filter(job_id=job_id, attempt=attempt)
            .values_list("pk", "started_at", "last_seen_at")
            .get()
        )
        seconds = max(0.0, (seen - started).total_seconds())
        DeviceUse.objects.filter(pk=pk).update(seconds=seconds)
    return True


def advance(job_id, attempt: int) -> bool:
    """The run still holds its device now; False when it no longer holds the job."""
    return _stamp(job_id, attempt, _open_and_owned(job_id, attempt), last_seen_at=Now())


def close(job_id, attempt: int) -> bool:
    """The run ends now (called before the final status is written, in its transaction)."""
    return _stamp(
        job_id, attempt, _open_and_owned(job_id, attempt), last_seen_at=Now(), ended_at=Now()
    )


def close_lost(job_id, attempt: int) -> None:
    """A lost run (its worker died or hung) ended at its last renewal."""
    DeviceUse.objects.filter(job_id=job_id, attempt=attempt, ended_at__isnull=True).update(
        ended_at=F("last_seen_at")
    )


# --- reading ----------------------------------------------------------------------------------


def overlapping(since: datetime, until: datetime):
    """Rows with some part inside [since, until)."""
    return DeviceUse.objects.filter(started_at__lt=until).filter(
        Q(ended_at__gte=since) | Q(ended_at__isnull=True, last_seen_at__gte=since)
    )


def seconds_inside(use: DeviceUse, since: datetime, until: datetime) -> float:
    end = use.ended_at or use.last_seen_at
    return max(0.0, (min(end, until) - max(use.started_at, since)).total_seconds())


@dataclass
class Spent:
    """Device time and what it cost."""

    seconds: float = 0.0
    cost: Decimal = Decimal(0)
    # Some of it was on a device with a price (a cost is worth showing).
    priced: bool = False

    def add(self, seconds: float, price: Decimal) -> None:
        self.seconds += seconds
        self.cost += prices.cost(seconds, price)
        self.priced = self.priced or price > 0


def device_seconds(user, since: datetime, until: datetime) -> float:
    """Seconds of training device time the user's attempts held inside [since, until)."""
    owner_id = getattr(user, "pk", user)
    uses = overlapping(since, until).filter(owner_id=owner_id)
    return sum(seconds_inside(use, since, until) for use in uses)


def spent_by_owner(since: datetime, until: datetime, owner=None) -> dict[int, Spent]:
    """{owner id: Spent} inside the window (one query); one owner's with `owner`."""
    uses = overlapping(since, until)
    if owner is not None:
        uses = uses.filter(owner_id=getattr(owner, "pk", owner))
    found: dict[int, Spent] = defaultdict(Spent)
    for use in uses.only("owner_id", "started_at", "last_seen_at", "ended_at", "price_per_hour"):
        found[use.owner_id].add(seconds_inside(use, since, until), use.price_per_hour)
    return dict(found)


def spent_by_job(job_ids) -> dict:
    """{job id: Spent} over every attempt of each job, whatever the month (one query)."""
    found: dict = {}
    uses = DeviceUse.objects.filter(job_id__in=list(job_ids)).only(
        "job_id", "seconds", "price_per_hour"
    )
    for use in uses:
        found.setdefault(use.job_id, Spent()).add(use.seconds, use.price_per_hour)
    return found
