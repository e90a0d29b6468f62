"""Housekeeping: what a job keeps on disk once it ends, and the sweeping of
half-written files whose writer is gone.

The contract. `run()` is what beat sends to the maintenance queue every
TAILOR_HOUSEKEEPING_INTERVAL_SECONDS; it is safe to run at any time, twice at
once, or never (then nothing is lost, only space).

- Retention (`apply_retention`) touches finished jobs only, each under its
  row's lock, re-checked finished, so a job resumed meanwhile is left alone.
  The job's data (data/) and merged exports always stay; of what its
  attempts wrote:
  - a succeeded job keeps everything for TAILOR_KEEP_CHECKPOINTS_HOURS after
    it finished, then only the adapter and adapter.zip that `adapter_path`
    names: other attempts' folders and every checkpoint (rows too) go;
  - a failed or cancelled job keeps only its newest complete checkpoint,
    what Resume needs, for that time; then that goes too.
  A job whose recorded paths lie outside its folder (MEDIA_ROOT moved) is
  left alone rather than have its adapter taken for clutter.
- Sweeping (`sweep`) removes what no writer will finish, once it has not
  changed for STALE_AFTER_SECONDS: `*.partial` files, atomic_folder staging
  folders (`.<name>-…`) and incomplete checkpoints of attempts and exports
  that are not running (a running attempt's folder is never touched); job
  and dataset folders whose row does not exist (or whose dataset was
  deleted); Django's temporary upload files (`tmp….upload…`) in
  FILE_UPLOAD_TEMP_DIR (the system's temporary folder when unset). Those
  are the web machine's: on a worker of another machine that sweep finds
  nothing.

With object storage (TAILOR_STORAGE=s3) a removal removes the objects too,
retention reads what the attempts wrote from the store as well as from
this machine, and the paths rows recorded on another machine are read here
(`worker_files.here`). The sweep looks at this machine's folders only.

Trade-off: the age test is what keeps the sweep off a write in progress that
the database cannot see (an upload being copied before its row is saved, a
job folder created just before its row); so the sweep is an hour late by
design, and a run that fails cleans up after itself at once (the runner
calls `partial_files` on its own attempt).
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from jobs.models import EXPORTING, FINISHED_STATUSES, FineTuneJob, JobStatus
from jobs.services.worker_files import here
from studio.services import object_store, paths

logger = logging.getLogger(__name__)

# Longer than any single write takes: a checkpoint of a 7B model's optimizer
# state is saved in minutes, a 1 GB upload at 10 Mbit/s arrives in 15.
STALE_AFTER_SECONDS = 3600
RUNNING_EXPORT = EXPORTING


def remove(path: Path) -> None:
    """Remove a file or folder here and, with object storage, in the store;
    a store that fails keeps its objects (logged), never fails the caller."""
    try:
        object_store.remove(path)  # here first, then in the store
    except object_store.StorageError as exc:
        logger.warning("%s left in the object store: %s", path, exc)


def partial_files(folder: Path) -> list[Path]:
    """What a writer left half-done in an attempt's (or export's) folder:
    checkpoints without a parseable trainer_state.json, staging folders of
    atomic_folder, and `.partial` files."""
    from jobs.services.artifacts import PARTIAL_SUFFIX
    from jobs.training import checkpoint_is_complete

    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [
        path
        for path in (folder / "checkpoints").glob("checkpoint-*")
        if path.is_dir() and not checkpoint_is_complete(path)
    ]
    found += [path for path in folder.glob(".*-*") if path.is_dir()]
    found += [path for path in folder.rglob(f"*{PARTIAL_SUFFIX}") if path.is_file()]
    return found


def run(*, now=None) -> dict[str, int]:
    """Retention, then the sweep; how many files or folders each removed."""
    return {"trimmed": apply_retention(now=now), "swept": sweep(now=now)}


# --- retention ---------------------------------------------------------------------------


@dataclass
class Plan:
    paths: list[Path] = field(default_factory=list)
    checkpoint_ids: list[int] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.paths or self.checkpoint_ids)


def _inside(path: Path, folder: Path) -> bool:
    return paths.inside(folder, path)


def _entries(folder: Path) -> list[str]:
    """The names directly in `folder`, here and (object storage) in the store."""
    names = {entry.name for entry in folder.iterdir()} if folder.is_dir() else set()
    if object_store.enabled():
        names |= set(object_store.entries(folder))
    return sorted(names)


def _attempt_pieces(job: FineTuneJob) -> list[Path]:
    """What the job's attempts wrote, as removable pieces: each checkpoint,
    and each other entry of an attempt's folder."""
    pieces: list[Path] = []
    for name in _entries(job.folder):
        if not name.startswith("attempt-"):
            continue
        attempt = job.folder / name
        for entry in _entries(attempt):
            if entry == "checkpoints":
                pieces += [attempt / entry / c for c in _entries(attempt / entry)]
            else:
                pieces.append(attempt / entry)
    return pieces


