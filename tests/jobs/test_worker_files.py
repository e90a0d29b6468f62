"""A job's files on workers that are other machines, through a real
S3-compatible server (moto on loopback, tests/s3.py).

This process plays every machine in turn: the web creates the job in its
MEDIA_ROOT, then `on_machine` points MEDIA_ROOT at an empty folder of
another machine's own, as a worker there would have. What each machine may
rely on is only the database and the store.
"""

import json
from pathlib import Path

import pytest
from django.db.models.signals import post_save

from jobs import worker
from jobs.models import Checkpoint, FineTuneJob, JobEvent, JobStatus
from jobs.services import ledger, worker_files
from jobs.services.lifecycle import can_resume
from serving.worker import job_pane
from studio.services import object_store
from tests.builders import queue_short_job

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def routing(s3, routing):
    """Alice's ready sample, its files in the store. A session worker (the
    filesystem layout) may have validated it before this process did; in a
    studio every machine has the same layout, and an s3 validator pushes the
    files before it marks the dataset ready, as this does (a no-op when this
    process validated it: the objects hold the same content)."""
    object_store.push(routing.folder)
    return routing


def on_machine(settings, tmp_path: Path, name: str) -> Path:
    """From here on this process is another machine: an empty MEDIA_ROOT of its own."""
    root = tmp_path / name
    root.mkdir()
    settings.MEDIA_ROOT = str(root)
    return root


def queued(job) -> FineTuneJob:
    FineTuneJob.objects.filter(pk=job.pk).update(status=JobStatus.QUEUED)
    return FineTuneJob.objects.get(pk=job.pk)


def stored_names(s3, prefix: str) -> set[str]:
    return {key.removeprefix(prefix) for key in s3.keys(prefix)}


@pytest.mark.training
def test_a_run_on_another_machine_stores_each_checkpoint_and_the_adapter_before_its_row(
    s3, alice, routing, settings, tmp_path
):
    job = queued(queue_short_job(alice, routing, start=False, max_steps=6, save_every=2))
    web = Path(settings.MEDIA_ROOT)
    gpu = on_machine(settings, tmp_path, "gpu-a")
    attempt = f"jobs/{job.pk}/attempt-1/"
    # What the store held at the moment each row was written (the writer's thread).
    at_record: list[tuple] = []

    def checkpoint_recorded(sender, instance, **kwargs):
        folder = f"{attempt}checkpoints/checkpoint-{instance.step}/"
        at_record.append((instance.step, "trainer_state.json" in stored_names(s3, folder)))

    def event_recorded(sender, instance, **kwargs):
        if instance.to_status == JobStatus.SUCCEEDED:
            at_record.append(("succeeded", stored_names(s3, attempt) >= {
                "adapter.zip", "adapter/adapter_model.safetensors", "adapter/tailor_config.json",
            }))  # fmt: skip

    post_save.connect(checkpoint_recorded, sender=Checkpoint, weak=False)
    post_save.connect(event_recorded, sender=JobEvent, weak=False)
    try:
        assert worker.run_job(str(job.pk), "gpu-a") == "succeeded"
    finally:
        post_save.disconnect(checkpoint_recorded, sender=Checkpoint)
        post_save.disconnect(event_recorded, sender=JobEvent)

    assert at_record == [(2, True), (4, True), (6, True), ("succeeded", True)]
    # The data came from the store, as the web wrote it.
    train = f"jobs/{job.pk}/data/train.jsonl"
    assert (gpu / train).read_bytes() == (web / train).read_bytes()
    # The trainer keeps two checkpoints: the one it rotated out left the store too.
    checkpoints = {key.split("/")[0] for key in stored_names(s3, f"{attempt}checkpoints/")}
    assert checkpoints == {"checkpoint-4", "checkpoint-6"}
    job.refresh_from_db()
    assert job.adapter_path == str(gpu / attempt / "adapter")
    # The job's log says what the store cost against the training, in words and figures.
    notes = {
        event.data["storage"]["direction"]: (event.message, event.data["storage"])
        for event in job.events.filter(data__has_key="storage")
    }
    fetch_words, fetched = notes["fetch"]
    store_words, stored = notes["store"]
    data_files = [p for p in (gpu / f"jobs/{job.pk}/data").iterdir() if p.is_file()]
    assert (fetched["files"], fetched["bytes"]) == (
        len(data_files),
        sum(p.stat().st_size for p in data_files),
    )
    assert fetch_words.startswith(
        f"Fetched the job's files from the object store: {len(data_files)} files"
    )
    local = [p for p in (gpu / attempt).rglob("*") if p.is_file()]
    assert stored["bytes"] >= sum(p.stat().st_size for p in local) > 0
    assert stored["files"] >= len(local)
    assert stored["seconds"] > 0 and stored["training_seconds"] > 0
    assert store_words.endswith(f"against {stored['training_seconds']:.1f} s of training.")

    # A third machine merges the adapter it fetches, and stores the zip before it is ready.
    export = on_machine(settings, tmp_path, "gpu-b")
    FineTuneJob.objects.filter(pk=job.pk).update(export_status="queued")
    assert worker.run_export(str(job.pk), "gpu-b") == "ready"
    job.refresh_from_db()
    assert job.export_path == str(export / f"jobs/{job.pk}/export-1/merged-model.zip")
    assert s3.keys(f"jobs/{job.pk}/export-1/") == [f"jobs/{job.pk}/export-1/merged-model.zip"]
    assert (export / attempt / "adapter/adapter_model.safetensors").is_file()


