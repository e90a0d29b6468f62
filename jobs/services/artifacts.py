"""A job's downloadable files: the adapter zip and the merged full model."""

import os
import zipfile
from pathlib import Path

from django.db import transaction

from jobs.models import FineTuneJob, JobStatus
from jobs.services.lifecycle import JobStateError

ADAPTER_ZIP = "adapter.zip"
MERGED_ZIP = "merged-model.zip"


def zip_folder(folder: Path, dest: Path) -> Path:
    """Zip `folder` into `dest` atomically (a reader never sees half a file)."""
    folder, dest = Path(folder), Path(dest)
    partial = dest.with_name(dest.name + ".partial")
    root = dest.stem
    # Weights do not compress; storing them saves minutes on large adapters.
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, f"{root}/{path.relative_to(folder)}")
    os.replace(partial, dest)
    return dest


def adapter_archive(job: FineTuneJob) -> Path | None:
    path = job.folder / ADAPTER_ZIP
    return path if job.status == JobStatus.SUCCEEDED and path.exists() else None


def merged_archive(job: FineTuneJob) -> Path | None:
    path = Path(job.export_path) if job.export_path else None
    return path if job.export_status == "ready" and path and path.exists() else None


def can_export(job: FineTuneJob) -> bool:
    # A quantised base cannot be merged without loss; a full fine-tune is
    # already a full model.
    return job.status == JobStatus.SUCCEEDED and job.method == "lora"


def request_export(job: FineTuneJob) -> FineTuneJob:
    """Queue a merge-and-export of a succeeded LoRA job on the training queue."""
    if not can_export(job):
        raise JobStateError(
            "Only a finished LoRA job can be merged: QLoRA bases are quantised, "
            "and a full fine-tune is already a complete model."
        )
    if job.export_status in ("queued", "running"):
        return job
    FineTuneJob.objects.filter(pk=job.pk).update(export_status="queued", export_error="")
    job_id = str(job.pk)

    def send():
        from jobs.tasks import export_merged_model

        export_merged_model.apply_async(args=[job_id], queue="train")

    transaction.on_commit(send)
    job.refresh_from_db()
    return job
