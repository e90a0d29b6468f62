"""Datasets: create from an upload or a sample, validate, split, skip broken
rows, rename, delete.

Every lookup goes through `access_dataset` (owner-only, one 404 for missing
and foreign datasets). Validation runs on a worker (`tasks.validate_dataset`)
and is fenced by `Dataset.revision`: a run writes its results only while the
revision it started with is still current.
"""

import logging
from dataclasses import dataclass
from pathlib import Path

from django.core.files import File
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from audit.models import Action
from audit.services import record
from datasets_app import engine
from datasets_app.models import Dataset, DatasetStatus, SplitMode
from datasets_app.samples import get_sample
from jobs.models import FineTuneJob
from jobs.numbers import NumberError, read_number
from quotas.services.limits import check_storage
from studio.services import leases, object_store
from studio.services.access import one_or_404

logger = logging.getLogger(__name__)

# The longest name a dataset may have (Dataset.name's max_length).
MAX_NAME_CHARACTERS = 200

# How often a running validation writes its progress to the database and
# the page: often enough to look live, rarely enough to cost nothing.
PROGRESS_INTERVAL_S = 0.25


class DatasetInputError(ValueError):
    """A request to create or change a dataset that cannot be honoured."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


class DatasetStateError(ValueError):
    """An action the dataset's state does not allow (skip rows of a ready dataset)."""


@dataclass(frozen=True)
class SplitSettings:
    mode: str = SplitMode.HOLDOUT
    fraction: float = engine.DEFAULT_VALIDATION_FRACTION
    seed: int = engine.DEFAULT_SPLIT_SEED


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
        fraction = read_number(fraction, whole=False)
    except NumberError:
        raise DatasetInputError(
            "validation_fraction", f"Must be a number such as {engine.DEFAULT_VALIDATION_FRACTION}."
        ) from None
    least, most = engine.MIN_VALIDATION_FRACTION, engine.MAX_VALIDATION_FRACTION
    if not least <= fraction <= most:
        raise DatasetInputError(
            "validation_fraction",
            f"Hold out between {least * 100:g} % and {most * 100:g} % of the rows "
            f"({least:g} to {most:g}).",
        )
    try:
        seed = read_number(seed, whole=True)
    except NumberError as refused:
        raise DatasetInputError("split_seed", refused.sentence) from None
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
            f"use {', '.join(engine.MAIN_EXTENSIONS[:-1])} or {engine.MAIN_EXTENSIONS[-1]}.",
        )
    if upload.size == 0:
        raise DatasetInputError(field, f"{upload.name!r} is empty.")


def check_name(name: str) -> str:
    """`name` stripped; DatasetInputError when it is longer than a name may be."""
    name = (name or "").strip()
    if len(name) > MAX_NAME_CHARACTERS:
        raise DatasetInputError(
            "name",
            f"The name is {len(name):,} characters long; "
            f"keep it to {MAX_NAME_CHARACTERS} characters or fewer.",
        )
    return name


def unique_name(owner, name: str) -> str:
    """`name`, or `name (2)`, `name (3)`, …: the first that none of `owner`'s
    datasets has (a long name is shortened to make room for the number)."""
    taken = set(
        Dataset.objects.filter(
            owner=owner, deleted_at__isnull=True, name__startswith=name[:100]
        ).values_list("name", flat=True)
    )
    candidate, number = name, 1
    while candidate in taken:
        number += 1
        suffix = f" ({number})"
        candidate = name[: MAX_NAME_CHARACTERS - len(suffix)].rstrip() + suffix
    return candidate


