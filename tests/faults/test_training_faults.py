"""Training under faults, with real workers, Redis, beat and training.

Issue 12's fault tests 1-4, 14 and 17: the training child SIGKILLed (the
out-of-memory case) under the production worker flags; resume that really
resumes; a zombie run that writes nothing after its lease was taken;
duplicate messages; a worker whose clock is wrong; a hung run and a cancel
it cannot obey. Each also checks that no job ever had two live runs.
"""

import os
import signal
import time
from pathlib import Path

import pytest

from jobs.models import Checkpoint, FineTuneJob, JobEvent, MetricPoint
from jobs.services.lifecycle import cancel_job, start_job
from studio.services import leases
from tests.builders import STEPS, make_job, queue_short_job, ready_sample
from tests.faults.checks import current, events, one_live_run_at_a_time
from tests.processes import (
    PRODUCTION_TRAIN,
    CeleryWorker,
    Stopwatch,
    gone,
    job_when_finished,
    kill,
    studio,
    wait_for,
    wait_until_step,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.integration,
    pytest.mark.training,
    pytest.mark.faults,
]

QUEUED_AGAIN = "The training worker stopped responding; queued again"


def test_killing_only_the_training_child_queues_the_job_once_and_attempt_two_resumes(
    alice, demo_models, tmp_path, record_property
):
    dataset = ready_sample(alice)
    train = CeleryWorker("train", "fault-train", args=PRODUCTION_TRAIN)
    with studio(tmp_path, train):
        job = queue_short_job(alice, dataset)
        wait_until_step(job, 8, checkpoint=6)
        (child,) = train.pool_children()
        kill(child)  # the out-of-memory killer takes the child, not the worker
        clock = Stopwatch("training child SIGKILLed", record_property)
        wait_for(lambda: current(job).attempt == 2, 60, "attempt 2 to claim the job")
        clock.lap("attempt 2 running")
        done = job_when_finished(job)
        clock.lap("job succeeded")
        assert train.child.alive()  # the worker itself lived on
        assert child not in train.pool_children()

    assert (done.status, done.attempt, done.current_step) == ("succeeded", 2, STEPS)
    assert done.final_metrics["steps"] == STEPS  # the final global_step is the total
    assert len(events(done, QUEUED_AGAIN)) == 1
    one_live_run_at_a_time(done)
    # Resume is real: attempt 1's points end at the checkpoint attempt 2
    # resumed from, and attempt 2's first step is the next one.
    (resumed,) = events(done, "Resuming from checkpoint-")
    resumed_step = int(resumed.message.removeprefix("Resuming from checkpoint-").rstrip("."))
    points = MetricPoint.objects.filter(job=done, kind="train").order_by("step")
    first = [p.step for p in points if p.attempt == 1]
    second = [p.step for p in points if p.attempt == 2]
    assert first == list(range(1, resumed_step + 1))
    assert second == list(range(resumed_step + 1, STEPS + 1))
    # Each attempt wrote under its own folder; the adapter is attempt 2's.
    assert done.adapter_path == str(done.attempt_folder(2) / "adapter")


def test_a_job_that_may_run_once_fails_as_worker_lost_when_its_child_dies_and_stays_failed(
    alice, demo_models, tmp_path, record_property
):
    dataset = ready_sample(alice)
    train = CeleryWorker("train", "fault-train", args=PRODUCTION_TRAIN)
    with studio(tmp_path, train):
        job = queue_short_job(alice, dataset, start=False, max_steps=400)
        FineTuneJob.objects.filter(pk=job.pk).update(max_attempts=1)
        start_job(current(job))
        wait_until_step(job, 3)
        (child,) = train.pool_children()
        kill(child)
        clock = Stopwatch("training child SIGKILLed, one attempt allowed", record_property)
        failed = wait_for(lambda: (j := current(job)).is_finished and j, 60, "the job to fail")
        clock.lap("job failed as worker_lost")
        # Nothing claims it again, however many messages arrive.
        for _ in range(3):
            leases.send(leases.kind("training"), job.pk)
        time.sleep(3)
        after = current(job)

    assert (failed.status, failed.error_code, failed.attempt) == ("failed", "worker_lost", 1)
    assert failed.error_message == (
        "The training worker was lost on every attempt (1 of 1): its process died or its "
        "machine went away, so Tailor gave up. Check the worker's memory and logs, then retry."
    )
    assert (after.status, after.attempt) == ("failed", 1)
    one_live_run_at_a_time(after)


