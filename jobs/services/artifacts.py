"""A job's downloadable files: the adapter zip and the merged full model.

With object storage (TAILOR_STORAGE=s3) the worker that made them pushed
them before recording them; whether one is there is asked of the store,
and `download_response` answers with it (studio/services/object_store.py).
"""

import os
import zipfile
from pathlib import Path

from django.db import transaction
from django.utils.text import slugify

from audit.models import Action
from audit.services import record
from jobs.human import human_parameters
from jobs.models import EXPORTING, ExportStatus, FineTuneJob, JobStatus
from jobs.services import worker_files
from jobs.services.lifecycle import JobStateError
from jobs.vocabulary import Adapter
from studio.services import leases, object_store
from studio.services.paths import inside

ADAPTER_ZIP = "adapter.zip"
MERGED_ZIP = "merged-model.zip"
PARTIAL_SUFFIX = ".partial"

# What a download's file name ends with, after the job's stem.
DOWNLOAD_ENDINGS = {"adapter": "-adapter.zip", "merged": "-merged.zip", "config": ".yaml"}


def download_name(job: FineTuneJob, what: str) -> str:
    """The file name a download of `job` is saved under, the same from the
    job's page and from the API: the job's name and the start of its id, so
    that a folder of downloads tells them apart
    (`support-ticket-routing-1a2b3c4d-adapter.zip`, `…-merged.zip`, `….yaml`)."""
    stem = f"{slugify(job.name) or 'job'}-{job.pk.hex[:8]}"
    return stem + DOWNLOAD_ENDINGS[what]


def zip_folder(folder: Path, dest: Path, *, progressed=None) -> Path:
    """Zip `folder` into `dest` atomically (a reader never sees half a file;
    an error, a full disk included, leaves no partial file behind).
    `progressed()` is called after each file, for the run's lease."""
    folder, dest = Path(folder), Path(dest)
    partial = dest.with_name(dest.name + PARTIAL_SUFFIX)
    root = dest.stem
    try:
        # Weights do not compress; storing them saves minutes on large adapters.
        with zipfile.ZipFile(
            partial, "w", compression=zipfile.ZIP_STORED, allowZip64=True
        ) as archive:
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    archive.write(path, f"{root}/{path.relative_to(folder)}")
                    if progressed is not None:
                        progressed()
        os.replace(partial, dest)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return dest


def adapter_archive(job: FineTuneJob) -> Path | None:
    """The zip beside the adapter the succeeding attempt recorded; None when
    there is none, or when the recorded path leads outside the job's folder.
    Raises StorageError when the object store fails."""
    if job.status != JobStatus.SUCCEEDED or not job.adapter_path:
        return None
    path = worker_files.here(job, job.adapter_path).parent / ADAPTER_ZIP
    return path if inside(job.folder, path) and object_store.exists(path) else None


def merged_archive(job: FineTuneJob) -> Path | None:
    """The exported full model's zip; None until it is ready, or when the
    recorded path leads outside the job's folder. Raises StorageError when
    the object store fails."""
    if job.export_status != ExportStatus.READY or not job.export_path:
        return None
    path = worker_files.here(job, job.export_path)
    return path if inside(job.folder, path) and object_store.exists(path) else None


def download_response(job: FineTuneJob, path: Path, what: str):
    """The answer of a download of `path`, one of `job`'s archives (`what`:
    a key of DOWNLOAD_ENDINGS): the file, or a redirect to the object store.
    Raises StorageError."""
    return object_store.download_response(path, download_name(job, what))


def can_export(job: FineTuneJob) -> bool:
    # A LoRA or QLoRA adapter merges into its base loaded un-quantised
    # (jobs/training/export.py); a full fine-tune is already a full model.
    return job.status == JobStatus.SUCCEEDED and job.method in (Adapter.LORA, Adapter.QLORA)


def export_memory_bytes(parameters: int) -> int:
    """Memory the merge of an export holds: the base un-quantised, in float32
    on the export worker's CPU (jobs/training/export.py), 4 bytes a parameter."""
    return parameters * 4


def export_memory_sentence(job: FineTuneJob) -> str:
    """What the job's page says before an export is asked for:
    "Merging loads the 0.5B-parameter base un-quantised: about 2.0 GB of memory."."""
    parameters = job.base_model.parameters
    size = export_memory_bytes(parameters)
    amount = f"{size / 1e9:.1f} GB" if size >= 1e9 else f"{max(1, round(size / 1e6))} MB"
    return (
        f"Merging loads the {human_parameters(parameters)}-parameter base un-quantised: "
        f"about {amount} of memory."
    )


def request_export(job: FineTuneJob) -> FineTuneJob:
    """Queue a merge-and-export of a succeeded LoRA or QLoRA job on the training queue."""
    if not can_export(job):
        if job.method == Adapter.FULL:
            raise JobStateError(
                "A full fine-tune is already a complete model: download it with "
                "“Download adapter”; there is nothing to merge."
            )
        raise JobStateError(
            "Only a succeeded job's adapter can be merged into a full model; this job is "
            f"{job.get_status_display().lower()}."
        )
    with transaction.atomic():
        # One export at a time; a finished (or failed) one can be asked again.
        asked = FineTuneJob.objects.filter(pk=job.pk).exclude(
            export_status__in=EXPORTING
        ).update(
            export_status=ExportStatus.QUEUED, export_error="", export_task_id="",
            export_dispatched_at=None, export_lease_expires_at=None,
        )  # fmt: skip
        if asked:
            leases.send_after_commit(leases.kind("export"), job.pk)
            record(Action.EXPORT, job)
    job.refresh_from_db()
    return job
