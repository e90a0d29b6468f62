"""Validating one revision of a dataset, on a worker: leased work
(datasets_app/work.py), fenced on the revision and the run's attempt."""

import errno
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from datasets_app import engine
from datasets_app.models import Dataset, DatasetStatus, SplitMode
from datasets_app.services import PROGRESS_INTERVAL_S, group_name
from jobs import config as job_config
from jobs.services import catalog
from jobs.vocabulary import Adapter
from studio.events import publish
from studio.services import leases, object_store
from studio.services.db_retry import retry_database

logger = logging.getLogger(__name__)


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
            **_NOTHING_SKIPPED,
        }
    outcome["validated_at"] = timezone.now()
    outcome["lease_expires_at"] = None
    written = retry_database(lambda: run.owned().update(**outcome))
    if not written or outcome["status"] != DatasetStatus.READY:
        _remove_quietly(out)
    if not written:
        return "superseded"
    _remove_other_revisions(dataset, revision)
    publish(group_name(dataset_id), {"type": "dataset.finished", "status": outcome["status"]})
    return outcome["status"]


def _internal_error(exc: Exception) -> dict:
    if isinstance(exc, object_store.StorageError):
        return {
            "line": None,
            "field": None,
            "code": "storage_unavailable",
            "message": f"{exc} Nothing was imported; validate again once the store answers.",
        }
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
    # Everyone reads the message; the exception (its text may name a server
    # path) is the `detail`, which only operators are shown.
    return {
        "line": None,
        "field": None,
        "code": "internal_error",
        "message": (
            "Validation stopped with an unexpected error in the worker. Nothing was imported. "
            "Try again; if it happens again, tell an operator: they can see the error here."
        ),
        "detail": f"{type(exc).__name__}: {exc}"[:2000],
    }


_NOTHING_SKIPPED = {"invalid_rows": 0, "skippable": False, "skipped_rows": 0, "skipped_errors": []}
# Problems of skipped rows kept, both files together (as many as of errors).
SKIPPED_ERRORS_KEPT = 100


def _as_dicts(errors, prefix: str = "") -> list[dict]:
    return [{**error.as_dict(), "message": f"{prefix}{error.message}"} for error in errors]


def default_token_rule(task: str) -> engine.TokenRule:
    """Rows measured with the tokenizer of the catalog's first model for `task`
    (the default the job wizard lists first), cut where the wizard's presets
    cut them for that model. Raises engine.TokenizerUnavailable.

    Loads only `tokenizers` (engine/tokens.py), never transformers: this runs
    on the default queue's worker, which stays light.
    """
    entry = catalog.models_for_dataset_task(task).first()
    if entry is None:
        raise engine.TokenizerUnavailable("no model in the catalog learns this task")
    folder = _tokenizer_folder(entry)
    if folder is None:
        raise engine.TokenizerUnavailable(
            "its tokenizer is not on this machine", entry.display_name
        )
    try:
        count = engine.load_token_counter(folder, task)
    except engine.TokenizerUnavailable as problem:
        problem.model = entry.display_name
        raise
    facts = catalog.model_facts(entry)

    def max_length(length: dict) -> int:
        # The job wizard's arithmetic (jobs/services/drafts.py): the presets
        # size max_seq_length from the rows' characters, the same for each preset.
        dataset = job_config.DatasetFacts(
            rows=1, validation_rows=0, mean_characters=float(length["mean"]),
            p95_characters=float(length["p95"]), task=task,
        )  # fmt: skip
        overlay = job_config.preset_overlay("quick", dataset, facts, Adapter.LORA)
        return overlay["training"]["max_seq_length"]

    return engine.TokenRule(model=entry.display_name, count=count, max_length=max_length)


def _tokenizer_folder(entry) -> Path | None:
    """The folder holding `entry`'s tokenizer on this machine (a bundled or
    local model's own folder), or None."""
    source = catalog.model_source(entry)
    if source and (Path(source) / "tokenizer.json").is_file():
        return Path(source)
    return None


def _validate_into(dataset: Dataset, out: Path, run: _Run) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    records = out / "records.jsonl"
    report = engine.validate(
        # With object storage the upload was stored from another machine.
        object_store.fetch(Path(dataset.source.path)),
        filename=dataset.original_filename,
        out_path=records,
        format=dataset.requested_format or None,
        column_mapping=dataset.column_mapping or None,
        progress=_Progress(run, "file"),
        limits=engine.DatasetLimits.from_settings(settings),
        skip_invalid_rows=dataset.skip_invalid_rows,
        tokens=default_token_rule,
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
        "invalid_rows": report.invalid_rows,
        "skippable": report.skippable,
        "skipped_rows": report.skipped_rows,
        "skipped_errors": _as_dicts(report.skipped),
        "num_train_rows": 0,
        "num_validation_rows": 0,
        "status": DatasetStatus.INVALID,
    }
    if not report.ok:
        return outcome

    if dataset.split_mode == SplitMode.FILE:
        held_out = engine.validate(
            object_store.fetch(Path(dataset.validation_source.path)),
            filename=dataset.validation_filename,
            out_path=out / "validation.jsonl",
            # The validation file must be read exactly like the training file.
            format=report.format,
            column_mapping=dataset.column_mapping or None,
            progress=_Progress(run, "validation file"),
            limits=engine.DatasetLimits.from_settings(settings),
            skip_invalid_rows=dataset.skip_invalid_rows,
        )
        outcome["invalid_rows"] += held_out.invalid_rows
        if not held_out.ok:
            outcome["error_count"] = held_out.error_count
            outcome["errors"] = _as_dicts(held_out.errors, "Validation file: ")
            outcome["skippable"] = held_out.skippable
            outcome["skipped_rows"], outcome["skipped_errors"] = 0, []
            return outcome
        outcome["skipped_rows"] += held_out.skipped_rows
        outcome["skipped_errors"] = (
            outcome["skipped_errors"] + _as_dicts(held_out.skipped, "Validation file: ")
        )[:SKIPPED_ERRORS_KEPT]
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
            outcome["skipped_rows"], outcome["skipped_errors"] = 0, []
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
    # Stored before the row says ready: the web and the training workers read them elsewhere.
    object_store.push(out)
    outcome["status"] = DatasetStatus.READY
    return outcome


def _remove_other_revisions(dataset: Dataset, keep: int) -> None:
    here = {folder.name for folder in dataset.folder.glob("r*") if folder.is_dir()}
    for name in here | set(_stored_revisions(dataset)):
        if name != f"r{keep}":
            _remove_quietly(dataset.folder / name)


def _stored_revisions(dataset: Dataset) -> list[str]:
    try:
        stored = object_store.entries(dataset.folder, folders_only=True)
        return [name for name in stored if name.startswith("r")]
    except object_store.StorageError as exc:
        logger.warning("Dataset %s: old revisions left in the store: %s", dataset.pk, exc)
        return []


def _remove_quietly(folder: Path) -> None:
    """Files a run no longer needs, here and in the store; a store that
    fails leaves them there (logged), never fails the run."""
    try:
        object_store.remove(folder)
    except object_store.StorageError as exc:
        logger.warning("%s left in the object store: %s", folder, exc)
