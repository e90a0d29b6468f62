"""A job survives its worker dying: SIGKILL a real Celery worker mid-training,
start it again, and the reaper (on a real beat) re-queues the job, which
resumes from its newest checkpoint and finishes."""

import sys

import pytest

from jobs.models import FineTuneJob, MetricPoint
from jobs.services.lifecycle import check_start_job, create_job
from tests.conftest import WORKER_ENV, ChildProcess, child_env, wait_for
from tests.jobs.helpers import ready_sample

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.integration,
    pytest.mark.training,
]


def test_a_job_whose_worker_is_killed_resumes_from_its_checkpoint_and_finishes(
    alice, demo_models, celery_worker_process, tmp_path
):
    dataset = ready_sample(alice)
    document = {
        "data": {"dataset": str(dataset.pk)},
        "model": {"base_model": "tailor-tiny", "method": "lora"},
        "training": {"max_steps": 40, "batch_size": 8, "logging_steps": 1, "save_every": 4},
    }
    job = create_job(alice, check_start_job(alice, document))
    beat = ChildProcess(
        "celery-beat",
        [sys.executable, "-m", "celery", "-A", "studio", "beat", "--loglevel", "INFO",
         "-s", str(tmp_path / "beat-schedule")],
        child_env(**WORKER_ENV),
    )  # fmt: skip
    try:

        def checkpointed_and_running():
            current = FineTuneJob.objects.get(pk=job.pk)
            return current.checkpoints.filter(step__gte=8).exists() and current.current_step >= 10

        wait_for(checkpointed_and_running, 240, "a checkpoint at step 8 or later")
        celery_worker_process.kill()
        killed_at = FineTuneJob.objects.get(pk=job.pk)
        assert (killed_at.status, killed_at.attempt) == ("running", 1)
        celery_worker_process.start()

        def finished():
            current = FineTuneJob.objects.get(pk=job.pk)
            return current if current.is_finished else None

        done = wait_for(finished, 240, "the job to finish after the worker was killed")
    finally:
        beat.stop()
        if not celery_worker_process.child.alive():
            celery_worker_process.start()

    assert (done.status, done.attempt, done.current_step) == ("succeeded", 2, 40)
    messages = list(done.events.values_list("message", flat=True))
    assert any(
        m.startswith("The training worker stopped responding; queued again") for m in messages
    )
    resumed = [m for m in messages if m.startswith("Resuming from checkpoint-")]
    assert len(resumed) == 1
    resumed_step = int(resumed[0].removeprefix("Resuming from checkpoint-").rstrip("."))
    assert resumed_step >= 8
    # One point per step on the chart: the second attempt replaced what the
    # first logged after its checkpoint.
    steps = list(MetricPoint.objects.filter(job=done, kind="train").values_list("step", flat=True))
    assert steps == list(range(1, 41))
    assert set(
        MetricPoint.objects.filter(job=done, step__gt=resumed_step).values_list(
            "attempt", flat=True
        )
    ) == {2}
