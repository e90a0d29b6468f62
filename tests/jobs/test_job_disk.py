"""A full disk, for real: a small tmpfs mounted under the test's MEDIA_ROOT
holds a job's folder (or an upload's), so every write fails as it would on a
full disk, from whichever library writes it (safetensors, torch.save, zipfile,
Django's file storage).

Mounting needs root, as the test machine runs; nothing of Tailor is mocked.
Training runs in process (`worker.run_job`, as the Celery task calls it) on
tailor-tiny; the sizes of what it writes are measured on a first, normal run
of the same configuration, and the tmpfs is sized from them.
"""

import contextlib
import errno
import math
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from datasets_app.models import Dataset
from jobs import worker
from jobs.models import FineTuneJob, JobStatus, MetricPoint
from jobs.services import lifecycle
from jobs.services.lifecycle import check_start_job, create_job
from jobs.training import checkpoint_is_complete
from studio.services import disk
from studio.services.tokens import create_token
from tests.builders import api_client
from tests.processes import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

PAGE = 4096
SHORT = {"batch_size": 8, "logging_steps": 1}
ROUTING_SAMPLE = Path(__file__).resolve().parents[2] / "datasets_app/samples/support-routing"


@contextlib.contextmanager
def tmpfs(folder: Path, size: int):
    """A tmpfs of `size` bytes mounted at `folder` for the block."""
    folder.mkdir(parents=True, exist_ok=True)
    kib = math.ceil(size / 1024)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={kib}k,mode=755", "tmpfs", str(folder)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if mounted.returncode != 0:
        pytest.fail(
            "This test fills a real disk by mounting a small tmpfs, which needs root "
            f"(mount said: {mounted.stderr.strip() or mounted.returncode}). Run it as root."
        )
    try:
        yield folder
    finally:
        unmounted = subprocess.run(["umount", str(folder)], capture_output=True, check=False)
        if unmounted.returncode != 0:
            # torch.save keeps the file of a failed write open (a leak of its own);
            # a training worker's process ends after each job, which closes it.
            subprocess.run(["umount", "--lazy", str(folder)], check=True)


def grow(folder: Path, size: int) -> None:
    """Give the tmpfs at `folder` more room, keeping its files (space freed)."""
    kib = math.ceil(size / 1024)
    subprocess.run(["mount", "-o", f"remount,size={kib}k", str(folder)], check=True)


def fill(folder: Path) -> None:
    """Write into `folder` until its disk is full."""
    with (folder / "filler").open("wb", buffering=0) as filler:
        try:
            while True:
                filler.write(b"\0" * 65536)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC


def footprint(path: Path) -> int:
    """Bytes a tmpfs charges for `path`: each file's data in whole pages."""
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(math.ceil(p.stat().st_size / PAGE) * PAGE for p in files)


def queued_job(owner, dataset, **training) -> FineTuneJob:
    document = {
        "data": {"dataset": str(dataset.pk)},
        "model": {"base_model": "tailor-tiny", "method": "lora"},
        "training": {**SHORT, **training},
    }
    job = create_job(owner, check_start_job(owner, document), start=False)
    FineTuneJob.objects.filter(pk=job.pk).update(status=JobStatus.QUEUED)
    return job


def run(job) -> str:
    """Run the job here; when the session's Celery worker took its message
    first (a resumed job is sent), wait for that worker to end it."""
    outcome = worker.run_job(str(job.pk), "here")
    if outcome == "not-claimed":
        wait_for(
            lambda: FineTuneJob.objects.get(pk=job.pk).status in ("succeeded", "failed"),
            180,
            "the worker's run",
        )
        outcome = FineTuneJob.objects.get(pk=job.pk).status
    job.refresh_from_db()
    return outcome


_measured: dict[tuple, dict[str, int]] = {}


def measured(owner, dataset, **training) -> dict[str, int]:
    """What a normal run of this configuration writes, in tmpfs bytes."""
    key = tuple(sorted(training.items()))
    if key not in _measured:
        job = queued_job(owner, dataset, **training)
        assert run(job) == "succeeded", job.error_message
        folder = job.attempt_folder(1)
        first = min(
            (folder / "checkpoints").glob("checkpoint-*"),
            key=lambda p: int(p.name.removeprefix("checkpoint-")),
        )
        _measured[key] = {
            "data": footprint(job.data_folder),
            "checkpoint": footprint(first),
            "optimizer": footprint(first / "optimizer.pt"),
            "adapter": footprint(folder / "adapter"),
            "zip": footprint(folder / "adapter.zip"),
        }
        print(f"\nmeasured tailor-tiny LoRA, {training}: {_measured[key]}")
    return _measured[key]


