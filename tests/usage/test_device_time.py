"""Each training attempt's device time (usage/services/device_time.py), written
as the training worker writes it: opened by the claim, advanced after each
lease renewal, closed with the final status, fenced on the attempt; a lost
run ends at its last renewal. Real database and Redis; no worker: these call
the ledger and the run's control as a worker would."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from jobs.models import FineTuneJob, JobStatus
from jobs.services import ledger
from jobs.worker import RunControl
from studio.services import leases
from tests.builders import make_job, ready_sample
from usage.models import DevicePrice, DeviceUse
from usage.services import device_time, report

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued_job(alice, demo_models):
    job = make_job(alice, ready_sample(alice), name="routing")
    FineTuneJob.objects.filter(pk=job.pk).update(status=JobStatus.QUEUED)
    job.refresh_from_db()
    return job


def started_ago(job, attempt: int, seconds: float) -> None:
    """Move an attempt's start back, as if it had run that long already."""
    use = DeviceUse.objects.filter(job=job, attempt=attempt)
    use.update(started_at=use.get().started_at - timedelta(seconds=seconds))


def expire_lease(job) -> None:
    FineTuneJob.objects.filter(pk=job.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )


def test_a_claim_opens_the_attempts_device_time_at_its_devices_price(queued_job, settings):
    settings.TAILOR_PRICE_PER_DEVICE_HOUR = Decimal("1.5")
    DevicePrice.objects.create(device="NVIDIA H200", price_per_hour=Decimal("4.2"))
    before = timezone.now()
    ledger.claim(queued_job.pk, "train@gpu-1", device="nvidia h200")
    use = DeviceUse.objects.get(job=queued_job)
    assert (use.owner, use.job_name, use.attempt, use.worker, use.device) == (
        queued_job.owner, "routing", 1, "train@gpu-1", "nvidia h200",
    )  # fmt: skip
    # The operators' price, matched ignoring case; no price: the default.
    assert use.price_per_hour == Decimal("4.2")
    assert before - timedelta(seconds=5) < use.started_at == use.last_seen_at
    assert (use.ended_at, use.seconds) == (None, 0)
    FineTuneJob.objects.filter(pk=queued_job.pk).update(status=JobStatus.QUEUED)
    expire_lease(queued_job)
    ledger.claim(queued_job.pk, "train@cpu-1", device="cpu")
    assert DeviceUse.objects.get(job=queued_job, attempt=2).price_per_hour == Decimal("1.5")


def test_renewals_advance_it_and_the_final_status_closes_it(queued_job):
    ledger.claim(queued_job.pk, "train@here", device="cpu")
    started_ago(queued_job, 1, 90)
    control = RunControl(queued_job.pk, 1)
    control.renewed(JobStatus.RUNNING)  # what the lease keeper calls after each renewal
    use = DeviceUse.objects.get(job=queued_job)
    assert use.ended_at is None
    assert 90 <= use.seconds < 95
    started_ago(queued_job, 1, 60)
    assert ledger.finish_failed(queued_job.pk, 1, code="training", message="x", traceback="")
    use.refresh_from_db()
    assert use.ended_at == use.last_seen_at
    assert 150 <= use.seconds < 155
    # Over: nothing moves it any more.
    assert not device_time.advance(queued_job.pk, 1)


def test_a_run_that_lost_the_job_adds_no_time(queued_job):
    ledger.claim(queued_job.pk, "a", device="cpu")
    expire_lease(queued_job)
    ledger.claim(queued_job.pk, "b", device="cpu")  # took it over: attempt 2
    started_ago(queued_job, 1, 120)
    first = DeviceUse.objects.get(job=queued_job, attempt=1)
    assert not device_time.advance(queued_job.pk, 1)
    assert not device_time.close(queued_job.pk, 1)
    assert not ledger.finish_cancelled(queued_job.pk, 1, step=3)
    # Attempt 1's row is as its last fenced write left it; attempt 2 runs on.
    assert DeviceUse.objects.get(pk=first.pk).last_seen_at == first.last_seen_at
    assert DeviceUse.objects.get(pk=first.pk).seconds == 0
    assert device_time.advance(queued_job.pk, 2)


def test_a_killed_workers_attempt_counts_up_to_its_last_renewal(queued_job):
    ledger.claim(queued_job.pk, "a", device="cpu")
    started_ago(queued_job, 1, 600)
    assert device_time.advance(queued_job.pk, 1)  # its last beat, ten minutes in
    use = DeviceUse.objects.get(job=queued_job)
    # Then it died; its lease ran out minutes later and the reaper took the job back.
    expire_lease(queued_job)
    assert leases.reap()["training"] == 1
    use.refresh_from_db()
    assert FineTuneJob.objects.get(pk=queued_job.pk).status == JobStatus.QUEUED
    assert use.ended_at == use.last_seen_at
    assert 600 <= use.seconds < 605
    month = report.Month.of()
    assert 600 <= device_time.device_seconds(queued_job.owner, month.start, month.end) < 605


def test_a_price_change_leaves_past_attempts_at_their_price(queued_job, settings):
    settings.TAILOR_PRICE_PER_DEVICE_HOUR = Decimal("2")
    ledger.claim(queued_job.pk, "a", device="cpu")
    started_ago(queued_job, 1, 1800)
    ledger.finish_cancelled(queued_job.pk, 1, step=0)
    DevicePrice.objects.create(device="cpu", price_per_hour=Decimal("50"))
    month = report.Month.of()
    spent = device_time.spent_by_owner(month.start, month.end)[queued_job.owner_id]
    # Half an hour at 2 an hour, however the price moved since.
    assert Decimal("1.0") <= spent.cost < Decimal("1.01")
    assert spent.priced
