"""OpenAI's fine-tuning objects in Tailor's terms: files, jobs, events, checkpoints.

An OpenAI file is a Dataset ("file-" + its uuid hex) and a fine-tuning job
is a FineTuneJob ("ftjob-" + uuid hex): the same objects the browser shows,
found through the same user-scoped querysets, so that another user's are
missing here too (the same 404 as an unknown id). Lists are OpenAI's: newest
first, an `after` cursor naming the last object seen, and `has_more`.
Requests that change things are in `fine_tuning` and `files`.
"""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from itertools import chain

from django.db.models import Q

from datasets_app.models import Dataset, DatasetStatus
from jobs import config as cfg
from jobs.config.planning import PREFERENCE_RATE_SHARE
from jobs.models import Checkpoint, FineTuneJob, JobEvent, JobStatus, MetricPoint
from jobs.numbers import NumberError, read_number
from jobs.services import catalog
from jobs.vocabulary import PREFERENCE_OBJECTIVES
from serving.errors import sentence
from serving.openai.http import RequestError
from serving.openai.integrations import integrations_of
from serving.openai.methods import shown_method

FILE_PREFIX = "file-"
JOB_PREFIX = "ftjob-"
CHECKPOINT_PREFIX = "ftckpt-"
# A job's events come from two tables; the letter says which, the number is the row.
EVENT_PREFIXES = {"e": JobEvent, "m": MetricPoint}

# Every Tailor dataset is fine-tuning data: that is the one purpose there is.
PURPOSE = "fine-tune"
FILE_STATUS = {
    DatasetStatus.UPLOADED: "uploaded",
    DatasetStatus.VALIDATING: "uploaded",
    DatasetStatus.READY: "processed",
    DatasetStatus.INVALID: "error",
}
# OpenAI's statuses are what its clients poll on, and a terminal one must be
# final. A cancel request on a running job (Tailor's `cancelling`) still ends
# as cancelled, failed or even succeeded (a run that finishes its last step
# first), so until it ends it stays "running". A job created without starting
# it (native API, start=false) has had its files checked and waits to be
# queued, which is the part of OpenAI's life called "validating_files".
JOB_STATUS = {
    JobStatus.CREATED: "validating_files",
    JobStatus.QUEUED: "queued",
    JobStatus.RUNNING: "running",
    JobStatus.CANCELLING: "running",
    JobStatus.SUCCEEDED: "succeeded",
    JobStatus.FAILED: "failed",
    JobStatus.CANCELLED: "cancelled",
}
EVENT_LEVEL = {"info": "info", "warning": "warn", "error": "error"}


# --- ids and lookups -------------------------------------------------------------------------


def file_id(dataset_id: uuid.UUID) -> str:
    return FILE_PREFIX + dataset_id.hex


def job_id(pk: uuid.UUID) -> str:
    return JOB_PREFIX + pk.hex


def uuid_of(public_id, prefix: str) -> uuid.UUID | None:
    if not isinstance(public_id, str) or not public_id.startswith(prefix):
        return None
    rest = public_id[len(prefix) :]
    return uuid.UUID(hex=rest) if re.fullmatch(r"[0-9a-f]{32}", rest) else None


def _int_of(public_id, prefix: str) -> int | None:
    if not isinstance(public_id, str) or not public_id.startswith(prefix):
        return None
    rest = public_id[len(prefix) :]
    return int(rest) if rest.isascii() and rest.isdigit() and len(rest) < 19 else None


def file_not_found(public_id: str, param: str = "id") -> RequestError:
    return RequestError(404, f"No such File object: '{public_id}'.", param=param,
                        code="file_not_found")  # fmt: skip


def user_file(user, public_id: str, param: str = "id") -> Dataset:
    """The user's dataset this file id names; the same 404 for missing and foreign."""
    pk = uuid_of(public_id, FILE_PREFIX)
    dataset = Dataset.objects.for_user(user).filter(pk=pk).first() if pk else None
    if dataset is None:
        raise file_not_found(public_id, param)
    return dataset


def user_job(user, public_id: str) -> FineTuneJob:
    """The user's job this id names; the same 404 for missing and foreign."""
    pk = uuid_of(public_id, JOB_PREFIX)
    job = None
    if pk is not None:
        job = FineTuneJob.objects.for_user(user).filter(pk=pk)
        job = job.select_related("base_model", "owner", "parent").first()
    if job is None:
        raise RequestError(404, f"No such fine-tuning job: '{public_id}'.",
                           param="fine_tuning_job_id", code="job_not_found")  # fmt: skip
    return job