@contextlib.contextmanager
def job_on_tmpfs(job, size: int, tmp_path: Path):
    """The job's folder on a tmpfs of `size` bytes, its data copied back in."""
    kept = tmp_path / "job-data"
    shutil.copytree(job.data_folder, kept)
    with tmpfs(job.folder, size):
        shutil.copytree(kept, job.data_folder)
        yield


def seconds_between(job, first_message: str, to_status: str) -> float:
    events = job.events.order_by("id")
    start = events.filter(message=first_message).last().created_at
    end = events.filter(to_status=to_status).last().created_at
    return (end - start).total_seconds()


def assert_nothing_partial(job) -> None:
    folder = job.attempt_folder(job.attempt)
    assert not list(job.folder.rglob("*.partial"))
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".")]
    for checkpoint in (folder / "checkpoints").glob("checkpoint-*"):
        assert checkpoint_is_complete(checkpoint), checkpoint


# --- recognising a full disk ----------------------------------------------------------------


def test_a_full_disk_is_recognised_whichever_library_writes(tmp_path):
    import torch
    from safetensors.torch import save_file

    writes = {
        "python": lambda folder: (folder / "a.json").write_bytes(b"x" * 65536),
        "safetensors": lambda folder: save_file({"w": torch.zeros(65536)}, folder / "w.st"),
        "torch": lambda folder: torch.save({"w": torch.zeros(65536)}, folder / "o.pt"),
    }
    errors = {}
    with tmpfs(tmp_path / "full", 256 * 1024) as folder:
        fill(folder)
        for name, write in writes.items():
            with pytest.raises(Exception) as raised:
                write(folder)
            errors[name] = raised.value
        assert disk.is_disk_full(errors["python"]) and disk.is_disk_full(errors["safetensors"])
        # torch.save names no errno ("unexpected pos …"): the disk itself is asked.
        assert type(errors["torch"]) is RuntimeError and not disk.is_disk_full(errors["torch"])
        assert disk.nearly_full(folder)


# --- training ------------------------------------------------------------------------------


@pytest.mark.training
def test_a_full_disk_fails_the_run_with_nothing_partial_and_resume_continues(
    alice, routing, tmp_path
):
    training = {"max_steps": 6, "save_every": 2}
    # A checkpoint's size does not depend on the run's length: the zip test's
    # measured run (2 steps) tells it, one training run fewer for the suite.
    sizes = measured(alice, routing, max_steps=2, save_every=2)
    job = queued_job(alice, routing, **training)
    # Room for the first checkpoint and half of the next.
    room = sizes["data"] + sizes["checkpoint"] + sizes["checkpoint"] // 2
    with job_on_tmpfs(job, room, tmp_path):
        started = time.monotonic()
        outcome = run(job)
        took = time.monotonic() - started
        assert (outcome, job.status, job.error_code) == ("failed", "failed", "disk_full")
        assert job.error_message == worker.DISK_FULL_MESSAGE
        assert_nothing_partial(job)
        checkpoints = job.attempt_folder(1) / "checkpoints"
        assert sorted(p.name for p in checkpoints.iterdir() if p.is_dir()) == ["checkpoint-2"]
        assert not (job.attempt_folder(1) / "adapter").exists()
        reported = seconds_between(job, "Saved a checkpoint at step 2.", "failed")
        print(f"\nfull disk at checkpoint-4: run {took:.1f} s; failed {reported:.2f} s after "
              f"checkpoint-2 was saved (tmpfs {room:,} bytes)")  # fmt: skip

        grow(job.folder, 64 * 1024 * 1024)  # an operator freed space
        job = lifecycle.resume_job(job)
        # Queued and sent: the session's worker may have claimed it already
        # (run() then waits for that worker's run).
        assert job.status in (JobStatus.QUEUED, JobStatus.RUNNING)
        assert run(job) == "succeeded", job.error_message
        assert (job.attempt, job.current_step, job.error_code) == (2, 6, "")
        messages = list(job.events.values_list("message", flat=True))
        assert "Resumed: queued to continue from its checkpoint of step 2." in messages
        assert "Resuming from checkpoint-2." in messages
        points = MetricPoint.objects.filter(job=job, kind="train").order_by("step")
        assert [(p.attempt, p.step) for p in points] == [
            (1, 1), (1, 2), (2, 3), (2, 4), (2, 5), (2, 6),
        ]  # fmt: skip
        assert job.adapter_path == str(job.attempt_folder(2) / "adapter")
        assert (job.attempt_folder(2) / "adapter.zip").stat().st_size == job.adapter_bytes


