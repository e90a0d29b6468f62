"""Training workers by memory (studio/services/capacity.py, fair_share's
release): a job goes to the smallest class that holds its estimate; a worker
takes every class its memory reaches; a job no reporting worker can hold
waits, queued and unreleased, saying why, and goes when one reports. Real
Redis, database and Celery worker processes where routing is observed."""

import pytest

from jobs.models import FineTuneJob, JobStatus
from jobs.services.lifecycle import cancel_job, start_job
from ops import workers
from quotas.services import release, standing, waiting_line
from studio.env import EnvError
from studio.services import capacity
from tests.builders import make_job, queue_short_job, ready_sample
from tests.processes import WORKER_ENV, CeleryWorker, paused_workers, wait_for

GIB = 2**30
CLASSES = (8, 16, 24, 48)


@pytest.fixture
def classes(settings):
    settings.TAILOR_MEMORY_CLASSES = CLASSES
    return CLASSES


@pytest.mark.parametrize(
    ("estimate", "queue"),
    [
        (0, "train"),  # not estimated: the smallest class, which every worker takes
        (GIB, "train"),
        (8 * GIB, "train"),
        (8 * GIB + 1, "train.16gib"),
        (30 * GIB, "train.48gib"),
        (200 * GIB, "train.48gib"),  # above every boundary: the largest class
    ],
)
def test_a_job_goes_to_the_smallest_class_that_holds_its_estimate(classes, estimate, queue):
    assert capacity.queue_for_memory(estimate) == queue


def test_without_classes_every_job_goes_to_the_train_queue(settings):
    settings.TAILOR_MEMORY_CLASSES = ()
    assert capacity.queue_for_memory(200 * GIB) == "train"
    assert capacity.training_queues() == ("train",)


def test_a_worker_takes_every_class_its_memory_reaches(classes):
    consumed = {"default", "train"}
    assert capacity.worker_queues(consumed, "small@box", 8) == []
    assert capacity.worker_queues(consumed, "mid@box", 20) == ["train.16gib"]
    assert capacity.worker_queues(consumed, "big@box", 80) == [
        "train.16gib", "train.24gib", "train.48gib",
    ]  # fmt: skip
    # Not a training worker: no class; a serving worker gets a queue of its own.
    assert capacity.worker_queues({"default"}, "web@box", 80) == []
    assert capacity.worker_queues({"infer"}, "infer@box", 80) == ["infer.infer@box"]


def test_a_workers_memory_is_the_setting_else_its_gpus_else_the_hosts(settings):
    h100 = {"name": "NVIDIA H100 80GB HBM3", "memory_used": 0, "memory_total": 81559 * 2**20}
    on_gpu = {"cuda": "12.8", "gpus": [h100], "memory_total": 512 * GIB}
    on_cpu = {"cuda": "", "gpus": [h100], "memory_total": 23.4 * GIB}  # a CPU build of torch
    settings.TAILOR_WORKER_MEMORY_GB = 0
    # nvidia-smi says 79.6 GiB of an "80 GB" card: it counts in the class it is sold as.
    assert capacity.capability(on_gpu) == {
        "device": "NVIDIA H100 80GB HBM3", "memory_gib": 80, "memory_from": "gpu",
    }  # fmt: skip
    assert capacity.capability(on_cpu) == {"device": "cpu", "memory_gib": 23, "memory_from": "host"}
    settings.TAILOR_WORKER_MEMORY_GB = 40
    assert capacity.capability(on_gpu)["memory_gib"] == 40
    assert capacity.capability(on_gpu)["memory_from"] == "setting"


def test_bad_classes_stop_start_up_with_a_sentence(monkeypatch):
    monkeypatch.setenv("TAILOR_MEMORY_CLASSES", "8,16GB")
    with pytest.raises(EnvError) as refused:
        capacity.memory_classes("TAILOR_MEMORY_CLASSES")
    assert str(refused.value) == (
        "TAILOR_MEMORY_CLASSES='8,16GB' must list whole numbers of GiB, each at least 1 and none "
        "twice, e.g. 8,16,24,48,80"
    )
    monkeypatch.setenv("TAILOR_MEMORY_CLASSES", "48, 8,16")
    assert capacity.memory_classes("TAILOR_MEMORY_CLASSES") == (8, 16, 48)


# --- holding what no worker can hold ------------------------------------------------------


def reported(name: str, memory_gib: int, queues=("default", "train")) -> None:
    """A heartbeat as a worker writes it (ops/heartbeat.py), in the real Redis."""
    workers.write({"name": name, "queues": list(queues), "memory_gib": memory_gib,
                   "device": "NVIDIA L4", "memory_from": "gpu"})  # fmt: skip


