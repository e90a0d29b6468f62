"""The job ledger: claims fenced by attempt, leases, fenced writes, the reaper.

Real database and Redis; no worker: these call the ledger as a worker would.
"""

import json
import threading
from datetime import timedelta

import pytest
import redis
from django.db import connection
from django.utils import timezone

from jobs.models import Checkpoint, FineTuneJob, JobEvent, JobStatus, MetricPoint
from jobs.services import ledger
from jobs.services.lifecycle import JobStateError, cancel_job, start_job
from studio.services import leases
from tests.builders import make_job, ready_sample

TRAINING = leases.kind("training")

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued_job(alice, demo_models):
    job = make_job(alice, ready_sample(alice))
    FineTuneJob.objects.filter(pk=job.pk).update(status=JobStatus.QUEUED)
    job.refresh_from_db()
    return job


def metric(step, loss=1.0, **extra):
    return {"kind": "metric", "step": step, "epoch": step / 75, "train_loss": loss,
            "val_loss": None, "learning_rate": 1e-3, "grad_norm": 0.5,
            "tokens_per_second": 900.0, "tokens": step * 500, "elapsed": step * 0.8,
            "eta": 10.0, "total_steps": 75, **extra}  # fmt: skip


def expire_lease(job):
    FineTuneJob.objects.filter(pk=job.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )


def test_a_claim_makes_the_job_running_with_attempt_one_and_a_lease(queued_job):
    claimed = ledger.claim(queued_job.pk, "train@here")
    assert (claimed.status, claimed.attempt, claimed.worker) == ("running", 1, "train@here")
    assert claimed.lease_expires_at > timezone.now()
    event = JobEvent.objects.filter(job=queued_job, kind="status").last()
    assert event.message == "Running on train@here, attempt 1 of 3."


def test_a_second_claim_of_a_running_job_with_a_live_lease_gets_nothing(queued_job):
    assert ledger.claim(queued_job.pk, "a") is not None
    assert ledger.claim(queued_job.pk, "b") is None
    assert FineTuneJob.objects.get(pk=queued_job.pk).worker == "a"


def test_a_created_or_finished_job_cannot_be_claimed(alice, demo_models):
    job = make_job(alice, ready_sample(alice))
    assert ledger.claim(job.pk, "a") is None
    FineTuneJob.objects.filter(pk=job.pk).update(status=JobStatus.SUCCEEDED)
    assert ledger.claim(job.pk, "a") is None


def test_an_expired_lease_lets_a_new_attempt_claim_and_fences_out_the_old_one(queued_job):
    first = ledger.claim(queued_job.pk, "a")
    ledger.record_metric(queued_job.pk, first.attempt, metric(1))
    expire_lease(queued_job)
    second = ledger.claim(queued_job.pk, "b")
    assert second.attempt == 2
    with pytest.raises(ledger.LostJob):
        ledger.record_metric(queued_job.pk, first.attempt, metric(2))
    with pytest.raises(ledger.LostJob):
        ledger.record_log(queued_job.pk, first.attempt, "late line")
    assert leases.renew(TRAINING, queued_job.pk, first.attempt) is None
    assert leases.renew(TRAINING, queued_job.pk, second.attempt) == "running"
    assert not ledger.finish_succeeded(
        queued_job.pk, first.attempt, metrics={}, adapter_path="", adapter_bytes=0,
        trained_tokens=0, final_step=2,
    )  # fmt: skip
    assert FineTuneJob.objects.get(pk=queued_job.pk).status == "running"


def test_metrics_update_the_job_and_keep_the_best_validation_loss(queued_job):
    run = ledger.claim(queued_job.pk, "a")
    ledger.record_metric(queued_job.pk, run.attempt, metric(5, loss=2.5))
    ledger.record_metric(queued_job.pk, run.attempt, metric(5, loss=None, val_loss=2.0))
    ledger.record_metric(queued_job.pk, run.attempt, metric(10, loss=None, val_loss=2.4))
    job = FineTuneJob.objects.get(pk=queued_job.pk)
    assert (job.current_step, job.train_loss, job.val_loss, job.best_val_loss) == (
        10,
        2.5,
        2.4,
        2.0,
    )
    kinds = list(MetricPoint.objects.filter(job=job).values_list("step", "kind"))
    assert kinds == [(5, "train"), (5, "eval"), (10, "eval")]


