"""Datasets: create from an upload or a sample, validate, split, rename, delete.

Every lookup goes through `access_dataset` (owner-only, one 404 for missing
and foreign datasets). Validation runs on a worker (`tasks.validate_dataset`)
and is fenced by `Dataset.revision`: a run writes its results only while the
revision it started with is still current.
"""

import errno
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from datasets_app import engine
from datasets_app.models import Dataset, DatasetStatus, SplitMode
from datasets_app.samples import get_sample
from studio.events import publish
from studio.services import leases
from studio.services.access import one_or_404
from studio.services.db_retry import retry_database

logger = logging.getLogger(__name__)

# How often a running validation writes its progress to the database and
# the page: often enough to look live, rarely enough to cost nothing.
PROGRESS_INTERVAL_S = 0.25


class DatasetInputError(ValueError):
    """A request to create or change a dataset that cannot be honoured."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class SplitSettings:
    mode: str = SplitMode.HOLDOUT
    fraction: float = 0.1
    seed: int = 42


def group_name(dataset_id) -> str:
    return f"dataset-{dataset_id}"


def access_dataset(user, dataset_id) -> Dataset:
    """The user's dataset (staff: anyone's); the same 404 for missing and foreign."""
    return one_or_404(Dataset.objects.for_user(user), dataset_id, "No such dataset.")


# --- checks -----------------------------------------------------------------


def check_format(requested_format: str) -> str:
    requested_format = (requested_format or "").strip()
    if requested_format and requested_format not in engine.FORMATS:
        raise DatasetInputError(
            "format",
            f"Unknown format {requested_format!r}; choose one of {', '.join(engine.FORMATS)}.",
        )
    return requested_format


def check_column_mapping(mapping) -> dict[str, str]:
    if mapping in (None, ""):
        return {}
    if not isinstance(mapping, dict):
        raise DatasetInputError(
            "column_mapping",
            'Column mapping must be an object such as {"prompt": "question"}.',
        )
    known = sorted({field for fields in engine.FORMAT_FIELDS.values() for field in fields})
    cleaned = {}
    for target, source in mapping.items():
        if target not in known:
            raise DatasetInputError(
                "column_mapping",
                f"Cannot map onto {target!r}; the fields are {', '.join(known)}.",
            )
        if not isinstance(source, str):
            raise DatasetInputError(
                "column_mapping", f"The column mapped onto {target!r} must be a column name."
            )
        if source.strip():
            cleaned[target] = source.strip()
    return cleaned


def check_split(mode: str, fraction, seed, *, has_validation_file: bool) -> SplitSettings:
    if mode not in SplitMode.values:
        raise DatasetInputError("split_mode", "Choose 'holdout' or 'file'.")
    try:
        fraction = float(fraction)
    except (TypeError, ValueError):
        raise DatasetInputError("validation_fraction", "Must be a number such as 0.1.") from None
    if not 0.01 <= fraction <= 0.5:
        raise DatasetInputError(
            "validation_fraction", "Hold out between 1 % and 50 % of the rows (0.01 to 0.5)."
        )
    try:
        seed = int(seed)
    except (TypeError, ValueError):
        raise DatasetInputError("split_seed", "Must be a whole number.") from None
    if mode == SplitMode.FILE and not has_validation_file:
        raise DatasetInputError(
            "validation_file", "Upload a validation file, or hold out a fraction instead."
        )
    return SplitSettings(mode=mode, fraction=fraction, seed=seed)


def check_upload_name(upload, field: str = "file") -> None:
    if upload is None:
        raise DatasetInputError(field, "Choose a file to upload.")
    if engine.detect_file_type(upload.name) is None:
        raise DatasetInputError(
            field,
            f"{upload.name!r} has no recognised extension; "
            "use .jsonl, .json, .csv, .tsv or .parquet.",
        )
    if upload.size == 0:
        raise DatasetInputError(field, f"{upload.name!r} is empty.")


# --- create, change, delete -------------------------------------------------------


def _enqueue_validation(dataset: Dataset) -> None:
    """Send the validation after commit; with the broker down the dataset
    stays uploaded and the dispatcher sends it later (datasets_app/work.py)."""
    leases.send_after_commit(leases.kind("validation"), dataset.pk)


@transaction.atomic
def create_dataset(
    owner,
    *,
    upload,
    name: str = "",
    requested_format: str = "",
    column_mapping=None,
    validation_upload=None,
    split: SplitSettings | None = None,
) -> Dataset:
    """Store an uploaded file as a new dataset and queue its validation.

    Preconditions: `upload` is a Django File (already streamed to disk by the
    upload handler). Raises DatasetInputError for a bad request; nothing is
    stored then.
    """
    check_upload_name(upload)
    if validation_upload is not None:
        check_upload_name(validation_upload, "validation_file")
    requested_format = check_format(requested_format)
    column_mapping = check_column_mapping(column_mapping)
    split = split or SplitSettings(
        mode=SplitMode.FILE if validation_upload is not None else SplitMode.HOLDOUT
    )
    split = check_split(
        split.mode, split.fraction, split.seed, has_validation_file=validation_upload is not None
    )
    filename = Path(upload.name).name
    dataset = Dataset(
        owner=owner,
        name=(name or "").strip()[:200] or Path(filename).stem,
        original_filename=filename,
        size_bytes=upload.size,
        requested_format=requested_format,
        column_mapping=column_mapping,
        split_mode=split.mode,
        validation_fraction=split.fraction,
        split_seed=split.seed,
    )
    try:
        # Stored first, then recorded: a failure (a full disk) leaves no row
        # and, with the folder removed, no file.
        dataset.source.save(filename, upload, save=False)
        if validation_upload is not None:
            dataset.validation_filename = Path(validation_upload.name).name
            dataset.validation_source.save(
                dataset.validation_filename, validation_upload, save=False
            )
        dataset.save()
    except BaseException:
        shutil.rmtree(dataset.folder, ignore_errors=True)
        raise
    _enqueue_validation(dataset)
    return dataset


def create_from_sample(owner, slug: str) -> Dataset:
    """A new dataset of `owner` holding a copy of a bundled sample."""
    sample = get_sample(slug)
    if sample is None:
        raise DatasetInputError("sample", f"There is no sample called {slug!r}.")
    with sample.train_file.open("rb") as train, sample.validation_file.open("rb") as held_out:
        return create_dataset(
            owner,
            upload=File(train, name=sample.train_file.name),
            name=sample.name,
            validation_upload=File(held_out, name=sample.validation_file.name),
            split=SplitSettings(mode=SplitMode.FILE),
        )


def rename_dataset(dataset: Dataset, name: str) -> Dataset:
    name = (name or "").strip()
    if not name:
        raise DatasetInputError("name", "A dataset needs a name.")
    if len(name) > 200:
        raise DatasetInputError("name", "Keep the name under 200 characters.")
    Dataset.objects.filter(pk=dataset.pk).update(name=name, updated_at=timezone.now())
    dataset.name = name
    return dataset


@transaction.atomic
def change_settings(
    dataset: Dataset,
    *,
    requested_format: str | None = None,
    column_mapping=None,
    split: SplitSettings | None = None,
) -> Dataset:
    """Change how the file is read or split, and validate it again.

    Arguments left as None keep their current value. The revision is bumped,
    so a validation still running for the old settings cannot finish the job.
    """
    locked = Dataset.objects.select_for_update().get(pk=dataset.pk)
    if requested_format is not None:
        locked.requested_format = check_format(requested_format)
    if column_mapping is not None:
        locked.column_mapping = check_column_mapping(column_mapping)
    if split is not None:
        checked = check_split(
            split.mode,
            split.fraction,
            split.seed,
            has_validation_file=bool(locked.validation_source),
        )
        locked.split_mode = checked.mode
        locked.validation_fraction = checked.fraction
        locked.split_seed = checked.seed
    locked.revision = F("revision") + 1
    locked.attempt_base = F("attempt")
    locked.status = DatasetStatus.UPLOADED
    locked.rows_checked = locked.bytes_checked = 0
    locked.task_id, locked.dispatched_at, locked.lease_expires_at = "", None, None
    locked.save()
    locked.refresh_from_db()
    _enqueue_validation(locked)
    return locked


def delete_dataset(dataset: Dataset) -> None:
    """Hide the dataset from its owner for good and free its files."""
    Dataset.objects.filter(pk=dataset.pk).update(
        deleted_at=timezone.now(), revision=F("revision") + 1
    )
    transaction.on_commit(lambda: shutil.rmtree(dataset.folder, ignore_errors=True))


# --- validation (runs on a worker) ----------------------------------------------


class _Progress:
    """Writes progress to the row and the page, at most every PROGRESS_INTERVAL_S
    (fenced on the run's revision and attempt), and keeps the run's lease."""

    def __init__(self, run: "_Run", phase: str):
        self.run, self.phase = run, phase
        self.dataset_id = run.dataset_id
        self.last = 0.0

    def __call__(self, rows: int, bytes_read: int, total_bytes: int) -> None:
        self.run.keeper.progressed()
        now = time.monotonic()
        if now - self.last < PROGRESS_INTERVAL_S:
            return
        self.last = now
        self.run.owned().update(
            rows_checked=rows, bytes_checked=bytes_read, updated_at=timezone.now()
        )
        percent = int(100 * bytes_read / total_bytes) if total_bytes else 0
        publish(
            group_name(self.dataset_id),
            {
                "type": "dataset.progress",
                "phase": self.phase,
                "rows": rows,
                "percent": min(percent, 100),
            },
        )


@dataclass
class _Run:
    """One validation run: the revision it validates and its fencing token."""

    dataset_id: str
    revision: int
    attempt: int
    keeper: leases.LeaseKeeper

    def owned(self):
        return leases.owned(leases.kind("validation"), self.dataset_id, self.attempt).filter(
            revision=self.revision
        )


def run_validation(dataset_id: str, revision: int, worker: str = "worker", *,
                   hard_stop=None) -> str:  # fmt: skip
    """Validate, normalise and split one revision of a dataset. Never raises.

    Leased work (datasets_app/work.py): claims the dataset (uploaded →
    validating, or validating with an expired lease) only for the given
    revision; returns the final status, "already-running" when another run
    holds it, or "superseded" when the dataset changed (or was deleted)
    before or while it ran.
    """
    kind = leases.kind("validation")
    attempt = retry_database(
        lambda: leases.claim(
            kind, dataset_id, worker, where=Q(revision=revision),
            rows_checked=0, bytes_checked=0, updated_at=timezone.now(),
        )
    )  # fmt: skip
    if attempt is None:
        current = Dataset.objects.filter(pk=dataset_id, revision=revision).first()
        if current is not None and current.status == DatasetStatus.VALIDATING:
            return "already-running"
        return "superseded"
    run = _Run(dataset_id, revision, attempt, leases.LeaseKeeper(
        kind, dataset_id, attempt, on_stalled=hard_stop))  # fmt: skip
    run.keeper.start()
    try:
        return _run_claimed(run)
    finally:
        run.keeper.stop()


def _run_claimed(run: _Run) -> str:
    dataset_id, revision = run.dataset_id, run.revision
    dataset = Dataset.objects.get(pk=dataset_id)
    out = dataset.output_folder(revision)
    shutil.rmtree(out, ignore_errors=True)  # what a dead run of this revision left
    try:
        outcome = _validate_into(dataset, out, run)
    except Exception as exc:  # a bug must end as a message, not a crashed worker
        logger.exception("Validation of dataset %s failed", dataset_id)
        outcome = {
            "status": DatasetStatus.INVALID,
            "error_count": 1,
            "errors": [_internal_error(exc)],
            "warnings": [],
            "stats": {},
        }
    outcome["validated_at"] = timezone.now()
    outcome["lease_expires_at"] = None
    written = retry_database(lambda: run.owned().update(**outcome))
    if not written or outcome["status"] != DatasetStatus.READY:
        shutil.rmtree(out, ignore_errors=True)
    if not written:
        return "superseded"
    _remove_other_revisions(dataset, revision)
    publish(group_name(dataset_id), {"type": "dataset.finished", "status": outcome["status"]})
    return outcome["status"]


def _internal_error(exc: Exception) -> dict:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return {
            "line": None,
            "field": None,
            "code": "disk_full",
            "message": (
                "The studio's disk is full, so the validated rows could not be written. "
                "Nothing was imported. Ask an operator to free space, then validate again."
            ),
        }
    return {
        "line": None,
        "field": None,
        "code": "internal_error",
        "message": (
            f"Validation stopped unexpectedly ({type(exc).__name__}: {exc}). "
            "Nothing was imported. Try again; if it happens again, tell an operator."
        ),
    }


def _validate_into(dataset: Dataset, out: Path, run: _Run) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    records = out / "records.jsonl"
    report = engine.validate(
        Path(dataset.source.path),
        filename=dataset.original_filename,
        out_path=records,
        format=dataset.requested_format or None,
        column_mapping=dataset.column_mapping or None,
        progress=_Progress(run, "file"),
        limits=engine.DatasetLimits.from_settings(settings),
    )
    outcome = {
        "file_type": report.file_type or "",
        "format": report.format or "",
        "task": report.task or "",
        "columns": report.columns,
        "rows_checked": report.rows_seen,
        "bytes_checked": dataset.size_bytes,
        "num_rows": report.num_rows,
        "error_count": report.error_count,
        "errors": [error.as_dict() for error in report.errors],
        "warnings": [warning.as_dict() for warning in report.warnings],
        "stats": report.stats,
        "num_train_rows": 0,
        "num_validation_rows": 0,
        "status": DatasetStatus.INVALID,
    }
    if not report.ok:
        return outcome

    if dataset.split_mode == SplitMode.FILE:
        held_out = engine.validate(
            Path(dataset.validation_source.path),
            filename=dataset.validation_filename,
            out_path=out / "validation.jsonl",
            # The validation file must be read exactly like the training file.
            format=report.format,
            column_mapping=dataset.column_mapping or None,
            progress=_Progress(run, "validation file"),
            limits=engine.DatasetLimits.from_settings(settings),
        )
        if not held_out.ok:
            outcome["error_count"] = held_out.error_count
            outcome["errors"] = [
                {**error.as_dict(), "message": f"Validation file: {error.message}"}
                for error in held_out.errors
            ]
            return outcome
        # Every row of the training file trains; the preview and the
        # statistics keep reading records.jsonl, which is the same file.
        (out / "train.jsonl").hardlink_to(records)
        (out / "train.idx").hardlink_to(records.with_suffix(".idx"))
        outcome["num_train_rows"] = report.num_rows
        outcome["num_validation_rows"] = held_out.num_rows
    else:
        if report.num_rows < 2:
            outcome["error_count"] = 1
            outcome["errors"] = [
                {
                    "line": None,
                    "field": None,
                    "code": "too_few_rows_to_split",
                    "message": "The file has 1 row; holding some out for validation needs "
                    "at least 2. Add rows or upload a separate validation file.",
                }
            ]
            return outcome
        n_train, n_validation = engine.split(
            records,
            num_rows=report.num_rows,
            fraction=dataset.validation_fraction,
            seed=dataset.split_seed,
            train_out=out / "train.jsonl",
            validation_out=out / "validation.jsonl",
        )
        outcome["num_train_rows"], outcome["num_validation_rows"] = n_train, n_validation
    outcome["status"] = DatasetStatus.READY
    return outcome


def _remove_other_revisions(dataset: Dataset, keep: int) -> None:
    for folder in dataset.folder.glob("r*"):
        if folder.is_dir() and folder.name != f"r{keep}":
            shutil.rmtree(folder, ignore_errors=True)


# --- reading -------------------------------------------------------------------------


def preview_page(dataset: Dataset, page: int, per_page: int = 20) -> dict:
    """One page of the normalised rows of a ready dataset (1-based pages)."""
    total = dataset.num_rows
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    rows = []
    if dataset.status == DatasetStatus.READY and total:
        rows = engine.read_page(dataset.records_path, offset=(page - 1) * per_page, limit=per_page)
    return {
        "rows": rows,
        "page": page,
        "pages": pages,
        "per_page": per_page,
        "total": total,
        "first_row": (page - 1) * per_page + 1,
    }