def fake_checkpoint(folder: Path, step: int) -> Path:
    """A checkpoint folder as complete as the resume check asks (its marker)."""
    path = folder / f"checkpoint-{step}"
    path.mkdir(parents=True)
    (path / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    (path / "adapter_model.safetensors").write_bytes(b"weights %d" % step)
    return path


def test_another_machine_resumes_from_the_newest_checkpoint_the_store_holds(
    s3, alice, routing, settings, tmp_path
):
    job = queue_short_job(alice, routing, start=False)
    gpu_a = on_machine(settings, tmp_path, "gpu-a")
    checkpoints = job.attempt_folder(1) / "checkpoints"
    object_store.push(fake_checkpoint(checkpoints, 3))
    Checkpoint.objects.create(job=job, attempt=1, step=3, path=str(checkpoints / "checkpoint-3"))
    # Recorded, but its upload never finished (a row a bug or a person wrote).
    Checkpoint.objects.create(job=job, attempt=1, step=6, path=str(checkpoints / "checkpoint-6"))
    # A row that leads out of the job's folder is never fetched nor used.
    Checkpoint.objects.create(job=job, attempt=1, step=9, path=str(gpu_a / "datasets"))

    gpu_b = on_machine(settings, tmp_path, "gpu-b")
    row, path = worker_files.resume_from(FineTuneJob.objects.get(pk=job.pk))

    assert row.step == 3
    assert path == gpu_b / f"jobs/{job.pk}/attempt-1/checkpoints/checkpoint-3"
    assert (path / "adapter_model.safetensors").read_bytes() == b"weights 3"


def test_the_web_and_a_new_attempt_keep_the_checkpoints_other_machines_stored(
    s3, alice, routing, settings, tmp_path
):
    job = queue_short_job(alice, routing, start=False)
    on_machine(settings, tmp_path, "gpu-a")
    first = job.attempt_folder(1) / "checkpoints"
    object_store.push(fake_checkpoint(first, 4))
    Checkpoint.objects.create(job=job, attempt=1, step=4, path=str(first / "checkpoint-4"))
    FineTuneJob.objects.filter(pk=job.pk).update(attempt=2, status=JobStatus.RUNNING)

    # The web machine holds none of the files, yet names the stored checkpoint
    # (what "Resume" says, and what housekeeping keeps).
    on_machine(settings, tmp_path, "web")
    job = FineTuneJob.objects.get(pk=job.pk)
    assert ledger.resume_checkpoint(job).step == 4
    # A second attempt on another machine records its own: the first
    # attempt's row stays, although its folder is not on this machine.
    on_machine(settings, tmp_path, "gpu-b")
    second = job.attempt_folder(2) / "checkpoints"
    object_store.push(fake_checkpoint(second, 6))
    ledger.record_checkpoint(job.pk, 2, {"step": 6, "path": str(second / "checkpoint-6")})
    assert sorted(Checkpoint.objects.filter(job=job).values_list("attempt", "step")) == [
        (1, 4),
        (2, 6),
    ]
    settings.TAILOR_STORAGE = "filesystem"  # one shared folder: a missing file is not resumed from
    (second / "checkpoint-6" / "trainer_state.json").unlink()
    assert ledger.resume_checkpoint(job) is None


def test_a_second_job_on_the_same_data_downloads_none_of_it_on_the_same_machine(
    s3, alice, routing, settings, tmp_path
):
    first = queue_short_job(alice, routing, start=False)
    second = queue_short_job(alice, routing, start=False)
    gpu = on_machine(settings, tmp_path, "gpu-a")

    worker_files.fetch_data(first, fetched := object_store.Transfer())
    downloaded = dict(s3.requests)
    s3.requests.clear()
    worker_files.fetch_data(second, again := object_store.Transfer())

    size = (gpu / f"jobs/{first.pk}/data/train.jsonl").stat().st_size
    assert downloaded["GetObject"] == 2  # training and validation rows
    assert downloaded["body_bytes"] >= size > 0
    assert (s3.requests["GetObject"], s3.requests["body_bytes"]) == (0, 0)
    assert (fetched.files, fetched.bytes) == (2, downloaded["body_bytes"])
    assert (again.files, again.bytes) == (0, 0)
    assert worker_files.fetched_note(again)["message"].startswith(
        "The job's files were already on this machine: nothing downloaded"
    )
    train = f"jobs/{second.pk}/data/train.jsonl"
    assert (gpu / train).read_bytes() == (gpu / f"jobs/{first.pk}/data/train.jsonl").read_bytes()


def test_an_inference_machine_fetches_an_adapter_once_and_loads_it_from_its_own_folder(
    s3, alice, routing, settings, tmp_path
):
    job = queue_short_job(alice, routing, start=False)
    on_machine(settings, tmp_path, "gpu-a")
    adapter = job.attempt_folder(1) / "adapter"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text('{"r": 8}')
    object_store.push(adapter)
    FineTuneJob.objects.filter(pk=job.pk).update(status="succeeded", adapter_path=str(adapter))

    infer = on_machine(settings, tmp_path, "infer-a")
    job = FineTuneJob.objects.get(pk=job.pk)
    pane = job_pane(job)
    s3.requests.clear()
    again = job_pane(job)

    here = infer / f"jobs/{job.pk}/attempt-1/adapter"
    assert pane.adapter.path == again.adapter.path == str(here)
    assert (here / "adapter_config.json").read_text() == '{"r": 8}'
    assert sum(s3.requests.values()) == 0  # the second load asked the store nothing


def test_a_recorded_path_is_read_under_this_machines_job_folder_and_only_there(
    s3, alice, routing, settings, tmp_path
):
    job = queue_short_job(alice, routing, start=False)
    on_machine(settings, tmp_path, "gpu-a")
    written_there = f"/srv/gpu-b/media/jobs/{job.pk}/attempt-2/adapter"

    assert worker_files.here(job, written_there) == job.folder / "attempt-2/adapter"
    for foreign in (f"/srv/media/jobs/{job.pk}/../secret", "/etc/passwd", "relative/path"):
        assert worker_files.here(job, foreign) == Path(foreign)
    settings.TAILOR_STORAGE = "filesystem"
    assert worker_files.here(job, written_there) == Path(written_there)


def test_a_worker_whose_store_fails_ends_the_job_failed_in_plain_words(
    s3, alice, routing, settings, tmp_path
):
    job = queued(queue_short_job(alice, routing, start=False))
    on_machine(settings, tmp_path, "gpu-a")
    settings.TAILOR_S3_BUCKET = "a-bucket-nobody-made"

    assert worker.run_job(str(job.pk), "gpu-a") == "failed"

    job.refresh_from_db()
    assert (job.status, job.error_code) == ("failed", "storage")
    assert job.error_message == (
        "The worker could not read or store the job's files in the object store. Resume the "
        "job once the store is reachable; an operator can see the error on this job's page."
    )
    # Not the job's doing: its owner resumes it, from its newest stored checkpoint.
    assert can_resume(job)
    # Operators see the store's own sentence.
    assert "The bucket 'a-bucket-nobody-made' does not exist" in job.error_traceback
