"""A job's files on a worker that may be another machine than the web's.

With `TAILOR_STORAGE=s3` (studio/services/object_store.py) the object store
holds every file and MEDIA_ROOT on each machine is only a cache. A training
or inference worker therefore makes what it reads present first (`fetch`)
and uploads what it writes as soon as it is complete and BEFORE the database
says it exists (`push`): a row never names a file another machine cannot get,
so a job resumes on any worker from its newest recorded checkpoint. With the
filesystem layout (the default) every function here reads and writes the
one MEDIA_ROOT exactly as before: `object_store` is a no-op there.

Paths in rows (`Checkpoint.path`, `adapter_path`, `export_path`) are absolute
on the machine that wrote them. `here` reads one on this machine: the part
after the job's folder (`jobs/<id>/…`, the object key's own shape) is kept
under this machine's job folder. The trade-off: rows stay as they are (no
migration, the filesystem layout untouched), at the price of one rule every
reader of such a path on another machine goes through.

The fetch is content-keyed (a second job on the same data, or a second load
of the same adapter, downloads nothing); base models are not here: a Hugging
Face id is cached per machine by its own content-keyed cache, and the
generated demo models are made under MODELS_ROOT on each machine.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

from jobs.human import human_bytes
from jobs.models import Checkpoint, FineTuneJob
from studio.services import object_store
from studio.services.paths import inside

logger = logging.getLogger(__name__)


def here(job: FineTuneJob, recorded: str | Path) -> Path:
    """The path a row of `job` recorded, on this machine.

    Filesystem layout: the recorded path itself (one MEDIA_ROOT everywhere).
    Object storage: what follows the job's folder in the recorded path, under
    this machine's job folder; a path that does not pass through the job's
    folder, or climbs out of it, is returned unchanged so that `inside`
    refuses it as it would today.
    """
    path = Path(recorded)
    if not object_store.enabled() or not path.is_absolute():
        return path
    anchor = job.folder.parts[-2:]  # ("jobs", "<id>"): the job's key prefix
    parts = path.parts
    for start in range(len(parts) - len(anchor), 0, -1):
        if parts[start : start + len(anchor)] == anchor:
            rest = parts[start + len(anchor) :]
            return path if ".." in rest else job.folder.joinpath(*rest)
    return path


# --- what a training run reads ---------------------------------------------------------


def fetch_data(job: FineTuneJob, transfer: object_store.Transfer | None = None) -> None:
    """The job's own training and validation files, present under its data
    folder (web/job creation pushes them; see jobs/services/lifecycle.py)."""
    object_store.fetch(job.data_folder, transfer)


def resume_from(
    job: FineTuneJob, transfer: object_store.Transfer | None = None
) -> tuple[Checkpoint, Path] | None:
    """The newest checkpoint a fenced write recorded whose files are complete
    here, fetched first when they live in the object store; with its local path.

    Like `ledger.resume_checkpoint`, a row whose files are cut short (or,
    with object storage, missing from the store) is passed over for the
    next older one. A store that fails raises StorageError rather than
    passing them all over: starting again from step 0 is not a resume.
    """
    from jobs.training import checkpoint_is_complete

    for checkpoint in Checkpoint.objects.filter(job=job).order_by("-step"):
        path = here(job, checkpoint.path)
        # Only the job's own files: a row is text anyone with the database can change.
        if not inside(job.folder, path):
            continue
        try:
            object_store.fetch(path, transfer)
        except object_store.MissingObject:
            logger.warning("Job %s: the store holds no %s; passed over", job.pk, path.name)
            continue
        if checkpoint_is_complete(path):
            return checkpoint, path
    return None


def fetch_adapter(job: FineTuneJob) -> Path:
    """The job's recorded adapter folder, present on this machine (the caller
    checks `inside(job.folder, …)` on the result before loading from it)."""
    path = here(job, job.adapter_path)
    if inside(job.folder, path):
        object_store.fetch(path)
    return path


def start_adapters(job: FineTuneJob, config) -> tuple[Path, ...]:
    """The adapter folders `job` starts from, present on this machine: its
    parent's (`model.start_from`) or, for a merge, each source's in
    `merge.sources` order. A source that is gone, or whose adapter is
    recorded outside its own folder, fails the run with a sentence."""
    from jobs.training.contract import TrainingFailure
    from jobs.vocabulary import ObjectiveName

    if config.objective == ObjectiveName.MERGE:
        wanted = list(config.merge.sources)
    else:
        wanted = [config.model.start_from] if config.model.start_from else []
    sources = FineTuneJob.objects.filter(owner=job.owner_id, pk__in=wanted).in_bulk()
    folders = []
    for source_id in wanted:
        source = sources.get(_as_uuid(source_id))
        if source is None or not source.adapter_path:
            raise TrainingFailure(
                "model_load",
                "A job this one starts from was deleted, or has no adapter any more; "
                "start a new job from another.",
            )
        path = fetch_adapter(source)
        if not inside(source.folder, path):
            raise TrainingFailure(
                "model_load",
                f"The adapter of “{source.name}” is recorded outside its job's folder.",
                detail=str(path),
            )
        folders.append(path)
    return tuple(folders)


def _as_uuid(value):
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


# --- what a training run writes --------------------------------------------------------


class CheckpointUploads:
    """Uploads each checkpoint of one run as it is complete, and removes from
    the store those the trainer rotated out locally (`keep_checkpoints`).

    `push` is called in the trainer's thread when its checkpoint event fires
    (after the trainer wrote the checkpoint's completion marker and rotated
    older ones), so the folder is whole and no other save runs meanwhile;
    the event is recorded only after `push` returned. `forget_rotated` is
    called after that record, so the store always still holds every
    checkpoint a row names until a newer one is recorded.
    """

    def __init__(self):
        self.pushed: list[Path] = []
        self.transfer = object_store.Transfer()  # and push_final's, for the run's note

    def push(self, path: Path) -> None:
        """Upload the checkpoint folder `path`. Raises StorageError."""
        object_store.push(path, self.transfer)
        self.pushed.append(path)

    def forget_rotated(self) -> None:
        if not object_store.enabled():
            return
        for path in [p for p in self.pushed if not p.exists()]:
            try:
                object_store.remove(path)
            except object_store.StorageError:
                logger.warning("Could not remove the rotated checkpoint %s from the store", path)
                continue
            self.pushed.remove(path)


def push_final(*paths: Path, transfer: object_store.Transfer | None = None) -> None:
    """Upload what a finished run or export leaves for the web to serve (the
    adapter folder and its zip, the merged model's zip) before the database
    records it. Raises StorageError."""
    for path in paths:
        object_store.push(path, transfer)


# --- what the job's log says of it -----------------------------------------------------


def _figures(transfer: object_store.Transfer, **more) -> dict:
    moved = {"files": transfer.files, "bytes": transfer.bytes}
    return {"storage": {**moved, "seconds": round(transfer.seconds, 3), **more}}


def _files(transfer: object_store.Transfer) -> str:
    count = transfer.files
    return f"{count:,} file{'s' * (count != 1)}, {human_bytes(transfer.bytes)}"


def fetched_note(transfer: object_store.Transfer) -> dict | None:
    """The log line (`message`, its figures as `data`) of what a run fetched
    before training; None with the filesystem layout, where nothing is."""
    if not object_store.enabled():
        return None
    if transfer.files == 0:
        message = (
            "The job's files were already on this machine: nothing downloaded "
            f"(checked with the object store in {transfer.seconds:.1f} s)."
        )
    else:
        message = (
            f"Fetched the job's files from the object store: {_files(transfer)} in "
            f"{transfer.seconds:.1f} s."
        )
    return {"message": message, "data": _figures(transfer, direction="fetch")}


def stored_note(transfer: object_store.Transfer, trained_seconds: float) -> dict | None:
    """The log line (`message`, its figures as `data`) of what a finished run
    uploaded, against its training time; None with the filesystem layout."""
    if not object_store.enabled():
        return None
    message = (
        f"Stored the checkpoints and the adapter in the object store: {_files(transfer)} "
        f"in {transfer.seconds:.1f} s, against {trained_seconds:.1f} s of training."
    )
    figures = _figures(transfer, direction="store", training_seconds=round(trained_seconds, 3))
    return {"message": message, "data": figures}
