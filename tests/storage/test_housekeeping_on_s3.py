"""Housekeeping with TAILOR_STORAGE=s3: retention run on the web machine,
which holds none of a job's files, trims them in the bucket, reading the
paths a worker on another machine recorded."""

import json
from pathlib import Path

import pytest
from django.utils import timezone

from jobs.models import Checkpoint, FineTuneJob, JobStatus
from jobs.services import housekeeping
from studio.services import object_store
from tests.builders import make_job, ready_sample

pytestmark = pytest.mark.django_db


def write(path: Path, content: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def test_retention_trims_a_job_trained_elsewhere_in_the_bucket(
    s3, alice, demo_models, settings, tmp_path
):  # fmt: skip
    settings.TAILOR_KEEP_CHECKPOINTS_HOURS = 0
    web = Path(settings.MEDIA_ROOT)
    job = make_job(alice, ready_sample(alice))
    settings.MEDIA_ROOT = tmp_path / "gpu-machine"  # the worker's own folder
    job = FineTuneJob.objects.get(pk=job.pk)
    attempt = job.attempt_folder(1)
    for step in (3, 6):
        folder = attempt / "checkpoints" / f"checkpoint-{step}"
        write(folder / "adapter_model.safetensors", b"w" * 100)
        write(folder / "trainer_state.json", json.dumps({"global_step": step}).encode())
        Checkpoint.objects.create(job=job, attempt=1, step=step, path=str(folder))
    write(attempt / "adapter" / "adapter_model.safetensors", b"a" * 100)
    write(attempt / "adapter.zip", b"zip")
    object_store.push(attempt)
    FineTuneJob.objects.filter(pk=job.pk).update(
        status=JobStatus.SUCCEEDED, adapter_path=str(attempt / "adapter"),
        finished_at=timezone.now(),
    )  # fmt: skip
    settings.MEDIA_ROOT = web
    prefix = f"jobs/{job.pk}/attempt-1/"
    assert len(s3.keys(prefix)) == 6

    trimmed = housekeeping.apply_retention()

    assert trimmed == 2
    assert s3.keys(prefix) == [
        f"{prefix}adapter.zip", f"{prefix}adapter/adapter_model.safetensors"
    ]  # fmt: skip
    assert not Checkpoint.objects.filter(job=job).exists()
    assert s3.keys(f"jobs/{job.pk}/data/")  # the job's data always stays
