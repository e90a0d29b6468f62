"""Which limit applies to a user, what they use, and the hard checks (quotas/services/limits.py).
Real database; no worker."""

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.utils import timezone

from jobs.human import limit_bytes
from jobs.models import FineTuneJob, JobStatus
from jobs.services.lifecycle import delete_job
from quotas.models import QuotaOverride
from quotas.services import limits
from quotas.services.limits import QuotaExceeded, check_new_job, check_queue, limits_for
from tests.builders import make_job, ready_sample
from usage.models import DeviceUse

pytestmark = pytest.mark.django_db


def test_with_no_settings_and_no_override_nothing_is_limited(alice):
    assert limits_for(alice) == limits.Limits()


def test_the_settings_give_the_defaults_and_zero_means_unlimited(alice, settings):
    settings.TAILOR_QUOTA_RUNNING_JOBS = 2
    settings.TAILOR_QUOTA_STORAGE_BYTES = 0
    assert limits_for(alice).running_jobs == 2
    assert limits_for(alice).storage_bytes is None


def test_the_users_own_override_wins_else_the_most_generous_group_else_the_default(
    alice, bob, settings
):
    settings.TAILOR_QUOTA_RUNNING_JOBS = 1
    settings.TAILOR_QUOTA_QUEUED_JOBS = 5
    small, large = Group.objects.create(name="small"), Group.objects.create(name="large")
    alice.groups.add(small, large)
    QuotaOverride.objects.create(group=small, running_jobs=2, steps_per_job=100)
    QuotaOverride.objects.create(group=large, running_jobs=4, steps_per_job=0)
    assert limits_for(alice) == limits.Limits(running_jobs=4, queued_jobs=5)
    # Her own override of one limit; the others still come from her groups.
    QuotaOverride.objects.create(user=alice, running_jobs=1)
    assert limits_for(alice) == limits.Limits(running_jobs=1, queued_jobs=5)
    # Bob is in no group: the defaults.
    assert limits_for(bob) == limits.Limits(running_jobs=1, queued_jobs=5)


def test_an_override_names_one_user_or_one_group(alice):
    override = QuotaOverride(user=alice, group=Group.objects.create(name="both"))
    with pytest.raises(ValidationError) as refused:
        override.full_clean()
    assert refused.value.messages == ["Choose one user or one group (not both, not neither)."]


def test_a_job_over_the_steps_limit_is_refused_naming_the_limit_and_its_steps(alice, demo_models):
    QuotaOverride.objects.create(user=alice, steps_per_job=50)
    with pytest.raises(QuotaExceeded) as refused:
        make_job(alice, ready_sample(alice), start=True)  # 75 steps
    assert refused.value.message == (
        "Steps limit: this job would train 75 steps, over your limit of 50 steps per job. "
        "Lower the epochs or the maximum steps."
    )
    assert not FineTuneJob.objects.filter(owner=alice).exists()


def test_queuing_past_the_queued_jobs_limit_is_refused_with_the_count(alice, demo_models):
    QuotaOverride.objects.create(user=alice, queued_jobs=2)
    dataset = ready_sample(alice)
    for _ in range(2):
        job = make_job(alice, dataset)
        FineTuneJob.objects.filter(pk=job.pk).update(status=JobStatus.QUEUED)
    # A job kept unstarted is still allowed: it waits for nobody.
    make_job(alice, dataset, start=False)
    with pytest.raises(QuotaExceeded) as refused:
        make_job(alice, dataset, start=True)
    assert refused.value.message == (
        "Queued jobs limit reached: you have 2 queued jobs, your limit. Wait for one to "
        "start, or cancel one."
    )


