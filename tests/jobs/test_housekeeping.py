"""Housekeeping: what a finished job keeps on disk, and the sweep of
half-written files. Real files in the test's MEDIA_ROOT, real rows; the
clock is moved by passing `now`, and a file is made old by its mtime."""

import json
import os
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from jobs.models import Checkpoint, FineTuneJob, JobStatus
from jobs.services import housekeeping
from tests.builders import make_job, ready_sample

pytestmark = pytest.mark.django_db

HOUR = 3600


@pytest.fixture(autouse=True)
def own_media(settings, tmp_path):
    """A MEDIA_ROOT of the test's own: the sweep looks at all of it."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "uploads")
    return settings.MEDIA_ROOT


@pytest.fixture
def job(alice, demo_models):
    return make_job(alice, ready_sample(alice))


def write(path: Path, size: int = 100) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    return path


def checkpoint(job, attempt: int, step: int, *, complete: bool = True, row: bool = True) -> Path:
    folder = job.attempt_folder(attempt) / "checkpoints" / f"checkpoint-{step}"
    write(folder / "optimizer.pt", 2000)
    write(folder / "adapter_model.safetensors", 1000)
    if complete:
        (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    if row:
        Checkpoint.objects.create(job=job, attempt=attempt, step=step, path=str(folder))
    return folder


def adapter(job, attempt: int) -> Path:
    folder = job.attempt_folder(attempt) / "adapter"
    write(folder / "adapter_model.safetensors", 1000)
    write(job.attempt_folder(attempt) / "adapter.zip", 1100)
    return folder


def finish(job, status, *, hours_ago: float = 1, **fields) -> FineTuneJob:
    FineTuneJob.objects.filter(pk=job.pk).update(
        status=status, finished_at=timezone.now() - timedelta(hours=hours_ago), **fields
    )
    job.refresh_from_db()
    return job


def age(path: Path, seconds: float) -> Path:
    """Make `path` and everything under it last written `seconds` ago."""
    then = time.time() - seconds
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.utime(os.path.join(root, name), (then, then))
    os.utime(path, (then, then))
    return path


def tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


# --- retention --------------------------------------------------------------------------


def test_a_succeeded_job_keeps_everything_for_the_window_then_only_its_adapter(job, settings):
    settings.TAILOR_KEEP_CHECKPOINTS_HOURS = 72
    checkpoint(job, 1, 3)  # the attempt that was lost, and resumed from
    checkpoint(job, 2, 6)
    adapter(job, 2)
    write(job.folder / "export-1" / "merged-model.zip")
    job = finish(job, JobStatus.SUCCEEDED, hours_ago=1, attempt=2,
                 adapter_path=str(job.attempt_folder(2) / "adapter"))  # fmt: skip
    before = tree(job.folder)

    assert housekeeping.run() == {"trimmed": 0, "swept": 0}
    assert tree(job.folder) == before

    later = timezone.now() + timedelta(hours=72)
    assert housekeeping.run(now=later)["trimmed"] == 2  # the two checkpoints
    assert tree(job.folder) == [
        "attempt-2/adapter.zip",
        "attempt-2/adapter/adapter_model.safetensors",
        "data/train.jsonl",
        "data/validation.jsonl",
        "export-1/merged-model.zip",
    ]
    assert not job.attempt_folder(1).exists()
    assert not Checkpoint.objects.filter(job=job).exists()
    # The adapter is still served.
    from jobs.services.artifacts import adapter_archive

    assert adapter_archive(job) == job.attempt_folder(2) / "adapter.zip"
    assert housekeeping.run(now=later) == {"trimmed": 0, "swept": 0}


def test_with_no_time_to_keep_a_succeeded_job_keeps_only_its_adapter_at_once(job, settings):
    settings.TAILOR_KEEP_CHECKPOINTS_HOURS = 0
    checkpoint(job, 1, 6)
    adapter(job, 1)
    finish(job, JobStatus.SUCCEEDED, hours_ago=0, attempt=1,
           adapter_path=str(job.attempt_folder(1) / "adapter"))  # fmt: skip
    housekeeping.run()
    assert [p for p in tree(job.folder) if p.startswith("attempt-")] == [
        "attempt-1/adapter.zip",
        "attempt-1/adapter/adapter_model.safetensors",
    ]


@pytest.mark.parametrize("status", [JobStatus.FAILED, JobStatus.CANCELLED])
def test_a_failed_or_cancelled_job_keeps_only_its_newest_complete_checkpoint_then_nothing(
    job, settings, status
):
    settings.TAILOR_KEEP_CHECKPOINTS_HOURS = 72
    checkpoint(job, 1, 2)
    newest = checkpoint(job, 2, 4)
    checkpoint(job, 2, 6, complete=False, row=False)  # cut short by a full disk
    write(job.attempt_folder(2) / "adapter" / "adapter_model.safetensors")
    job = finish(job, status, hours_ago=1, attempt=2, error_code="disk_full")

    housekeeping.run()
    assert [p for p in tree(job.folder) if p.startswith("attempt-")] == [
        "attempt-2/checkpoints/checkpoint-4/adapter_model.safetensors",
        "attempt-2/checkpoints/checkpoint-4/optimizer.pt",
        "attempt-2/checkpoints/checkpoint-4/trainer_state.json",
    ]
    assert list(Checkpoint.objects.filter(job=job).values_list("step", flat=True)) == [4]
    assert not job.attempt_folder(1).exists()

    housekeeping.run(now=timezone.now() + timedelta(hours=72))
    assert not newest.exists() and not job.attempt_folder(2).exists()
    assert not Checkpoint.objects.filter(job=job).exists()
    assert tree(job.folder) == ["data/train.jsonl", "data/validation.jsonl"]


@pytest.mark.parametrize("status", [JobStatus.CREATED, JobStatus.QUEUED, JobStatus.RUNNING])
def test_a_job_that_is_not_finished_keeps_its_checkpoints(job, settings, status):
    settings.TAILOR_KEEP_CHECKPOINTS_HOURS = 0
    kept = checkpoint(job, 1, 2)
    FineTuneJob.objects.filter(pk=job.pk).update(status=status, attempt=1)
    housekeeping.run(now=timezone.now() + timedelta(days=30))
    assert (kept / "optimizer.pt").exists()
    assert Checkpoint.objects.filter(job=job).count() == 1


def test_a_job_resumed_after_it_was_planned_is_left_alone(job, settings):
    settings.TAILOR_KEEP_CHECKPOINTS_HOURS = 0
    kept = checkpoint(job, 1, 2)
    job = finish(job, JobStatus.FAILED, attempt=1, error_code="disk_full")
    assert housekeeping.retention_plan(job)
    FineTuneJob.objects.filter(pk=job.pk).update(status=JobStatus.QUEUED)  # Resume, meanwhile
    assert housekeeping.trim_job(job.pk) == 0
    assert (kept / "trainer_state.json").exists()


def test_a_job_whose_files_are_named_outside_its_folder_is_left_alone(job, settings, tmp_path):
    settings.TAILOR_KEEP_CHECKPOINTS_HOURS = 0
    kept = checkpoint(job, 1, 6)
    moved = tmp_path / "old-media" / "attempt-1" / "adapter"
    finish(job, JobStatus.SUCCEEDED, attempt=1, adapter_path=str(moved))
    housekeeping.run()
    assert (kept / "optimizer.pt").exists()


# --- sweeping ---------------------------------------------------------------------------


def test_stale_partial_files_of_attempts_that_do_not_run_are_swept_and_fresh_ones_stay(job):
    FineTuneJob.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, attempt=2)
    lost = job.attempt_folder(1)  # an attempt whose worker died
    stale = [
        age(write(lost / "adapter.zip.partial"), 2 * HOUR),
        age(write(lost / ".adapter-k2j4" / "adapter_model.safetensors").parent, 2 * HOUR),
        age(checkpoint(job, 1, 4, complete=False, row=False), 2 * HOUR),
    ]
    complete = age(checkpoint(job, 1, 2), 2 * HOUR)
    fresh = write(lost / "checkpoints" / "checkpoint-6" / "optimizer.pt").parent
    running = job.attempt_folder(2)  # the live attempt: never touched, however old
    untouched = [
        age(write(running / "adapter.zip.partial"), 2 * HOUR),
        age(checkpoint(job, 2, 8, complete=False, row=False), 2 * HOUR),
    ]

    assert housekeeping.sweep() == 3
    assert not any(path.exists() for path in stale)
    assert all(path.exists() for path in [complete, fresh, *untouched])


def test_a_running_export_is_not_swept(job):
    FineTuneJob.objects.filter(pk=job.pk).update(
        status=JobStatus.SUCCEEDED, export_status="running", export_attempt=1
    )
    writing = age(write(job.export_folder(1) / "merged-model.zip.partial"), 2 * HOUR)
    left = age(write(job.export_folder(0) / "merged-model.zip.partial"), 2 * HOUR)
    housekeeping.sweep()
    assert writing.exists() and not left.exists()


def test_folders_without_a_row_are_swept_once_stale(alice, settings):
    from datasets_app.models import Dataset

    media = Path(settings.MEDIA_ROOT)

    def folder(path: Path, *, stale: bool = True) -> Path:
        write(path / "file")
        return age(path, 2 * HOUR) if stale else path

    orphan_job = folder(media / "jobs" / str(uuid.uuid4()))
    new_job = folder(media / "jobs" / str(uuid.uuid4()), stale=False)  # its row is being saved
    half_upload = folder(media / "datasets" / str(uuid.uuid4()))
    deleted = Dataset.objects.create(owner=alice, name="gone", original_filename="g.jsonl",
                                     deleted_at=timezone.now())  # fmt: skip
    deleted_folder = folder(deleted.folder)
    live = Dataset.objects.create(owner=alice, name="kept", original_filename="k.jsonl")
    live_folder = folder(live.folder)
    not_ours = folder(media / "jobs" / "README")

    assert housekeeping.sweep() == 3
    assert not orphan_job.exists() and not half_upload.exists() and not deleted_folder.exists()
    assert new_job.exists() and live_folder.exists() and not_ours.exists()


def test_stale_temporary_upload_files_are_swept(settings):
    uploads = Path(settings.FILE_UPLOAD_TEMP_DIR)
    left = age(write(uploads / "tmpa8f2k1.upload.jsonl"), 2 * HOUR)
    uploading = write(uploads / "tmpz9q3.upload.csv")
    other = age(write(uploads / "notes.txt"), 2 * HOUR)
    assert housekeeping.sweep() == 1
    assert not left.exists() and uploading.exists() and other.exists()


# --- beat, and what the page shows ---------------------------------------------------------


def test_beat_sends_housekeeping_to_the_maintenance_queue(settings, job):
    from jobs.tasks import tidy_disk
    from studio.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["housekeeping"]
    assert entry["task"] == "jobs.housekeeping" == tidy_disk.name
    assert entry["options"]["queue"] == "maintenance"
    assert entry["schedule"] == float(settings.TAILOR_HOUSEKEEPING_INTERVAL_SECONDS) == 600.0
    assert "jobs.housekeeping" in app.tasks
    assert tidy_disk() == {"trimmed": 0, "swept": 0}


def test_disk_usage_counts_the_adapter_checkpoints_and_export(job):
    checkpoint(job, 1, 3)
    adapter(job, 1)
    write(job.export_folder(1) / "merged-model.zip", 5000)
    FineTuneJob.objects.filter(pk=job.pk).update(
        adapter_path=str(job.attempt_folder(1) / "adapter")
    )
    job.refresh_from_db()
    data = sum(p.stat().st_size for p in job.data_folder.iterdir())
    assert housekeeping.disk_usage(job) == {
        "adapter": 2100,
        "checkpoints": 3000 + len('{"global_step": 3}'),
        "export": 5000,
        "total": 2100 + 3018 + 5000 + data,
    }