@pytest.mark.django_db
def test_a_job_too_big_for_every_reporting_worker_says_so_and_the_next_one_goes(
    alice, demo_models, settings
):
    settings.TAILOR_MEMORY_CLASSES = ()
    settings.TAILOR_TRAINING_SLOTS = 0
    dataset = ready_sample(alice)
    big, small = make_job(alice, dataset, name="big"), make_job(alice, dataset, name="small")
    FineTuneJob.objects.filter(pk=big.pk).update(estimate={"memory_bytes": 30 * GIB})
    FineTuneJob.objects.filter(pk=small.pk).update(estimate={"memory_bytes": 2 * GIB})
    FineTuneJob.objects.filter(pk__in=[big.pk, small.pk]).update(status=JobStatus.QUEUED)
    fleet = [capacity.TrainingWorker("gpu-a", 24, frozenset({"train"})),
             capacity.TrainingWorker("gpu-b", 16, frozenset({"train"}))]  # fmt: skip
    assert [place.message() for place in waiting_line(fleet=fleet)] == [
        "1st in line; waiting for a training worker with 30 GiB; the largest connected one has "
        "24 GiB (gpu-a)",
        "2nd in line; about to be sent to a training worker",
    ]
    # No worker reporting at all: "none is big enough" cannot be told from
    # "none has started yet", so nothing is held back.
    assert [place.waiting_for for place in waiting_line(fleet=[])] == ["", ""]


@pytest.mark.django_db
def test_a_worker_started_with_other_classes_is_named_as_the_reason(classes):
    # It has the memory but does not take the class's queue.
    fleet = [capacity.TrainingWorker("odd@box", 64, frozenset({"train"}))]
    assert capacity.shortfall(30 * GIB, fleet) == (
        "waiting for a training worker that takes the train.48gib queue; none of those "
        "connected does (are their TAILOR_MEMORY_CLASSES the studio's?)"
    )


# --- with real workers ----------------------------------------------------------------


def memory_worker(role: str, memory_gib: int) -> CeleryWorker:
    """A training worker that counts `memory_gib` as its memory, with CLASSES."""
    return CeleryWorker("default,train", role, args=("-c", "1"), env={
        **WORKER_ENV, "TAILOR_MEMORY_CLASSES": ",".join(map(str, CLASSES)),
        "TAILOR_WORKER_MEMORY_GB": str(memory_gib), "TAILOR_WORKER_HEARTBEAT_SECONDS": "1",
    })  # fmt: skip


def heartbeat_of(name: str) -> dict | None:
    return next((w for w in workers.read_all() if w["name"] == name and w["reporting"]), None)


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_job_waits_for_a_worker_big_enough_and_goes_to_it_when_one_reports(
    alice, alice_api, demo_models, classes, settings
):
    settings.TAILOR_TRAINING_SLOTS = 0
    small_worker, big_worker = memory_worker("gpu-a", 24), memory_worker("gpu-big", 48)
    with paused_workers({"train"}):
        small_worker.start()
        try:
            found = wait_for(lambda: heartbeat_of(small_worker.name), 30, "its heartbeat")
            # Its memory earns it the classes up to 24 GiB, besides plain train.
            assert found["queues"] == ["default", "train", "train.16gib", "train.24gib"]
            assert (found["memory_gib"], found["memory_from"]) == (24, "setting")
            assert found["memory_classes"] == ["up to 8 GiB", "up to 16 GiB", "up to 24 GiB"]

            job = queue_short_job(alice, ready_sample(alice), start=False)
            FineTuneJob.objects.filter(pk=job.pk).update(estimate={"memory_bytes": 30 * GIB})
            start_job(FineTuneJob.objects.get(pk=job.pk))  # its release runs at once
            job.refresh_from_db()
            assert (job.status, job.dispatched_at, job.task_id) == (JobStatus.QUEUED, None, "")
            reason = (
                "waiting for a training worker with 48 GiB; the largest connected one has "
                f"24 GiB ({small_worker.name})"
            )
            assert standing(job).reason == reason
            shown = alice_api.get(f"/api/v1/jobs/{job.pk}/").json()["queue"]
            assert (shown["released"], shown["reason"]) == (False, reason)
            assert shown["message"] == f"1st in line; {reason}"

            big_worker.start()
            wait_for(lambda: heartbeat_of(big_worker.name), 30, "the big worker's heartbeat")
            assert release() == 1  # the next release pass
            taken = wait_for(
                lambda: (j := FineTuneJob.objects.get(pk=job.pk)).worker and j, 60,
                "a worker to take the job", big_worker.child,
            )  # fmt: skip
            assert taken.worker == big_worker.name
            cancel_job(taken)
            wait_for(
                lambda: FineTuneJob.objects.get(pk=job.pk).status == JobStatus.CANCELLED, 120,
                "the job to stop", big_worker.child,
            )  # fmt: skip
        finally:
            big_worker.stop()
            small_worker.stop()