@pytest.mark.training
def test_an_adapter_zip_that_does_not_fit_fails_the_run_and_leaves_no_partial_zip(
    alice, routing, tmp_path
):
    training = {"max_steps": 2, "save_every": 2}
    sizes = measured(alice, routing, **training)
    job = queued_job(alice, routing, **training)
    # The checkpoint and the adapter fit; half of the zip does.
    room = sizes["data"] + sizes["checkpoint"] + sizes["adapter"] + sizes["zip"] // 2
    with job_on_tmpfs(job, room, tmp_path):
        started = time.monotonic()
        outcome = run(job)
        took = time.monotonic() - started
        assert (outcome, job.status, job.error_code) == ("failed", "failed", "disk_full")
        assert job.error_message == worker.DISK_FULL_MESSAGE
        assert_nothing_partial(job)
        assert not (job.attempt_folder(1) / "adapter.zip").exists()
        reported = seconds_between(job, "Saved the adapter at step 2", "failed")
        print(f"\nfull disk at the zip: run {took:.1f} s; failed {reported:.2f} s after the "
              f"adapter was saved (tmpfs {room:,} bytes)")  # fmt: skip

        grow(job.folder, 64 * 1024 * 1024)
        job = lifecycle.resume_job(job)
        assert run(job) == "succeeded", job.error_message
        assert "Resuming from checkpoint-2." in job.events.values_list("message", flat=True)
        assert (job.attempt_folder(2) / "adapter.zip").exists()


# --- uploads -------------------------------------------------------------------------------


def upload_everywhere(user, client) -> list:
    """The same file through the page (plain and htmx), /api/v1/ and /v1/."""
    data = (ROUTING_SAMPLE / "train.jsonl").read_bytes()

    def file():
        return SimpleUploadedFile("routing.jsonl", data, content_type="application/jsonl")

    openai = Client()
    token = {"HTTP_AUTHORIZATION": f"Bearer {create_token(user, 'disk').secret}"}
    page = reverse("dataset-upload")
    htmx = {"HX-Request": "true"}
    return [
        ("page", client.post(page, {"file": file()})),
        ("htmx", client.post(page, {"file": file()}, headers=htmx)),
        ("api", api_client(user).post("/api/v1/datasets/", {"file": file()}, format="multipart")),
        ("v1", openai.post("/v1/files", {"file": file(), "purpose": "fine-tune"}, **token)),
    ]


def assert_refused_with_507(answers) -> None:
    for name, response in answers:
        assert response.status_code == 507, (name, response.content[:300])
    page, htmx, api, v1 = (response for _, response in answers)
    assert escape(disk.UPLOAD_DISK_FULL) in page.content.decode()
    native = {"code": "disk_full", "message": disk.UPLOAD_DISK_FULL, "field": "file"}
    assert htmx.json() == api.json() == {"error": native}
    assert v1.json() == {
        "error": {
            "message": disk.UPLOAD_DISK_FULL, "type": "server_error", "param": "file",
            "code": "disk_full",
        }
    }  # fmt: skip


def test_an_upload_to_a_full_disk_answers_507_and_keeps_nothing(
    alice, alice_client, settings, tmp_path
):
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    settings.FILE_UPLOAD_TEMP_DIR = str(uploads)
    with tmpfs(tmp_path / "media", 256 * 1024) as media:
        fill(media)
        settings.MEDIA_ROOT = media
        started = time.monotonic()
        answers = upload_everywhere(alice, alice_client)
        print(f"\nfour uploads to a full MEDIA_ROOT refused in {time.monotonic() - started:.2f} s")
        assert_refused_with_507(answers)
        assert not Dataset.objects.exists()
        assert [p.name for p in media.iterdir()] == ["filler"]
    assert list(uploads.iterdir()) == []


def test_an_upload_that_fills_the_disk_while_it_arrives_answers_507_and_keeps_nothing(
    alice, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path / "media"
    with tmpfs(tmp_path / "uploads", 64 * 1024) as uploads:
        fill(uploads)
        settings.FILE_UPLOAD_TEMP_DIR = str(uploads)
        token = {"HTTP_AUTHORIZATION": f"Bearer {create_token(alice, 'disk').secret}"}
        data = (ROUTING_SAMPLE / "train.jsonl").read_bytes()
        api = api_client(alice).post(
            "/api/v1/datasets/", {"file": SimpleUploadedFile("r.jsonl", data)}, format="multipart"
        )
        v1 = Client().post(
            "/v1/files", {"file": SimpleUploadedFile("r.jsonl", data), "purpose": "fine-tune"},
            **token,
        )  # fmt: skip
        assert (api.status_code, v1.status_code) == (507, 507)
        assert api.json()["error"]["code"] == v1.json()["error"]["code"] == "disk_full"
        assert not Dataset.objects.exists()
        assert [p.name for p in uploads.iterdir()] == ["filler"]
    assert not (tmp_path / "media" / "datasets").exists()
