"""A small studio of real processes for a fault test: its own workers (the
session's are paused, so that these alone take the messages), a maintenance
worker and beat (the reaper and dispatcher), and a stopwatch for the closing
note's recovery times."""

import contextlib
import os
import signal
import time

from jobs.models import FineTuneJob, JobEvent, JobStatus
from jobs.services.lifecycle import check_start_job, create_job
from tests.conftest import Beat, CeleryWorker, paused_workers, serves, wait_for

# The production train worker's flags (studio/launcher.py): one job, a fresh
# child per job.
PRODUCTION_TRAIN = ("-c", "1", "--prefetch-multiplier", "1", "--max-tasks-per-child", "1")

SHORT_RUN = {"max_steps": 24, "batch_size": 8, "logging_steps": 1, "save_every": 3}
STEPS = SHORT_RUN["max_steps"]


@contextlib.contextmanager
def studio(tmp_path, *workers: CeleryWorker, pause: frozenset = frozenset(),
           beat_env: dict | None = None):  # fmt: skip
    """Run `workers`, a maintenance worker and beat for a block. The
    session's workers that share a queue with `workers` (or consume one in
    `pause`) are paused meanwhile, so that these alone take its messages,
    and come back after it."""
    queues = {queue for worker in workers for queue in worker.queues.split(",")} | set(pause)
    started: list[CeleryWorker] = []
    beat = Beat(tmp_path, **(beat_env or {}))
    with paused_workers(queues):
        try:
            for worker in workers:
                worker.start()
                started.append(worker)
            if not serves("maintenance"):
                maintenance = CeleryWorker("maintenance", "fault-maintenance")
                maintenance.start()
                started.append(maintenance)
            beat.start()
            yield beat
        finally:
            beat.stop()
            for worker in started:
                worker.stop()


def queue_short_job(owner, dataset, *, start: bool = True, **training):
    """A short LoRA run of tailor-tiny (SHORT_RUN, changed by `training`)."""
    document = {
        "data": {"dataset": str(dataset.pk)},
        "model": {"base_model": "tailor-tiny", "method": "lora"},
        "training": {**SHORT_RUN, **training},
    }
    return create_job(owner, check_start_job(owner, document), start=start)


def current(job) -> FineTuneJob:
    return FineTuneJob.objects.get(pk=job.pk)


def wait_until_finished(job, timeout: float = 300) -> FineTuneJob:
    return wait_for(lambda: (j := current(job)).is_finished and j, timeout, "the job to finish")


def wait_until_step(job, step: int, *, checkpoint: int = 0, timeout: float = 240):
    def there():
        j = current(job)
        return (
            j.status == JobStatus.RUNNING
            and j.current_step >= step
            and j.checkpoints.filter(step__gte=checkpoint).exists()
        )

    wait_for(there, timeout, f"step {step} with a checkpoint at {checkpoint} or later")


def kill(pid: int, sig=signal.SIGKILL) -> None:
    os.kill(pid, sig)


def gone(pid: int) -> bool:
    """Whether the process has exited (a zombie awaiting its parent counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1].startswith("Z")
    except FileNotFoundError:
        return True


def events(job, prefix: str) -> list[JobEvent]:
    return [e for e in JobEvent.objects.filter(job=job) if e.message.startswith(prefix)]


def one_live_run_at_a_time(job) -> None:
    """Every claim of the job came after the previous attempt was over: the
    "Running on …" events carry strictly increasing attempts, one each."""
    claims = list(
        JobEvent.objects.filter(job=job, kind="status", to_status="running")
        .order_by("id")
        .values_list("attempt", flat=True)
    )
    assert claims == list(range(1, len(claims) + 1))


class Stopwatch:
    """Seconds from a fault to its recovery, printed for the closing note."""

    def __init__(self, what: str, record_property=None):
        self.what, self.record = what, record_property
        self.started = time.monotonic()

    def lap(self, milestone: str) -> float:
        seconds = round(time.monotonic() - self.started, 1)
        print(f"[recovery] {self.what}: {milestone} after {seconds} s")
        if self.record is not None:
            self.record(f"{self.what}: {milestone}", seconds)
        return seconds


def succeeded_lora_job(owner):
    """A really trained LoRA job (in this process, no worker), with validation rows."""
    from jobs import runner
    from serving.models import Evaluation
    from tests.jobs.helpers import ready_sample

    document = {
        "data": {"dataset": str(ready_sample(owner).pk)},
        "model": {"base_model": "tailor-tiny", "method": "lora"},
        "training": {"max_steps": 4, "batch_size": 8, "logging_steps": 1, "save_every": 0},
    }
    job = create_job(owner, check_start_job(owner, document), start=False)
    FineTuneJob.objects.filter(pk=job.pk).update(status="queued")
    assert runner.run_job(str(job.pk), "here") == "succeeded"
    # This process trained it: the evaluation its success asked for is not under test.
    Evaluation.objects.filter(job=job).delete()
    return current(job)