def test_a_zombie_run_writes_no_row_and_no_file_after_its_lease_was_taken(
    alice, demo_models, tmp_path, record_property
):
    dataset = ready_sample(alice)
    first = CeleryWorker("train", "fault-train-a", args=PRODUCTION_TRAIN)
    second = CeleryWorker("train", "fault-train-b", args=PRODUCTION_TRAIN)
    with studio(tmp_path, first, second):
        # No save falls near the pause (the first at step 12): paused in the
        # middle of a save, the zombie would finish writing what it had begun
        # before its lease was taken, which is not what this test is about.
        job = queue_short_job(alice, dataset, save_every=12)
        wait_until_step(job, 5)
        holder = first if current(job).worker == first.name else second
        (child,) = holder.pool_children()
        os.kill(child, signal.SIGSTOP)  # paused: no heartbeat, no step, no write
        clock = Stopwatch("training child paused (SIGSTOP)", record_property)
        wait_for(lambda: current(job).attempt == 2, 60, "attempt 2 to take the job")
        clock.lap("attempt 2 claimed the job")
        folder = job.attempt_folder(1)
        files_before = sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
        rows_before = (
            set(MetricPoint.objects.filter(job=job, attempt=1).values_list("step", "kind")),
            set(Checkpoint.objects.filter(job=job, attempt=1).values_list("step", flat=True)),
            JobEvent.objects.filter(job=job, attempt=1).count(),
        )
        os.kill(child, signal.SIGCONT)  # the zombie wakes up and goes on
        wait_for(lambda: gone(child), 60, "the zombie run to end its process")
        clock.lap("the zombie's process ended")
        done = job_when_finished(job)

    files_after = sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
    assert files_after == files_before
    assert not (folder / "adapter").exists()
    assert (
        set(MetricPoint.objects.filter(job=job, attempt=1).values_list("step", "kind"))
        <= rows_before[0]
    )
    assert (
        set(Checkpoint.objects.filter(job=job, attempt=1).values_list("step", flat=True))
        <= rows_before[1]
    )
    assert JobEvent.objects.filter(job=job, attempt=1).count() == rows_before[2]
    assert (done.status, done.attempt, done.current_step) == ("succeeded", 2, STEPS)
    one_live_run_at_a_time(done)


def test_five_messages_for_one_job_on_two_workers_make_exactly_one_claim(
    alice, demo_models, tmp_path
):
    dataset = ready_sample(alice)
    workers = [CeleryWorker("train", f"fault-train-{n}") for n in "ab"]
    with studio(tmp_path, *workers):
        job = make_job(alice, dataset, training={"max_steps": 12, "logging_steps": 1})
        start_job(current(job))  # one message
        for _ in range(4):  # and four duplicates, as redeliveries would bring
            leases.send(leases.kind("training"), job.pk)
        done = job_when_finished(job)
        time.sleep(2)  # the duplicates have reached the workers by now
        after = current(job)

    assert (done.status, done.attempt) == ("succeeded", 1)
    assert after.attempt == 1
    one_live_run_at_a_time(after)


SKEWED_CLOCK = '''
"""A clock off by TAILOR_TEST_CLOCK_SKEW_SECONDS for this process's Python:
time.time() and Django's timezone.now(). (The C library's clock is left
alone: torch and SQLite's own "now" read it.)"""
import datetime as _datetime
import importlib.abc as _abc
import importlib.util as _util
import os as _os
import sys as _sys
import time as _time

_SKEW = float(_os.environ["TAILOR_TEST_CLOCK_SKEW_SECONDS"])
_real_time = _time.time
_time.time = lambda: _real_time() + _SKEW


class _SkewDjangoNow(_abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "django.utils.timezone":
            return None
        _sys.meta_path.remove(self)
        spec = _util.find_spec(name)
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            real_now = module.now
            module.now = lambda: real_now() + _datetime.timedelta(seconds=_SKEW)

        spec.loader.exec_module = exec_module
        return spec


_sys.meta_path.insert(0, _SkewDjangoNow())
'''