def _name_from_file(filename: str) -> str:
    stem = Path(filename).stem.strip() or filename
    if len(stem) <= MAX_NAME_CHARACTERS:
        return stem
    return stem[: MAX_NAME_CHARACTERS - 1].rstrip() + "…"


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
    skip_invalid_rows: bool = False,
    provenance: dict | None = None,
) -> Dataset:
    """Store an uploaded file as a new dataset and queue its validation.

    Preconditions: `upload` is a Django File (already streamed to disk by the
    upload handler). `skip_invalid_rows` leaves rows with problems of their
    own out (see engine.validate). Raises DatasetInputError for a bad request
    (a name over MAX_NAME_CHARACTERS included), QuotaExceeded past the
    owner's storage limit (quotas/), StorageError when the object store fails
    (TAILOR_STORAGE=s3); nothing is stored then. The files are pushed to the
    store before the row is saved. `provenance` says where a file Tailor
    made came from (Dataset.provenance).

    The name (by default the file's) gets a number when the owner already has
    a dataset of that name: "Sales (2)". The returned dataset's
    `name_was_taken` then holds the name asked for, else "".
    """
    check_upload_name(upload)
    name = check_name(name)
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
    check_storage(owner, upload.size + (validation_upload.size if validation_upload else 0))
    filename = Path(upload.name).name
    wanted = name or _name_from_file(filename)
    dataset = Dataset(
        owner=owner,
        name=unique_name(owner, wanted),
        original_filename=filename,
        size_bytes=upload.size,
        requested_format=requested_format,
        column_mapping=column_mapping,
        skip_invalid_rows=bool(skip_invalid_rows),
        split_mode=split.mode,
        validation_fraction=split.fraction,
        split_seed=split.seed,
        provenance=provenance or {},
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
        # With object storage the validating worker may be another machine.
        object_store.push(dataset.folder)
        dataset.save()
    except BaseException:
        _free_files(dataset)
        raise
    record(Action.CREATE, dataset)
    _enqueue_validation(dataset)
    dataset.name_was_taken = wanted if dataset.name != wanted else ""
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
    name = check_name(name)
    if not name:
        raise DatasetInputError("name", "A dataset needs a name.")
    renamed_from, dataset.name = dataset.name, name
    with transaction.atomic():
        Dataset.objects.filter(pk=dataset.pk).update(name=name, updated_at=timezone.now())
        record(Action.UPDATE, dataset, detail={"renamed_from": renamed_from})
    return dataset


@transaction.atomic
def change_settings(
    dataset: Dataset,
    *,
    requested_format: str | None = None,
    column_mapping=None,
    split: SplitSettings | None = None,
    skip_invalid_rows: bool | None = None,
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
    if skip_invalid_rows is not None:
        locked.skip_invalid_rows = bool(skip_invalid_rows)
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
    locked.skippable = False  # an offer about the last check, which no longer stands
    locked.task_id, locked.dispatched_at, locked.lease_expires_at = "", None, None
    locked.save()
    locked.refresh_from_db()
    record(Action.UPDATE, locked, detail={
        "format": locked.requested_format, "split": locked.split_mode,
        "skip_invalid_rows": locked.skip_invalid_rows,
    })  # fmt: skip
    _enqueue_validation(locked)
    return locked


def check_skippable(dataset: Dataset) -> None:
    """Raise DatasetStateError, with the sentence that says why, unless skipping
    the dataset's invalid rows would leave a dataset (see Dataset.skippable)."""
    if dataset.status != DatasetStatus.INVALID:
        status = dataset.get_status_display().lower()
        raise DatasetStateError(engine.make_error("skip_not_invalid", status=status).message)
    if dataset.skippable:
        return
    if dataset.invalid_rows and not dataset.num_rows:
        raise DatasetStateError(
            engine.make_error("skip_every_row", rows=dataset.invalid_rows).message
        )
    raise DatasetStateError(engine.make_error("skip_file_problem").message)


@transaction.atomic
def skip_invalid_rows(dataset: Dataset) -> Dataset:
    """Validate an invalid dataset again, leaving out its rows with problems of their own.

    Raises DatasetStateError unless check_skippable passes (checked under the
    row's lock, so two clicks validate once). Side effects: as change_settings
    with skip_invalid_rows=True (a new revision, validation queued after commit).
    """
    locked = Dataset.objects.select_for_update().get(pk=dataset.pk)
    check_skippable(locked)
    return change_settings(locked, skip_invalid_rows=True)


def jobs_using(user, dataset: Dataset):
    """The jobs `user` may see that train or validate on `dataset`, newest first."""
    return (
        FineTuneJob.objects.for_user(user)
        .filter(Q(dataset=dataset) | Q(validation_dataset=dataset))
        .order_by("-created_at")
    )


def delete_dataset(dataset: Dataset) -> None:
    """Hide the dataset from its owner for good and free its files."""
    with transaction.atomic():
        Dataset.objects.filter(pk=dataset.pk).update(
            deleted_at=timezone.now(), revision=F("revision") + 1
        )
        record(Action.DELETE, dataset)
    transaction.on_commit(lambda: _free_files(dataset))


def _free_files(dataset: Dataset) -> None:
    """Delete the dataset's files here and in the object store; a store that
    fails leaves its objects there (logged), never fails the request."""
    try:
        object_store.remove(dataset.folder)
    except object_store.StorageError as exc:
        logger.warning("Dataset %s: files left in the object store: %s", dataset.pk, exc)


# --- reading -------------------------------------------------------------------------


def preview_page(dataset: Dataset, page: int, per_page: int = 20, *, read: bool = True) -> dict:
    """One page of the normalised rows of a ready dataset (1-based pages);
    `read=False`: its numbers without its rows. Raises StorageError when the
    object store fails."""
    total = dataset.num_rows
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    rows = []
    if read and dataset.status == DatasetStatus.READY and total:
        # Validated on a worker: with object storage, fetched here first (once).
        object_store.fetch(dataset.records_path)
        object_store.fetch(engine.index_path(dataset.records_path))
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