# --- lists -----------------------------------------------------------------------------------


def read_limit(query, *, default: int, highest: int) -> int:
    """A list's `limit` query parameter, 1 to `highest`; `default` when absent or empty."""
    raw = query.get("limit")
    if raw in (None, ""):
        return default
    try:
        return read_number(raw, whole=True, lowest=1, highest=highest)
    except NumberError as refused:
        raise RequestError(400, f"limit: {refused.message}", param="limit") from None


def _unknown_cursor(public_id: str) -> RequestError:
    return RequestError(400, f"after: '{public_id}' is not an id from this list.", param="after")


def _page(objects: list[dict], limit: int) -> dict:
    """OpenAI's list: `has_more` when a row beyond the `limit` asked for was fetched."""
    return {"object": "list", "data": objects[:limit], "has_more": len(objects) > limit}


def _older(anchor) -> Q:
    """Rows before `anchor` in (created_at, pk) order."""
    return Q(created_at__lt=anchor.created_at) | Q(created_at=anchor.created_at, pk__lt=anchor.pk)


def _ordered_after(rows, after: str | None, prefix: str, *, newest_first: bool = True):
    """`rows` ordered by (created_at, pk), from just after the object whose public
    id is `after` (the list's cursor) when one is given; RequestError for an
    unknown cursor."""
    if not after:
        order = ("-created_at", "-pk") if newest_first else ("created_at", "pk")
        return rows.order_by(*order)
    pk = uuid_of(after, prefix)
    anchor = rows.filter(pk=pk).first() if pk else None
    if anchor is None:
        raise _unknown_cursor(after)
    if newest_first:
        return rows.filter(_older(anchor)).order_by("-created_at", "-pk")
    newer = Q(created_at__gt=anchor.created_at) | Q(created_at=anchor.created_at, pk__gt=anchor.pk)
    return rows.filter(newer).order_by("created_at", "pk")


# --- files -----------------------------------------------------------------------------------


def status_details(dataset: Dataset) -> str | None:
    """Why an invalid file was refused: the count and the first problems, in their sentences."""
    if dataset.status != DatasetStatus.INVALID:
        return None
    shown = [error["message"] for error in (dataset.errors or [])[:3]]
    count = max(dataset.error_count, len(shown))
    text = f"{count:,} problem{'s' if count != 1 else ''} found; nothing was imported."
    if shown:
        text += " " + "; ".join(shown)
        if count > len(shown):
            text += f"; and {count - len(shown):,} more"
        text += "."
    return text


def file_object(dataset: Dataset) -> dict:
    return {
        "id": file_id(dataset.pk),
        "object": "file",
        "bytes": dataset.size_bytes,
        "created_at": int(dataset.created_at.timestamp()),
        "expires_at": None,
        "filename": dataset.original_filename,
        "purpose": PURPOSE,
        "status": FILE_STATUS.get(dataset.status, "uploaded"),
        "status_details": status_details(dataset),
    }


def files_page(user, query) -> dict:
    """GET /v1/files: `purpose`, `order` (desc by default), `limit`, `after`."""
    order = query.get("order") or "desc"
    if order not in ("asc", "desc"):
        raise RequestError(400, "order: must be 'asc' or 'desc'.", param="order")
    limit = read_limit(query, default=10_000, highest=10_000)
    rows = Dataset.objects.for_user(user)
    if query.get("purpose") not in (None, "", PURPOSE):
        rows = rows.none()
    rows = _ordered_after(rows, query.get("after"), FILE_PREFIX, newest_first=order == "desc")
    return _page([file_object(dataset) for dataset in rows[: limit + 1]], limit)


def deleted_file(dataset: Dataset) -> dict:
    return {"id": file_id(dataset.pk), "object": "file", "deleted": True}


# --- jobs ------------------------------------------------------------------------------------


def _seconds(moment) -> int | None:
    return int(moment.timestamp()) if moment is not None else None


def resolved_hyperparameters(job: FineTuneJob) -> dict:
    """The values the job trains with, in OpenAI's terms."""
    training = job.config.get("training") or {}
    epochs = training.get("epochs")
    if isinstance(epochs, float) and epochs.is_integer():
        epochs = int(epochs)
    base_rate = cfg.preset_learning_rate(catalog.model_facts(job.base_model), job.method)
    if job.objective in PREFERENCE_OBJECTIVES:
        # The presets take a smaller step for preference tuning: "auto" is 1.
        base_rate *= PREFERENCE_RATE_SHARE
    rate = training.get("learning_rate")
    multiplier = float(f"{rate / base_rate:.6g}") if rate and base_rate else None
    return {
        "n_epochs": epochs,
        "batch_size": training.get("batch_size"),
        "learning_rate_multiplier": multiplier,
    }