def test_a_worker_whose_clock_is_five_minutes_behind_keeps_its_lease(alice, demo_models, tmp_path):
    """Leases are stamped and compared on the database's clock: a worker
    whose own clock is 5 minutes slow (the lease is 8 s) is not taken for dead."""
    skew = tmp_path / "skewed-clock"
    skew.mkdir()
    (skew / "sitecustomize.py").write_text(SKEWED_CLOCK)
    path = os.pathsep.join([str(skew), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    train = CeleryWorker(
        "train", "fault-train-skewed", args=PRODUCTION_TRAIN,
        env={"PYTHONPATH": path, "TAILOR_TEST_CLOCK_SKEW_SECONDS": "-300"},
    )  # fmt: skip
    with studio(tmp_path, train):
        job = queue_short_job(alice, ready_sample(alice), max_steps=30)
        wait_until_step(job, 2)
        # Its clock is truly behind: the lines it writes are stamped 5 minutes ago.
        claimed = JobEvent.objects.filter(job=job, to_status="running").get()
        assert claimed.created_at < current(job).created_at
        done = job_when_finished(job)

    assert (done.status, done.attempt) == ("succeeded", 1)
    assert not events(done, QUEUED_AGAIN)


def fifo_train_file(job) -> Path:
    """Replace the job's training file by a pipe nobody writes to: reading it
    blocks for ever, a real hang in the training process."""
    job.train_file.unlink()
    os.mkfifo(job.train_file)
    return job.train_file


def test_a_hung_run_that_ignores_its_cancel_is_cancelled_within_the_grace_and_its_child_ends(
    alice, demo_models, tmp_path, record_property
):
    train = CeleryWorker(
        "train", "fault-train-hung", args=PRODUCTION_TRAIN,
        env={"TAILOR_CANCEL_GRACE_SECONDS": "3", "TAILOR_STALL_SECONDS": "120"},
    )  # fmt: skip
    with studio(tmp_path, train):
        job = make_job(alice, ready_sample(alice))
        fifo_train_file(job)
        start_job(current(job))
        wait_for(lambda: current(job).status == "running", 60, "the run to start")
        time.sleep(2)  # now hung in its read
        (child,) = train.pool_children()
        cancel_job(current(job))
        clock = Stopwatch("hung run cancelled", record_property)
        done = wait_for(lambda: (j := current(job)).is_finished and j, 30, "the cancel to land")
        waited = clock.lap("job cancelled")
        wait_for(lambda: gone(child), 15, "the hung child to end")
        clock.lap("hung child gone")
        # The worker lives on, with a fresh child in the hung one's place.
        wait_for(lambda: train.pool_children() and child not in train.pool_children(), 15,
                 "a fresh pool child")  # fmt: skip
        assert train.child.alive()

    assert done.status == "cancelled"
    assert waited < 3 + 10  # the grace, a lease renewal and a reaper pass
    assert done.events.filter(kind="status").last().message == (
        "Cancelled; the run did not stop within 3 s, so it was ended."
    )


def test_a_run_that_stops_progressing_is_ended_and_fails_as_stalled_after_its_attempts(
    alice, demo_models, tmp_path, record_property
):
    train = CeleryWorker(
        "train", "fault-train-stall", args=PRODUCTION_TRAIN, env={"TAILOR_STALL_SECONDS": "4"}
    )
    with studio(tmp_path, train):
        job = make_job(alice, ready_sample(alice))
        FineTuneJob.objects.filter(pk=job.pk).update(max_attempts=2)
        fifo_train_file(job)
        start_job(current(job))
        wait_for(lambda: current(job).status == "running", 60, "the run to start")
        clock = Stopwatch("hung run, 4 s stall time, 2 attempts", record_property)
        done = wait_for(lambda: (j := current(job)).is_finished and j, 90, "the job to fail")
        clock.lap("job failed as stalled")

    assert (done.status, done.error_code, done.attempt) == ("failed", "stalled", 2)
    assert done.error_message == (
        "The run made no progress for 4 s on its last attempt (2 of 2), so Tailor ended it. "
        "A step that hangs usually means a stuck device or data loader: check the worker's "
        "logs, then retry."
    )
    assert len(events(done, "The run made no progress for 4 s; queued again")) == 1
    one_live_run_at_a_time(done)