def test_storage_counts_datasets_and_adapters_and_refuses_past_the_limit(alice, demo_models):
    dataset = ready_sample(alice)
    job = make_job(alice, dataset)
    FineTuneJob.objects.filter(pk=job.pk).update(adapter_bytes=2_000_000)
    used = dataset.size_bytes + 2_000_000
    assert limits.storage_bytes(alice) == used
    QuotaOverride.objects.create(user=alice, storage_bytes=used + 1_000)
    limits.check_storage(alice, adding=1_000)  # exactly at the limit: allowed
    with pytest.raises(QuotaExceeded) as refused:
        limits.check_storage(alice, adding=1_001)
    assert refused.value.message == (
        f"Storage limit reached: you use {limit_bytes(used)} and this upload adds "
        f"1001 bytes, over your limit of {limit_bytes(used + 1_000)}. Delete datasets or "
        "jobs you no longer need, or ask an operator for more."
    )


def _device_use(job, attempt, started, last_seen, ended=None):
    """An attempt's device time as the training worker leaves it (usage/)."""
    return DeviceUse.objects.create(
        owner=job.owner, job=job, job_name=job.name, attempt=attempt, worker="train@here",
        device="cpu", started_at=started, last_seen_at=last_seen, ended_at=ended,
        seconds=((ended or last_seen) - started).total_seconds(),
    )  # fmt: skip


def test_device_time_is_measured_attempt_by_attempt_inside_the_month(alice, demo_models):
    now = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    dataset = ready_sample(alice)
    done, going = make_job(alice, dataset), make_job(alice, dataset)
    # Attempt 1 began in February: only its March part counts (1 h); its
    # worker died, its last renewal at 01:00; it waited 5 h queued (not
    # counted), and attempt 2 ran 2 h.
    _device_use(done, 1, datetime(2026, 2, 28, 23, 0, tzinfo=UTC),
                datetime(2026, 3, 1, 1, 0, tzinfo=UTC))  # fmt: skip
    _device_use(done, 2, datetime(2026, 3, 1, 6, 0, tzinfo=UTC),
                datetime(2026, 3, 1, 8, 0, tzinfo=UTC), datetime(2026, 3, 1, 8, 0, tzinfo=UTC))  # fmt: skip
    # Still running: up to its last renewal (30 min), and nothing after `now`.
    _device_use(going, 1, now - timedelta(minutes=30), now)
    # A job of last month's counts for nothing in March.
    _device_use(make_job(alice, dataset), 1, datetime(2026, 2, 1, 6, 0, tzinfo=UTC),
                datetime(2026, 2, 1, 8, 0, tzinfo=UTC), datetime(2026, 2, 1, 8, 0, tzinfo=UTC))  # fmt: skip
    assert limits.device_seconds_this_month(alice, now) == (1 + 2 + 0.5) * 3600


def test_a_deleted_jobs_device_time_still_counts_for_its_owner(alice, demo_models):
    now = timezone.now()
    job = make_job(alice, ready_sample(alice))
    FineTuneJob.objects.filter(pk=job.pk).update(status=JobStatus.SUCCEEDED)
    _device_use(job, 1, now - timedelta(minutes=20), now - timedelta(minutes=5),
                now - timedelta(minutes=5))  # fmt: skip
    delete_job(FineTuneJob.objects.get(pk=job.pk))
    assert not FineTuneJob.objects.filter(pk=job.pk).exists()
    assert limits.device_seconds_this_month(alice, now) == 15 * 60


def test_queuing_once_the_monthly_hours_are_used_is_refused(alice, demo_models):
    QuotaOverride.objects.create(user=alice, device_hours_per_month=0.01)  # 36 s
    job = make_job(alice, ready_sample(alice))
    now = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    FineTuneJob.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, started_at=now)
    _device_use(job, 1, now - timedelta(hours=1), now)
    with pytest.raises(QuotaExceeded) as refused:
        check_queue(alice, now=now)
    assert refused.value.message == (
        "Monthly training limit reached: your jobs used 1.0 device-hours this month, "
        "your limit is 0.01. It starts again on the 1st."
    )


def test_check_new_job_passes_everything_within_the_limits(alice, demo_models):
    QuotaOverride.objects.create(user=alice, steps_per_job=75, queued_jobs=1)
    check_new_job(alice, total_steps=75, queue=True)