def user_provided_suffix(job: FineTuneJob) -> str | None:
    # ft:<base>:<owner>:<suffix>:<id>; neither catalog ids nor usernames hold ":".
    parts = job.fine_tuned_model.split(":")
    return (parts[3] or None) if len(parts) == 5 else None


def _estimated_finish(job: FineTuneJob) -> int | None:
    if job.status != JobStatus.RUNNING or job.eta_seconds is None:
        return None
    return _seconds(job.updated_at + timedelta(seconds=job.eta_seconds))


def _error(job: FineTuneJob, *, staff: bool) -> dict | None:
    """Why the job failed: the job's plain sentence for everyone (jobs/README.md),
    and for staff its traceback, as the native API shows it."""
    if job.status != JobStatus.FAILED:
        return None
    error = {
        "code": job.error_code or "training_failed",
        "message": job.error_message or sentence("job_failed"),
        "param": None,
    }
    if staff and job.error_traceback:
        error["traceback"] = job.error_traceback
    return error


def job_object(job: FineTuneJob, *, staff: bool = False) -> dict:
    """The job as OpenAI's fine-tuning API shows it; the error's traceback for `staff` only."""
    hyperparameters = resolved_hyperparameters(job)
    succeeded = job.status == JobStatus.SUCCEEDED
    validation = job.validation_dataset_id
    return {
        "id": job_id(job.pk),
        "object": "fine_tuning.job",
        # A job trained on from a fine-tuned model's adapter names that model, as it was asked.
        "model": job.parent.fine_tuned_model if job.parent_id else job.base_model_id,
        "created_at": _seconds(job.created_at),
        "finished_at": _seconds(job.finished_at),
        "fine_tuned_model": job.fine_tuned_model if succeeded else None,
        "organization_id": job.owner.get_username(),
        "result_files": [],
        "status": JOB_STATUS[job.status],
        "training_file": file_id(job.dataset_id),
        "validation_file": file_id(validation) if validation else None,
        "hyperparameters": hyperparameters,
        "trained_tokens": job.trained_tokens if succeeded else None,
        "error": _error(job, staff=staff),
        "seed": (job.config.get("training") or {}).get("seed"),
        "estimated_finish": _estimated_finish(job),
        "integrations": integrations_of(job.config),
        "method": shown_method(job, hyperparameters),
        "user_provided_suffix": user_provided_suffix(job),
        "metadata": job.metadata or None,
    }


def jobs_page(user, query) -> dict:
    """GET /v1/fine_tuning/jobs: newest first, `after` a job id, `limit` (20)."""
    limit = read_limit(query, default=20, highest=100)
    rows = FineTuneJob.objects.for_user(user).select_related("base_model", "owner", "parent")
    rows = _ordered_after(rows, query.get("after"), JOB_PREFIX)
    jobs = rows[: limit + 1]
    return _page([job_object(job, staff=user.is_staff) for job in jobs], limit)


# --- events ----------------------------------------------------------------------------------


def _message_event(event: JobEvent) -> dict:
    return {
        "id": f"ftevent-e{event.pk}",
        "object": "fine_tuning.job.event",
        "created_at": _seconds(event.created_at),
        "level": EVENT_LEVEL.get(event.level, "info"),
        "message": event.message,
        "data": event.data or {},
        "type": "message",
    }


def _metrics_event(point: MetricPoint, total_steps: int) -> dict:
    where = f"Step {point.step:,}/{total_steps:,}" if total_steps else f"Step {point.step:,}"
    if point.kind == "eval":
        said = f"validation loss={point.val_loss:.4f}"
        if point.accuracy is not None:
            said += f", validation accuracy={point.accuracy:.4f}"
    else:
        said = f"training loss={point.train_loss:.4f}" if point.train_loss is not None else "logged"
    values = {
        "step": point.step,
        "total_steps": total_steps or None,
        "epoch": point.epoch,
        "train_loss": point.train_loss,
        "valid_loss": point.val_loss,
        "valid_accuracy": point.accuracy,
        "learning_rate": point.learning_rate,
        "grad_norm": point.grad_norm,
        "trained_tokens": point.tokens or None,
    }
    return {
        "id": f"ftevent-m{point.pk}",
        "object": "fine_tuning.job.event",
        "created_at": _seconds(point.created_at),
        "level": "info",
        "message": f"{where}: {said}",
        "data": {name: value for name, value in values.items() if value is not None},
        "type": "metrics",
    }