def retention_plan(job: FineTuneJob, *, now=None) -> Plan:
    """What retention would remove of a finished job now (nothing for others)."""
    from jobs.services import ledger
    from jobs.services.artifacts import ADAPTER_ZIP

    if job.status not in FINISHED_STATUSES:
        return Plan()
    now = now or timezone.now()
    keep_for = timedelta(hours=settings.TAILOR_KEEP_CHECKPOINTS_HOURS)
    # A row finished before finished_at was recorded counts from its last change.
    window_over = (job.finished_at or job.updated_at) <= now - keep_for
    checkpoints = list(job.checkpoints.all())
    named = [here(job, c.path) for c in checkpoints] + (
        [here(job, job.adapter_path)] if job.adapter_path else []
    )
    if not all(_inside(path, job.folder) for path in named):
        logger.warning(
            "Job %s names files outside %s; its files are left alone", job.pk, job.folder
        )
        return Plan()
    keep: set[Path] = set()
    if job.status == JobStatus.SUCCEEDED:
        if not window_over or not job.adapter_path:
            return Plan()
        adapter = here(job, job.adapter_path)
        keep |= {adapter, adapter.parent / ADAPTER_ZIP}
    elif not window_over:
        newest = ledger.resume_checkpoint(job)
        if newest is not None:
            keep.add(here(job, newest.path))
    return Plan(
        paths=[path for path in _attempt_pieces(job) if path not in keep],
        checkpoint_ids=[c.pk for c in checkpoints if here(job, c.path) not in keep],
    )


def _remove_empty_attempt_folders(job: FineTuneJob) -> None:
    for attempt in job.folder.glob("attempt-*"):
        for folder in (attempt / "checkpoints", attempt):
            with contextlib.suppress(OSError):  # only an empty folder goes
                folder.rmdir()


def trim_job(job_id, *, now=None) -> int:
    """Apply retention to one job; how many pieces it removed.

    The files go while the row is locked and seen finished (Resume waits for
    the lock), so a resumed run never starts from a checkpoint being removed.
    """
    with transaction.atomic():
        job = (
            FineTuneJob.objects.select_for_update()
            .filter(pk=job_id, status__in=FINISHED_STATUSES)
            .first()
        )
        if job is None:
            return 0
        plan = _planned(job, now)
        job.checkpoints.filter(pk__in=plan.checkpoint_ids).delete()
        for path in plan.paths:
            remove(path)
        _remove_empty_attempt_folders(job)
    return len(plan.paths)


def _planned(job: FineTuneJob, now) -> Plan:
    try:
        return retention_plan(job, now=now)
    except object_store.StorageError as exc:  # the store's files wait for the next round
        logger.warning("Job %s: retention skipped: %s", job.pk, exc)
        return Plan()


def apply_retention(*, now=None) -> int:
    """Trim every finished job that has something to trim; how many pieces went."""
    finished = FineTuneJob.objects.filter(status__in=FINISHED_STATUSES).prefetch_related(
        "checkpoints"
    )
    # Planned without a lock first (most jobs have nothing left to trim), and
    # trimmed once the read is over.
    due = [job.pk for job in finished.iterator(chunk_size=200) if _planned(job, now)]
    return sum(trim_job(pk, now=now) for pk in due)


# --- sweeping --------------------------------------------------------------------------


def _last_written(path: Path) -> float:
    """The newest modification time of `path` and everything under it."""
    try:
        newest = path.lstat().st_mtime
    except FileNotFoundError:
        return time.time()
    if path.is_dir() and not path.is_symlink():
        for root, dirs, files in os.walk(path):
            for name in dirs + files:
                try:
                    newest = max(newest, os.lstat(os.path.join(root, name)).st_mtime)
                except FileNotFoundError:
                    continue
    return newest


