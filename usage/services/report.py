"""A month's usage: one user's (their usage page, its CSV, GET /api/v1/usage/)
and every user's (operators' /ops/usage/ and its CSV).

What a month counts, in UTC calendar months (the quotas' months):
- training device time: the part of each attempt's device time inside the
  month (device_time.py), and its cost at the price each attempt started
  with; the jobs it belongs to, a deleted job's under its name;
- tokens served: prompt and completion tokens of the generations (all
  panes) that finished in the month;
- storage: what the user stores now (a figure of today, whatever the month).

Months are `months.Month` (re-exported here, with `BadMonth`). Reads are
bounded: one user's month is a handful of queries; every user's is six,
whatever the number of users or jobs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404
from django.utils import timezone

from jobs.human import human_bytes, human_duration
from jobs.models import JobStatus
from quotas.services import limits as quota_limits
from usage.models import DevicePrice
from usage.services import device_time, prices
from usage.services.months import BadMonth, Month

# --- whose usage -----------------------------------------------------------------------------

NOT_YOURS = "Only operators may see another user's usage."


def whose(asker, name: str | None):
    """The user whose usage `asker` asks for: themselves, or (staff only) the
    user called `name`. PermissionDenied for anyone else's; Http404 (staff)
    for a name nobody has."""
    name = (name or "").strip()
    if not name or name == asker.get_username():
        return asker
    if not asker.is_staff:
        raise PermissionDenied(NOT_YOURS)
    found = get_user_model().objects.filter(username=name).first()
    if found is None:
        raise Http404(f"No user is called {name}.")
    return found


# --- figures, in numbers and in words ------------------------------------------------------


def hours(seconds: float) -> str:
    """Device-hours to two decimals: "0.08", "1,204.50"."""
    return f"{seconds / 3600:,.2f}"


def costs_shown(spent_priced: bool = False) -> bool:
    """Whether pages show costs at all: some use had a price, or a price is
    set (TAILOR_PRICE_PER_DEVICE_HOUR or a device's); with every price 0, none."""
    if spent_priced or prices.default_price() > 0:
        return True
    return DevicePrice.objects.filter(price_per_hour__gt=0).exists()


@dataclass
class JobMonth:
    """One job's device time inside a month."""

    job_id: str | None  # None: the job was deleted since
    name: str
    status: str
    attempts: int = 0
    devices: set[str] = field(default_factory=set)
    spent: device_time.Spent = field(default_factory=device_time.Spent)

    @property
    def device_list(self) -> list[str]:
        """Its devices in one order everywhere: by name, ignoring case."""
        return sorted(self.devices, key=str.lower)

    def as_dict(self) -> dict:
        return {
            "id": self.job_id, "name": self.name, "status": self.status,
            "attempts": self.attempts, "devices": self.device_list,
            "device_seconds": round(self.spent.seconds, 1),
            "cost": float(round(self.spent.cost, 4)),
        }  # fmt: skip

    @property
    def time_words(self) -> str:
        return human_duration(self.spent.seconds)

    @property
    def cost_words(self) -> str:
        return prices.money(self.spent.cost)


class _SpentWords:
    """The figures a month's row shares with the whole month, in words: its
    `spent` device time and cost and its `storage_bytes`."""

    spent: device_time.Spent
    storage_bytes: int

    @property
    def hours_words(self) -> str:
        return hours(self.spent.seconds)

    @property
    def cost_words(self) -> str:
        return prices.money(self.spent.cost)

    @property
    def storage_words(self) -> str:
        return human_bytes(self.storage_bytes)


@dataclass
class UserMonth(_SpentWords):
    user: object
    month: Month
    spent: device_time.Spent
    prompt_tokens: int
    completion_tokens: int
    storage_bytes: int
    tokens_today: int
    limits: quota_limits.Limits
    jobs: list[JobMonth]
    show_costs: bool

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def as_dict(self) -> dict:
        """GET /api/v1/usage/'s answer."""
        limits = self.limits
        return {
            "user": self.user.get_username(),
            "month": self.month.key,
            "start": self.month.start,
            "end": self.month.end,
            "device_seconds": round(self.spent.seconds, 1),
            "device_hours": round(self.spent.seconds / 3600, 4),
            "cost": float(round(self.spent.cost, 4)),
            "currency": prices.currency(),
            "tokens": {
                "prompt": self.prompt_tokens,
                "completion": self.completion_tokens,
                "total": self.tokens,
            },
            "tokens_today": self.tokens_today,
            "storage_bytes": self.storage_bytes,
            "limits": {
                "device_hours_per_month": limits.device_hours_per_month,
                "tokens_per_day": limits.tokens_per_day,
                "storage_bytes": limits.storage_bytes,
            },
            "jobs": [job.as_dict() for job in self.jobs],
        }

    # --- what the page says -----------------------------------------------------------------

    @property
    def time_words(self) -> str:
        return human_duration(self.spent.seconds) if self.spent.seconds else "none"

    @property
    def hours_limit_words(self) -> str:
        limit = self.limits.device_hours_per_month
        if limit is None:
            return ""
        share = 100 * self.spent.seconds / 3600 / limit
        return f"of your {limit:,g} a month ({share:,.0f} % used)"

    @property
    def storage_limit_words(self) -> str:
        limit = self.limits.storage_bytes
        return "" if limit is None else f"of your {human_bytes(limit)}"

    @property
    def tokens_limit_words(self) -> str:
        limit = self.limits.tokens_per_day
        if limit is None:
            return ""
        return f"today: {self.tokens_today:,} of your {limit:,} a day (UTC)"


def _job_rows(uses, since: datetime, until: datetime) -> list[JobMonth]:
    rows: dict[str, JobMonth] = {}
    for use in uses:
        job = use.job
        key = str(use.job_id) if job is not None else f"deleted:{use.job_name}"
        if key not in rows:
            rows[key] = JobMonth(
                job_id=str(job.pk) if job is not None else None,
                name=job.name if job is not None else use.job_name,
                status=JobStatus(job.status).label if job is not None else "Deleted",
            )
        row = rows[key]
        row.attempts += 1
        row.devices.add(use.device)
        row.spent.add(device_time.seconds_inside(use, since, until), use.price_per_hour)
    return list(rows.values())


def for_user(user, month: Month, now: datetime | None = None) -> UserMonth:
    """One user's month."""
    now = now or timezone.now()
    since, until = month.start, month.until(now)
    uses = (
        device_time.overlapping(since, until)
        .filter(owner=user)
        .select_related("job")
        .order_by("started_at", "attempt")
    )
    jobs = _job_rows(uses, since, until)
    spent = device_time.Spent()
    for job in jobs:
        spent.seconds += job.spent.seconds
        spent.cost += job.spent.cost
        spent.priced = spent.priced or job.spent.priced
    prompt, completion = quota_limits.tokens_served(user, since, until)
    return UserMonth(
        user=user, month=month, spent=spent, prompt_tokens=prompt, completion_tokens=completion,
        storage_bytes=quota_limits.storage_bytes(user),
        tokens_today=quota_limits.tokens_served_today(user, now),
        limits=quota_limits.limits_for(user), jobs=jobs, show_costs=costs_shown(spent.priced),
    )  # fmt: skip


# --- every user ------------------------------------------------------------------------------

# ?sort= → the key a row is sorted by (largest first; names A to Z).
SORTS = {
    "cost": lambda row: (-row.spent.cost, -row.spent.seconds, row.username),
    "hours": lambda row: (-row.spent.seconds, -row.spent.cost, row.username),
    "tokens": lambda row: (-row.tokens, row.username),
    "user": lambda row: (row.username.lower(),),
}
DEFAULT_SORT = "cost"


@dataclass
class UserRow(_SpentWords):
    user_id: int
    username: str
    spent: device_time.Spent
    prompt_tokens: int
    completion_tokens: int
    storage_bytes: int

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def time_words(self) -> str:
        return human_duration(self.spent.seconds) if self.spent.seconds else "—"


@dataclass
class EveryoneMonth:
    month: Month
    sort: str
    rows: list[UserRow]
    total: UserRow
    show_costs: bool


def for_everyone(month: Month, sort: str = DEFAULT_SORT, now: datetime | None = None):
    """Every user's month: the active ones, and any other who used something in
    it; sorted by `sort` (a key of SORTS), with the totals."""
    now = now or timezone.now()
    since, until = month.start, month.until(now)
    spent = device_time.spent_by_owner(since, until)
    tokens = quota_limits.tokens_served_by_owner(since, until)
    storage = quota_limits.storage_bytes_by_owner()
    users = (
        get_user_model()
        .objects.filter(Q(is_active=True) | Q(pk__in=[*spent, *tokens]))
        .values_list("pk", "username")
    )
    rows = []
    for pk, username in users:
        prompt, completion = tokens.get(pk, (0, 0))
        row = UserRow(
            user_id=pk, username=username, spent=spent.get(pk) or device_time.Spent(),
            prompt_tokens=prompt, completion_tokens=completion, storage_bytes=storage.get(pk, 0),
        )  # fmt: skip
        rows.append(row)
    rows.sort(key=SORTS.get(sort, SORTS[DEFAULT_SORT]))
    altogether = device_time.Spent(
        seconds=sum(r.spent.seconds for r in rows),
        cost=sum((r.spent.cost for r in rows), Decimal(0)),
        priced=any(r.spent.priced for r in rows),
    )
    total = UserRow(
        user_id=0, username="Total", spent=altogether,
        prompt_tokens=sum(r.prompt_tokens for r in rows),
        completion_tokens=sum(r.completion_tokens for r in rows),
        storage_bytes=sum(r.storage_bytes for r in rows),
    )  # fmt: skip
    return EveryoneMonth(
        month=month, sort=sort if sort in SORTS else DEFAULT_SORT, rows=rows, total=total,
        show_costs=costs_shown(total.spent.priced),
    )  # fmt: skip


# --- CSV ----------------------------------------------------------------------------------------

USER_CSV_COLUMNS = ("month", "job id", "job", "status", "attempts", "devices", "device seconds",
                    "device hours", "cost", "currency")  # fmt: skip
EVERYONE_CSV_COLUMNS = ("month", "user", "device seconds", "device hours", "cost", "currency",
                        "prompt tokens", "completion tokens", "storage bytes")  # fmt: skip


def user_csv_rows(report: UserMonth):
    yield USER_CSV_COLUMNS
    for job in report.jobs:
        yield (
            report.month.key, job.job_id or "", job.name, job.status, job.attempts,
            " ".join(job.device_list), f"{job.spent.seconds:.1f}",
            f"{job.spent.seconds / 3600:.4f}", f"{job.spent.cost:.4f}", prices.currency(),
        )  # fmt: skip


def everyone_csv_rows(report: EveryoneMonth):
    yield EVERYONE_CSV_COLUMNS
    for row in [*report.rows, report.total]:
        yield (
            report.month.key, row.username, f"{row.spent.seconds:.1f}",
            f"{row.spent.seconds / 3600:.4f}", f"{row.spent.cost:.4f}", prices.currency(),
            row.prompt_tokens, row.completion_tokens, row.storage_bytes,
        )  # fmt: skip


__all__ = ["BadMonth", "Month", "everyone_csv_rows", "for_everyone", "for_user", "user_csv_rows",
           "whose"]  # fmt: skip
