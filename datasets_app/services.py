"""Datasets: create from an upload or a sample, validate, split, rename, delete.

Every lookup goes through `access_dataset` (owner-only, one 404 for missing
and foreign datasets). Validation runs on a worker (`tasks.validate_dataset`)
and is fenced by `Dataset.revision`: a run writes its results only while the
revision it started with is still current.
"""

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from django.core.files import File
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from datasets_app import engine
from datasets_app.models import Dataset, DatasetStatus, SplitMode
from datasets_app.samples import get_sample
from studio.services import leases
from studio.services.access import one_or_404

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


# Validation runs on a worker; its module keeps this name importable here.
from datasets_app.validation import run_validation  # noqa: E402, F401