def _is_uuid(name: str) -> bool:
    try:
        uuid.UUID(name)
    except ValueError:
        return False
    return True


def _busy_folders(status: str, attempt: int, export_status: str, export_attempt: int) -> set:
    """The folders of a job that a live run may be writing."""
    busy = set()
    if status in (JobStatus.RUNNING, JobStatus.CANCELLING):
        busy.add(f"attempt-{attempt}")
    if export_status in RUNNING_EXPORT:
        # A queued export's next claim writes into the following attempt's folder.
        busy |= {f"export-{export_attempt}", f"export-{export_attempt + 1}"}
    return busy


def _sweep_jobs(cutoff: float) -> int:
    root = Path(settings.MEDIA_ROOT) / "jobs"
    if not root.is_dir():
        return 0
    rows = {
        str(pk): rest
        for pk, *rest in FineTuneJob.objects.values_list(
            "pk", "status", "attempt", "export_status", "export_attempt"
        )
    }
    removed = 0
    for folder in root.iterdir():
        if not (folder.is_dir() and _is_uuid(folder.name)):
            continue
        row = rows.get(str(uuid.UUID(folder.name)))
        if row is None:
            # A job deleted (or never saved) whose files stayed behind.
            stale = [folder] if _last_written(folder) < cutoff else []
        else:
            busy = _busy_folders(*row)
            stale = [
                path
                for run_folder in [*folder.glob("attempt-*"), *folder.glob("export-*")]
                if run_folder.name not in busy
                for path in partial_files(run_folder)
                if _last_written(path) < cutoff
            ]
        for path in stale:
            remove(path)
        removed += len(stale)
    return removed


def _sweep_datasets(cutoff: float) -> int:
    from datasets_app.models import Dataset

    root = Path(settings.MEDIA_ROOT) / "datasets"
    if not root.is_dir():
        return 0
    kept = Dataset.objects.filter(deleted_at__isnull=True).values_list("pk", flat=True)
    live = {str(pk) for pk in kept}
    removed = 0
    for folder in root.iterdir():
        if not (folder.is_dir() and _is_uuid(folder.name)):
            continue
        # An upload is stored before its row is saved: the age test spares it.
        if str(uuid.UUID(folder.name)) not in live and _last_written(folder) < cutoff:
            remove(folder)
            removed += 1
    return removed


def upload_temp_dir() -> Path:
    return Path(settings.FILE_UPLOAD_TEMP_DIR or tempfile.gettempdir())


def _sweep_upload_temp(cutoff: float) -> int:
    """Django's temporary upload files left by a web process that died
    mid-request (a finished request removes its own)."""
    removed = 0
    for path in upload_temp_dir().glob("tmp*.upload*"):
        if path.is_file() and _last_written(path) < cutoff:
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def sweep(*, now=None) -> int:
    """Remove what no writer will finish; how many files or folders went."""
    now = now.timestamp() if now is not None else time.time()
    cutoff = now - STALE_AFTER_SECONDS
    return _sweep_jobs(cutoff) + _sweep_datasets(cutoff) + _sweep_upload_temp(cutoff)


# --- reading ---------------------------------------------------------------------------


def disk_usage(job: FineTuneJob) -> dict[str, int]:
    """Bytes of the job's files: its adapter (folder and zip), checkpoints,
    merged export, and everything in its folder (data included)."""
    from jobs.services.artifacts import ADAPTER_ZIP

    usage = {"adapter": 0, "checkpoints": 0, "export": 0, "total": 0}
    adapter = Path(job.adapter_path) if job.adapter_path else None
    for root, _, files in os.walk(job.folder):
        for name in files:
            path = Path(root, name)
            try:
                size = path.lstat().st_size
            except FileNotFoundError:
                continue
            usage["total"] += size
            parts = path.relative_to(job.folder).parts
            if parts[0].startswith("export-"):
                usage["export"] += size
            elif len(parts) > 2 and parts[1] == "checkpoints":
                usage["checkpoints"] += size
            elif adapter is not None and (
                _inside(path, adapter) or path == adapter.parent / ADAPTER_ZIP
            ):
                usage["adapter"] += size
    return usage