def test_a_resumed_attempt_forgets_the_earlier_points_past_its_checkpoint(queued_job):
    first = ledger.claim(queued_job.pk, "a")
    for step in (1, 2, 3, 4):
        ledger.record_metric(queued_job.pk, first.attempt, metric(step))
    expire_lease(queued_job)
    second = ledger.claim(queued_job.pk, "b")
    ledger.record_start(queued_job.pk, second.attempt, total_steps=75, resumed_from_step=2)
    steps = list(MetricPoint.objects.filter(job=queued_job).values_list("step", flat=True))
    assert steps == [1, 2]
    assert FineTuneJob.objects.get(pk=queued_job.pk).current_step == 2


def test_checkpoint_rows_follow_the_folders_the_trainer_keeps(queued_job, tmp_path):
    run = ledger.claim(queued_job.pk, "a")
    paths = {step: tmp_path / f"checkpoint-{step}" for step in (10, 20, 30)}
    for step, path in paths.items():
        path.mkdir()
        ledger.record_checkpoint(queued_job.pk, run.attempt,
                                 {"step": step, "path": str(path), "train_loss": 1.0})  # fmt: skip
        if step == 20:
            paths[10].rmdir()  # keep_checkpoints=2: the trainer removed the oldest
    assert list(Checkpoint.objects.filter(job=queued_job).values_list("step", flat=True)) == [
        20,
        30,
    ]


def test_cancel_of_a_queued_job_is_immediate_and_its_task_then_claims_nothing(queued_job):
    cancel_job(queued_job)
    assert FineTuneJob.objects.get(pk=queued_job.pk).status == "cancelled"
    assert ledger.claim(queued_job.pk, "a") is None


def test_cancel_of_a_running_job_raises_the_flag_the_run_reads(
    queued_job, django_capture_on_commit_callbacks
):
    run = ledger.claim(queued_job.pk, "a")
    with django_capture_on_commit_callbacks(execute=True):
        cancel_job(run)
    assert FineTuneJob.objects.get(pk=queued_job.pk).status == "cancelling"
    assert ledger.cancel_requested(queued_job.pk)
    assert ledger.finish_cancelled(queued_job.pk, run.attempt, step=7)
    job = FineTuneJob.objects.get(pk=queued_job.pk)
    assert job.status == "cancelled"
    assert job.events.filter(kind="status").last().message == "Cancelled at step 7."
    assert not ledger.cancel_requested(queued_job.pk)


def test_a_finished_job_cannot_be_cancelled_or_started(queued_job):
    FineTuneJob.objects.filter(pk=queued_job.pk).update(status=JobStatus.SUCCEEDED)
    queued_job.refresh_from_db()
    with pytest.raises(JobStateError) as cancelled:
        cancel_job(queued_job)
    assert str(cancelled.value) == "The job has already finished (succeeded)."
    with pytest.raises(JobStateError) as started:
        start_job(queued_job)
    assert str(started.value) == "Only a created job can start; this one is succeeded."


def test_the_reaper_queues_a_job_whose_worker_died_as_a_new_attempt(
    queued_job, django_capture_on_commit_callbacks
):
    ledger.claim(queued_job.pk, "a")
    expire_lease(queued_job)
    with django_capture_on_commit_callbacks(execute=True):
        assert leases.reap()["training"] == 1
    job = FineTuneJob.objects.get(pk=queued_job.pk)
    assert (job.status, job.attempt) == ("queued", 1)
    assert job.task_id  # a new message was sent to the train queue
    assert job.events.filter(kind="status").last().message == (
        "The training worker stopped responding; queued again to resume from the newest "
        "checkpoint (attempt 2 of 3)."
    )
    assert ledger.claim(queued_job.pk, "b").attempt == 2