# Rows of both tables in one order, newest first: (created_at, table, pk),
# metric points before events at the same instant.
_TABLE_ORDER = {MetricPoint: 0, JobEvent: 1}


def _rows_after(model, job: FineTuneJob, anchor):
    rows = model.objects.filter(job=job)
    if anchor is not None:
        theirs, ours = _TABLE_ORDER[type(anchor)], _TABLE_ORDER[model]
        if ours < theirs:
            rows = rows.filter(created_at__lte=anchor.created_at)
        elif ours > theirs:
            rows = rows.filter(created_at__lt=anchor.created_at)
        else:
            rows = rows.filter(_older(anchor))
    return rows.order_by("-created_at", "-pk")


def _event_anchor(job: FineTuneJob, public_id: str):
    if isinstance(public_id, str) and public_id.startswith("ftevent-") and len(public_id) > 9:
        model = EVENT_PREFIXES.get(public_id[8])
        pk = _int_of(public_id[9:], "")
        if model is not None and pk is not None:
            anchor = model.objects.filter(job=job, pk=pk).first()
            if anchor is not None:
                return anchor
    raise _unknown_cursor(public_id)


def events_page(user, public_id: str, query) -> dict:
    """A job's status changes, logs and checkpoints (messages) and its logged
    losses (metrics), newest first; `after` an event id, `limit` (20)."""
    job = user_job(user, public_id)
    limit = read_limit(query, default=20, highest=100)
    anchor = _event_anchor(job, query["after"]) if query.get("after") else None
    events = _rows_after(JobEvent, job, anchor)[: limit + 1]
    points = _rows_after(MetricPoint, job, anchor)[: limit + 1]
    rows = sorted(
        chain(events, points),
        key=lambda row: (row.created_at, _TABLE_ORDER[type(row)], row.pk),
        reverse=True,
    )
    objects = [
        _metrics_event(row, job.total_steps) if isinstance(row, MetricPoint)
        else _message_event(row)
        for row in rows[: limit + 1]
    ]  # fmt: skip
    return _page(objects, limit)


# --- checkpoints -----------------------------------------------------------------------------


def _nearest(job: FineTuneJob, kind: str, step: int) -> MetricPoint | None:
    """The newest point of `kind` logged at or before `step`."""
    points = MetricPoint.objects.filter(job=job, kind=kind, step__lte=step)
    return points.order_by("-step", "-attempt").first()


def checkpoint_object(job: FineTuneJob, checkpoint: Checkpoint) -> dict:
    train_loss, valid_loss = checkpoint.train_loss, checkpoint.val_loss
    if train_loss is None and (point := _nearest(job, "train", checkpoint.step)):
        train_loss = point.train_loss
    if valid_loss is None and (point := _nearest(job, "eval", checkpoint.step)):
        valid_loss = point.val_loss
    metrics = {"step": checkpoint.step, "train_loss": train_loss}
    if valid_loss is not None:
        # Tailor evaluates on the whole validation set, never a batch of it.
        metrics.update(valid_loss=valid_loss, full_valid_loss=valid_loss)
    return {
        "id": f"{CHECKPOINT_PREFIX}{checkpoint.pk}",
        "object": "fine_tuning.job.checkpoint",
        "created_at": _seconds(checkpoint.created_at),
        "fine_tuned_model_checkpoint": f"{job.fine_tuned_model}:ckpt-step-{checkpoint.step}",
        "fine_tuning_job_id": job_id(job.pk),
        "step_number": checkpoint.step,
        "metrics": metrics,
    }


def checkpoints_page(user, public_id: str, query) -> dict:
    """The checkpoints a job keeps, newest first; `after` a checkpoint id, `limit` (10)."""
    job = user_job(user, public_id)
    limit = read_limit(query, default=10, highest=100)
    rows = job.checkpoints.order_by("-step")
    after = query.get("after")
    if after:
        pk = _int_of(after, CHECKPOINT_PREFIX)
        anchor = rows.filter(pk=pk).first() if pk is not None else None
        if anchor is None:
            raise _unknown_cursor(after)
        rows = rows.filter(step__lt=anchor.step)
    return _page([checkpoint_object(job, c) for c in rows[: limit + 1]], limit)
