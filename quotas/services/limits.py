"""Per-user limits: which one applies, what a user uses, and the hard checks.

Which limit applies to a user, limit by limit (each of running jobs, queued
jobs, storage, steps per job, device-hours per month, tokens per day on its
own):

1. the user's own override (`QuotaOverride` with `user`), when that field is
   set there;
2. else the most generous of the overrides of the user's groups that set it
   (0, unlimited, is the most generous of all);
3. else the default from the settings (`TAILOR_QUOTA_*`).

0 means unlimited at every level, so an operator can lift one user's limit
below a strict default, or one group's.

Soft and hard limits. The running-jobs limit is soft: a job over it waits
`queued` and the fair share (fair_share.py) releases it later. The others
are hard: `check_new_job`, `check_storage` and `check_generation` refuse
with `QuotaExceeded`, whose message names the limit and the current use;
each door answers it in its own shape (403 on the native API and /v1/, a
message in the browser).

What is counted, from the database only (no walk of the disk):
- running jobs: running or cancelling, plus queued jobs already released to
  a worker (they hold a training slot);
- queued jobs: every job waiting `queued`;
- storage: the uploaded files of the user's datasets (not deleted) and the
  adapters of their jobs; checkpoints, kept a few days, are not counted;
- device-hours: each training attempt's device time as its worker recorded
  it (usage/services/device_time.py: from its claim to its end, or to its
  last lease renewal for a run whose worker died), the part of it inside the
  current calendar month (UTC); a deleted job's attempts still count;
- tokens per day: the prompt and completion tokens of the user's generations
  (playground, native API, /v1/) that finished since midnight UTC. Checked
  before a generation is recorded, not reserved: requests sent at once may
  each pass, so the day can end a few answers past the limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db.models import Q, Sum
from django.utils import timezone

from jobs.human import human_duration, limit_bytes
from quotas.models import QuotaOverride

LIMITS = ("running_jobs", "queued_jobs", "storage_bytes", "steps_per_job",
          "device_hours_per_month", "tokens_per_day")  # fmt: skip

DEFAULT_SETTINGS = {
    "running_jobs": "TAILOR_QUOTA_RUNNING_JOBS",
    "queued_jobs": "TAILOR_QUOTA_QUEUED_JOBS",
    "storage_bytes": "TAILOR_QUOTA_STORAGE_BYTES",
    "steps_per_job": "TAILOR_QUOTA_STEPS_PER_JOB",
    "device_hours_per_month": "TAILOR_QUOTA_DEVICE_HOURS_PER_MONTH",
    "tokens_per_day": "TAILOR_QUOTA_TOKENS_PER_DAY",
}


class QuotaExceeded(Exception):
    """A hard limit refuses what was asked; `message` names the limit and the use."""

    code = "quota_exceeded"

    def __init__(self, limit: str, message: str, *, field: str = ""):
        self.limit, self.message, self.field = limit, message, field
        super().__init__(message)


@dataclass(frozen=True)
class Limits:
    """The limits that apply to one user; None is unlimited."""

    running_jobs: int | None = None
    queued_jobs: int | None = None
    storage_bytes: int | None = None
    steps_per_job: int | None = None
    device_hours_per_month: float | None = None
    tokens_per_day: int | None = None


def _as_limit(value):
    return value or None  # 0 is unlimited


def default_limits() -> Limits:
    return Limits(
        **{name: _as_limit(getattr(settings, key)) for name, key in DEFAULT_SETTINGS.items()}
    )


def _most_generous(values: list) -> object:
    """0 (unlimited) beats any number; else the largest."""
    return 0 if 0 in values else max(values)


def _resolve(own: QuotaOverride | None, groups: list[QuotaOverride], default: Limits) -> Limits:
    fields = {}
    for name in LIMITS:
        value = getattr(own, name, None) if own is not None else None
        if value is None:
            set_by_groups = [getattr(g, name) for g in groups if getattr(g, name) is not None]
            value = _most_generous(set_by_groups) if set_by_groups else None
        fields[name] = getattr(default, name) if value is None else _as_limit(value)
    return Limits(**fields)


def limits_for_users(user_ids) -> dict[int, Limits]:
    """The limits of many users at once (two queries)."""
    from django.contrib.auth import get_user_model

    user_ids = set(user_ids)
    default = default_limits()
    if not user_ids:
        return {}
    own = {o.user_id: o for o in QuotaOverride.objects.filter(user_id__in=user_ids)}
    memberships = get_user_model().groups.through.objects.filter(user_id__in=user_ids)
    by_group = {o.group_id: o for o in QuotaOverride.objects.filter(
        group_id__in=memberships.values("group_id"))}  # fmt: skip
    groups: dict[int, list] = {uid: [] for uid in user_ids}
    if by_group:
        for user_id, group_id in memberships.values_list("user_id", "group_id"):
            if group_id in by_group:
                groups[user_id].append(by_group[group_id])
    return {uid: _resolve(own.get(uid), groups[uid], default) for uid in user_ids}


def limits_for(user) -> Limits:
    return limits_for_users([user.pk])[user.pk]


# --- what a user uses ---------------------------------------------------------------------


def holding_a_slot() -> Q:
    """Jobs that hold a training slot: running, stopping, or released to a worker."""
    from jobs.models import JobStatus

    return Q(status__in=(JobStatus.RUNNING, JobStatus.CANCELLING)) | Q(
        status=JobStatus.QUEUED, dispatched_at__isnull=False
    )


def running_jobs(user) -> int:
    """The user's (or user id's) jobs holding a training slot."""
    from jobs.models import FineTuneJob

    owner_id = getattr(user, "pk", user)
    return FineTuneJob.objects.filter(holding_a_slot(), owner_id=owner_id).count()


def queued_jobs(user) -> int:
    from jobs.models import FineTuneJob, JobStatus

    return FineTuneJob.objects.filter(owner=user, status=JobStatus.QUEUED).count()


def storage_bytes(user) -> int:
    owner_id = getattr(user, "pk", user)
    return storage_bytes_by_owner([owner_id]).get(owner_id, 0)


def storage_bytes_by_owner(owner_ids=None) -> dict[int, int]:
    """{owner id: stored bytes} of these users (everyone's: None), in two queries."""
    from datasets_app.models import Dataset
    from jobs.models import FineTuneJob

    datasets = Dataset.objects.filter(deleted_at__isnull=True)
    jobs = FineTuneJob.objects.all()
    if owner_ids is not None:
        datasets = datasets.filter(owner_id__in=owner_ids)
        jobs = jobs.filter(owner_id__in=owner_ids)
    found: dict[int, int] = {}
    for rows, column in ((datasets, "size_bytes"), (jobs, "adapter_bytes")):
        totals = rows.order_by().values("owner_id").annotate(total=Sum(column))
        for row in totals.values_list("owner_id", "total"):
            found[row[0]] = found.get(row[0], 0) + (row[1] or 0)
    return found


def month_start(now: datetime | None = None) -> datetime:
    now = (now or timezone.now()).astimezone(UTC)
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def device_seconds_this_month(user, now: datetime | None = None) -> float:
    """Seconds of training device time the user's attempts held this month
    (UTC) up to `now`, as the training workers recorded them (usage/)."""
    from usage.services.device_time import device_seconds

    now = now or timezone.now()
    return device_seconds(user, month_start(now), now)


def day_start(now: datetime | None = None) -> datetime:
    now = (now or timezone.now()).astimezone(UTC)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def tokens_served(user, since: datetime, until: datetime | None = None) -> tuple[int, int]:
    """(prompt, completion) tokens of the user's generations finished in [since, until)."""
    owner_id = getattr(user, "pk", user)
    return tokens_served_by_owner(since, until, [owner_id]).get(owner_id, (0, 0))


def tokens_served_by_owner(
    since: datetime, until: datetime | None = None, owner_ids=None
) -> dict[int, tuple[int, int]]:
    """{owner id: (prompt, completion) tokens} of generations finished in
    [since, until), of these users (everyone's: None); one query."""
    from serving.models import Generation

    found = Generation.objects.filter(finished_at__gte=since)
    if until is not None:
        found = found.filter(finished_at__lt=until)
    if owner_ids is not None:
        found = found.filter(owner_id__in=owner_ids)
    sums = (
        found.order_by()
        .values("owner_id")
        .annotate(prompt=Sum("prompt_tokens"), completion=Sum("completion_tokens"))
        .values_list("owner_id", "prompt", "completion")
    )
    return {owner: (prompt or 0, completion or 0) for owner, prompt, completion in sums}


def tokens_served_today(user, now: datetime | None = None) -> int:
    """Prompt plus completion tokens served to the user since midnight UTC."""
    return sum(tokens_served(user, day_start(now)))


# --- the hard checks ------------------------------------------------------------------------


def _plural(count, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def check_storage(user, adding: int = 0) -> None:
    """QuotaExceeded when the user's storage, with `adding` more bytes, passes their limit."""
    limit = limits_for(user).storage_bytes
    if limit is None:
        return
    used = storage_bytes(user)
    if used + adding > limit:
        what = f" and this upload adds {limit_bytes(adding)}" if adding else ""
        raise QuotaExceeded(
            "storage_bytes",
            f"Storage limit reached: you use {limit_bytes(used)}{what}, over your limit of "
            f"{limit_bytes(limit)}. Delete datasets or jobs you no longer need, or ask an "
            "operator for more.",
            field="file",
        )


def check_new_job(user, *, total_steps: int, queue: bool) -> None:
    """QuotaExceeded when a job of `total_steps` may not be created (or, with
    `queue`, queued) for the user: steps per job, storage, and for a queued
    one the queued jobs and this month's device-hours."""
    limits = limits_for(user)
    if limits.steps_per_job is not None and total_steps > limits.steps_per_job:
        raise QuotaExceeded(
            "steps_per_job",
            f"Steps limit: this job would train {_plural(total_steps, 'step')}, over your limit "
            f"of {limits.steps_per_job:,} steps per job. Lower the epochs or the maximum steps.",
            field="training.max_steps",
        )
    check_storage(user)
    if queue:
        check_queue(user, limits)


def check_queue(user, limits: Limits | None = None, *, now: datetime | None = None) -> None:
    """QuotaExceeded when the user may not queue one more job now (`now`)."""
    limits = limits or limits_for(user)
    if limits.queued_jobs is not None:
        waiting = queued_jobs(user)
        if waiting >= limits.queued_jobs:
            raise QuotaExceeded(
                "queued_jobs",
                f"Queued jobs limit reached: you have {_plural(waiting, 'queued job')}, your "
                f"limit. Wait for one to start, or cancel one.",
            )
    if limits.device_hours_per_month is not None:
        hours = device_seconds_this_month(user, now) / 3600
        if hours >= limits.device_hours_per_month:
            raise QuotaExceeded(
                "device_hours_per_month",
                f"Monthly training limit reached: your jobs used {hours:,.1f} device-hours this "
                f"month, your limit is {limits.device_hours_per_month:,g}. It starts again on "
                "the 1st.",
            )


def check_generation(user, *, now: datetime | None = None) -> None:
    """QuotaExceeded when the user was served their day's tokens already (UTC)."""
    limit = limits_for(user).tokens_per_day
    if limit is None:
        return
    now = now or timezone.now()
    served = tokens_served_today(user, now)
    if served >= limit:
        resets = day_start(now) + timedelta(days=1)
        raise QuotaExceeded(
            "tokens_per_day",
            f"Daily token limit reached: you were served {_plural(served, 'token')} today, "
            f"your limit is {limit:,} a day. It resets at midnight UTC, in "
            f"{human_duration((resets - now).total_seconds())}.",
        )