def test_the_reaper_gives_up_after_max_attempts_with_a_plain_reason(queued_job):
    FineTuneJob.objects.filter(pk=queued_job.pk).update(max_attempts=1)
    ledger.claim(queued_job.pk, "a")
    expire_lease(queued_job)
    assert leases.reap()["training"] == 1
    job = FineTuneJob.objects.get(pk=queued_job.pk)
    assert (job.status, job.error_code) == ("failed", "worker_lost")
    assert job.error_message == (
        "The training worker was lost on every attempt (1 of 1): its process died or its "
        "machine went away, so Tailor gave up. Check the worker's memory and logs, then retry."
    )


def test_the_reaper_finishes_a_cancel_whose_worker_died(queued_job):
    run = ledger.claim(queued_job.pk, "a")
    cancel_job(run)
    expire_lease(queued_job)
    leases.reap()["training"]
    assert FineTuneJob.objects.get(pk=queued_job.pk).status == "cancelled"


def test_the_reaper_leaves_live_leases_alone(queued_job):
    ledger.claim(queued_job.pk, "a")
    assert leases.reap()["training"] == 0
    assert FineTuneJob.objects.get(pk=queued_job.pk).status == "running"


def test_a_queued_job_whose_message_was_lost_is_sent_again(queued_job, settings):
    long_ago = timezone.now() - timedelta(seconds=settings.TAILOR_DISPATCH_GRACE_SECONDS + 5)
    FineTuneJob.objects.filter(pk=queued_job.pk).update(
        task_id="0f0f0f0f-lost-message", dispatched_at=long_ago
    )
    assert leases.dispatch().get("training", 0) == 1
    job = FineTuneJob.objects.get(pk=queued_job.pk)
    assert job.task_id != "0f0f0f0f-lost-message"
    # Its new message waits in the queue: the next pass leaves it alone.
    FineTuneJob.objects.filter(pk=queued_job.pk).update(dispatched_at=long_ago)
    assert leases.dispatch().get("training", 0) == 0


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_of_one_job_let_exactly_one_through(alice, demo_models):
    job = make_job(alice, ready_sample(alice))
    FineTuneJob.objects.filter(pk=job.pk).update(status="queued")
    barrier = threading.Barrier(6)
    claims: list = []

    def claim(n):
        barrier.wait()
        try:
            claims.append(ledger.claim(job.pk, f"racer-{n}"))
        finally:
            connection.close()

    racers = [threading.Thread(target=claim, args=(n,)) for n in range(6)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join()
    won = [c for c in claims if c is not None]
    assert len(claims) == 6
    assert len(won) == 1 and won[0].attempt == 1
    assert FineTuneJob.objects.get(pk=job.pk).worker == won[0].worker


def test_a_queued_job_whose_message_a_dead_worker_holds_is_sent_again(queued_job, settings):
    """Redis keeps a message a worker took in its `unacked` hash until the
    visibility timeout (days): held by no live worker, it is sent again."""
    long_ago = timezone.now() - timedelta(seconds=settings.TAILOR_DISPATCH_GRACE_SECONDS + 5)
    FineTuneJob.objects.filter(pk=queued_job.pk).update(
        task_id="held-by-a-dead-worker", dispatched_at=long_ago
    )
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    held = json.dumps([{"headers": {"id": "held-by-a-dead-worker"}}, "", "train"])
    broker.hset("unacked", "delivery-tag-of-a-dead-worker", held)
    try:
        assert leases.dispatch().get("training", 0) == 1
    finally:
        broker.hdel("unacked", "delivery-tag-of-a-dead-worker")
    assert FineTuneJob.objects.get(pk=queued_job.pk).task_id != "held-by-a-dead-worker"
