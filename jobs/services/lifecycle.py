"""A job's life as the user sees it: check a configuration, create, cancel, retry.

Every lookup goes through `access_job` (owner and staff only; the same 404 for
missing and foreign jobs). Status changes happen in `do_transition` alone.
The worker's side (claim, lease, fenced writes, reaper) is in `ledger.py`.
"""

import functools
import logging
import os
import shutil
import uuid
from pathlib import Path

import redis
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.models import Action
from audit.services import record
from jobs import config as cfg
from jobs import vocabulary
from jobs.models import EXPORTING, EventKind, FineTuneJob, JobEvent, JobStatus
from jobs.services import catalog, housekeeping, live
from jobs.services.estimates import estimate
from quotas import services as quotas
from studio.services import leases, object_store
from studio.services.access import one_or_404

logger = logging.getLogger(__name__)

# Checking a configuration lives in drafts.py; its names stay importable here.
from jobs.services.drafts import (  # noqa: E402, F401
    MAX_CONFIG_BYTES,
    JobDraft,
    check_start_job,
    config_yaml,
    dataset_facts,
    parse_config_upload,
)


class JobStateError(ValueError):
    """An action the job's current status does not allow (e.g. cancel a finished job)."""


def access_job(user, job_id) -> FineTuneJob:
    """The user's job (staff: anyone's); the same 404 for missing and foreign jobs."""
    jobs = FineTuneJob.objects.for_user(user).select_related("base_model")
    return one_or_404(jobs, job_id, "No such job.")


# --- configuration --------------------------------------------------------------------


def _fine_tuned_name(owner, model_id: str, job_id: uuid.UUID, suffix: str = "") -> str:
    # OpenAI's shape, ft:<base>:<owner>:<suffix>:<id>, so clients that parse it work.
    # The owner's name is shortened where a long one would overflow the column
    # (the job id at the end keeps the name unique).
    room = FineTuneJob._meta.get_field("fine_tuned_model").max_length - len(
        f"ft:{model_id}::{suffix}:{job_id.hex[:8]}"
    )
    return f"ft:{model_id}:{owner.username[: max(room, 0)]}:{suffix}:{job_id.hex[:8]}"


def _link_or_copy(source: Path, dest: Path) -> None:
    """Keep the job's own reference to a data file: a hard link (instant, no
    extra space) where the file system allows it, else a copy (fetched first
    with object storage: the dataset was validated on another machine)."""
    object_store.fetch(source)
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, dest)
    except OSError:
        shutil.copyfile(source, dest)


def _snapshot_data(job: FineTuneJob, draft: JobDraft | None, source_job: FineTuneJob | None):
    """The job's training and validation files, kept in its own folder so that
    deleting or re-validating the dataset never changes a job's data; pushed
    before the row is saved (object storage: jobs/services/worker_files.py)."""
    stored = object_store.exists  # the local file, with the filesystem layout
    if source_job is not None and stored(source_job.train_file):
        _link_or_copy(source_job.train_file, job.train_file)
        if stored(source_job.validation_file):
            _link_or_copy(source_job.validation_file, job.validation_file)
    else:
        _link_or_copy(draft.dataset.train_path, job.train_file)
        if draft.validation_dataset is not None:
            _link_or_copy(draft.validation_dataset.records_path, job.validation_file)
        elif draft.dataset.num_validation_rows and stored(draft.dataset.validation_path):
            _link_or_copy(draft.dataset.validation_path, job.validation_file)
    object_store.push(job.data_folder)


def unique_job_name(owner, name: str) -> str:
    """`name`, or `name (2)`, `name (3)`… when `owner` has a job of that name,
    so that two of one owner's jobs never read alike in a list."""
    max_length = FineTuneJob._meta.get_field("name").max_length
    # Every candidate starts with this much of `name` (a suffix is short).
    jobs = FineTuneJob.objects.filter(owner=owner, name__startswith=name[: max_length - 12])
    taken = set(jobs.values_list("name", flat=True))
    number = 1
    candidate = name
    while candidate in taken:
        number += 1
        suffix = f" ({number})"
        candidate = name[: max_length - len(suffix)] + suffix
    return candidate


def create_job(
    owner, draft: JobDraft, *, start: bool = True, retry_of: FineTuneJob | None = None,
    suffix: str = "", metadata: dict | None = None,
) -> FineTuneJob:  # fmt: skip
    """Store a new job from a checked draft and, with `start`, queue it.

    A name another of the owner's jobs has gets a number (`unique_job_name`),
    in the job and its configuration alike; a retry keeps its original's name
    (it is that job run again, and says so). Its data files are linked into
    the job's folder first; if anything fails the folder is removed and no
    row remains. QuotaExceeded (quotas/) when a hard limit refuses it.
    """
    job_id = uuid.uuid4()
    document = draft.document
    if retry_of is None:
        document["name"] = unique_job_name(owner, draft.config.name)
    job = FineTuneJob(
        id=job_id,
        owner=owner,
        name=document["name"],
        dataset=draft.dataset,
        dataset_revision=retry_of.dataset_revision if retry_of else draft.dataset.revision,
        validation_dataset=draft.validation_dataset,
        base_model=draft.model,
        method=draft.config.model.method,
        preset=draft.config.preset,
        task=draft.model.task,
        objective=draft.config.objective,
        parent=draft.parent,
        config=document,
        plan=draft.plan.as_dict(),
        estimate=draft.estimate,
        total_steps=draft.plan.total_steps,
        retry_of=retry_of,
        max_attempts=settings.TAILOR_JOB_MAX_ATTEMPTS,
        fine_tuned_model=_fine_tuned_name(owner, draft.model.id, job_id, suffix),
        metadata=metadata or {},
    )
    quotas.check_new_job(owner, total_steps=draft.plan.total_steps, queue=start)
    try:
        _snapshot_data(job, draft, retry_of)
        with transaction.atomic():
            job.save(force_insert=True)
            record_event(
                job, EventKind.STATUS, f"Created from {draft.dataset.name}.", to_status="created"
            )
            if retry_of is None:
                record(Action.CREATE, job)
            else:
                record(Action.RETRY, job, detail={"retry_of": str(retry_of.pk)})
            if start:
                queue_job(job, JobStatus.CREATED, reason="Queued for a training worker.")
    except BaseException:
        shutil.rmtree(job.folder, ignore_errors=True)
        raise
    job.refresh_from_db()
    return job


def start_job(job: FineTuneJob) -> FineTuneJob:
    """created → queued; QuotaExceeded when the owner may not queue one more."""
    if job.status == JobStatus.CREATED:
        quotas.check_queue(job.owner)
    with transaction.atomic():
        if not queue_job(job, JobStatus.CREATED, reason="Queued for a training worker."):
            raise JobStateError(
                f"Only a created job can start; this one is {job.get_status_display().lower()}."
            )
        record(Action.START, job)
    job.refresh_from_db()
    return job


def queue_job(job: FineTuneJob, expected: str, *, reason: str, attempt: int | None = None) -> bool:
    """created/running → queued, and send the task after commit.

    When the broker is down the job stays queued and unsent; the dispatcher
    sends it when the broker is back (studio/services/leases.py)."""
    if not do_transition(job, JobStatus.QUEUED, expected=(expected,), reason=reason,
                         attempt=attempt, queued_at=timezone.now(), lease_expires_at=None,
                         task_id="", dispatched_at=None):  # fmt: skip
        return False
    leases.send_after_commit(leases.kind("training"), job.pk)
    return True


# --- transitions --------------------------------------------------------------------


def record_event(job, kind, message, *, level="info", to_status="", from_status="", data=None,
           attempt=None) -> JobEvent:  # fmt: skip
    event = JobEvent.objects.create(
        job_id=job.pk if hasattr(job, "pk") else job,
        kind=kind,
        level=level,
        message=message,
        to_status=to_status,
        from_status=from_status,
        attempt=attempt or 0,
        data=data or {},
    )
    transaction.on_commit(lambda: live.publish_event(event))
    return event


def do_transition(
    job: FineTuneJob,
    to: str,
    *,
    expected: tuple[str, ...],
    reason: str,
    attempt: int | None = None,
    level: str = "info",
    **fields,
) -> bool:
    """Change the job's status from one of `expected` to `to`, with an event.

    One conditional UPDATE (on the expected status and, for a worker's
    writes, on its attempt), so concurrent callers cannot both win; returns
    False, writing nothing, when the row did not match. Call inside a
    transaction: the event and the live message go out only if it commits.
    """
    query = FineTuneJob.objects.filter(pk=job.pk, status__in=expected)
    if attempt is not None:
        query = query.filter(attempt=attempt)
    now = timezone.now()
    if to in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED):
        fields.setdefault("finished_at", now)
        fields.setdefault("lease_expires_at", None)
        fields.setdefault("eta_seconds", None)
    previous = FineTuneJob.objects.filter(pk=job.pk).values_list("status", flat=True).first()
    if not query.update(status=to, updated_at=now, **fields):
        return False
    if to in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED):
        quotas.release_after_commit()  # its training slot (if it held one) is free
    record_event(job, EventKind.STATUS, reason, level=level, from_status=previous or "",
                 to_status=to, attempt=attempt)  # fmt: skip
    job_id = job.pk
    transaction.on_commit(lambda: live.publish_summary(job_id))
    return True


# --- cancel, retry, clone -------------------------------------------------------------


@functools.cache
def flags_client() -> redis.Redis:
    """One client (and connection pool) per process: the training run asks it
    twice a second. redis-py's pool reconnects in a forked child by itself."""
    return redis.Redis.from_url(settings.REDIS_FLAGS_URL, socket_timeout=2)


def cancel_flag_key(job_id) -> str:
    return f"tailor:cancel:{job_id}"


def cancel_job(job: FineTuneJob) -> FineTuneJob:
    """Cancel in any state: at once when not running; a running job stops at its
    next step, keeping its last checkpoint. Finished jobs raise JobStateError."""
    with transaction.atomic():
        done = do_transition(
            job, JobStatus.CANCELLED, expected=(JobStatus.CREATED, JobStatus.QUEUED),
            reason="Cancelled before it started.",
        )  # fmt: skip
        if not done:
            done = do_transition(
                job, JobStatus.CANCELLING, expected=(JobStatus.RUNNING,),
                reason="Cancel requested; stopping at the next step.",
            )  # fmt: skip
            if done:
                job_id = str(job.pk)
                transaction.on_commit(lambda: _raise_cancel_flag(job_id))
        if done:
            record(Action.CANCEL, job)
    job.refresh_from_db()
    if not done and job.status != JobStatus.CANCELLING:
        raise JobStateError(f"The job has already finished ({job.get_status_display().lower()}).")
    return job


def _raise_cancel_flag(job_id: str) -> None:
    # The flag is a fast path for the training step; the lease heartbeat also
    # reads the status, so a lost flag only delays the stop.
    try:
        flags_client().set(cancel_flag_key(job_id), "1", ex=7 * 24 * 3600)
    except redis.RedisError:
        logger.warning("Could not raise the cancel flag of job %s", job_id)


def retry_job(user, job: FineTuneJob) -> FineTuneJob:
    """A new job with the same configuration and data as `job` (finished jobs only)."""
    if not job.is_finished:
        raise JobStateError("Only a finished job can be retried; cancel it first.")
    draft = draft_from_job(user, job)
    return create_job(job.owner, draft, retry_of=job, metadata=job.metadata)


def draft_from_job(user, job: FineTuneJob) -> JobDraft:
    """The job's configuration checked again, with its own data when its dataset is gone."""
    if job.objective == vocabulary.ObjectiveName.MERGE:
        from jobs.services.merges import merge_again  # merges builds on this module

        return merge_again(user, job)
    document = dict(job.config)
    try:
        return check_start_job(user, document)
    except cfg.ConfigError as error:
        if not any(e.field.startswith("data.") for e in error.errors):
            raise
    # The dataset was deleted or changed since: train on the job's own copy.
    config = cfg.read_document(document)
    model = catalog.get_model(config.model.base_model)
    facts = dataset_facts(job.dataset)
    steps = cfg.plan(config, facts, catalog.model_facts(model))
    return JobDraft(
        config=config,
        model=model,
        dataset=job.dataset,
        validation_dataset=job.validation_dataset,
        plan=steps,
        estimate=estimate(model, config, steps),
    )


def clone_document(job: FineTuneJob) -> dict:
    """The job's configuration, to edit in the wizard as a new job."""
    document = dict(job.config)
    document["name"] = f"{job.name} (copy)"[:200]
    return document


# --- reading ---------------------------------------------------------------------------


def job_summary(job: FineTuneJob) -> dict:
    """What the jobs list shows of a job (and sends live)."""
    return {
        "id": str(job.pk),
        "name": job.name,
        "status": job.status,
        "status_label": job.get_status_display(),
        "current_step": job.current_step,
        "total_steps": job.total_steps,
        "progress_percent": job.progress_percent,
        "train_loss": job.train_loss,
        "val_loss": job.val_loss,
        "eta_seconds": job.eta_seconds,
        "export_status": job.export_status,
    }


# --- delete, resume ---------------------------------------------------------------------

# Failures that were not the job's own doing: its configuration and data are
# sound, so the same job continues where its newest complete checkpoint left it.
RESUMABLE_ERRORS = ("disk_full", "worker_lost", "stalled", "storage")
BUSY_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.CANCELLING)


def delete_job(job: FineTuneJob) -> None:
    """Delete the job with everything it owns: its events, metrics,
    checkpoints and evaluations (cascade), and, after commit, its folder.

    Refused with JobStateError while it is queued, running or cancelling, or
    while its export is queued or running (cancel first, or wait). Its
    datasets stay; a retry of it stays and forgets where it came from.
    """
    with transaction.atomic():
        locked = FineTuneJob.objects.select_for_update().filter(pk=job.pk).first()
        if locked is None:
            return
        if locked.status == JobStatus.CANCELLING:
            raise JobStateError("The job is still stopping; delete it once it is cancelled.")
        if locked.status in BUSY_STATUSES:
            raise JobStateError(
                f"The job is {locked.get_status_display().lower()}; cancel it before deleting it."
            )
        if locked.export_status in EXPORTING:
            raise JobStateError(
                "The job's merged model is being exported; delete it once the export is over."
            )
        folder = locked.folder
        record(Action.DELETE, locked)
        locked.delete()
        # Here and, with object storage, in the store.
        transaction.on_commit(lambda: housekeeping.remove(folder))


def can_delete(job: FineTuneJob) -> bool:
    return job.status not in BUSY_STATUSES and job.export_status not in EXPORTING


def can_resume(job: FineTuneJob) -> bool:
    return job.status == JobStatus.FAILED and job.error_code in RESUMABLE_ERRORS


def resume_job(job: FineTuneJob) -> FineTuneJob:
    """Queue a failed job again as a new attempt of the same job, which
    continues from its newest complete checkpoint (or from the start when
    none is left). Only for failures that were not the job's doing
    (`RESUMABLE_ERRORS`); JobStateError otherwise.

    The error is cleared and the job gets TAILOR_JOB_MAX_ATTEMPTS fresh
    attempts; `attempt` itself never goes down (it fences every run).
    """
    from jobs.services.ledger import resume_checkpoint

    with transaction.atomic():
        locked = FineTuneJob.objects.select_for_update().filter(pk=job.pk).first()
        if locked is None:
            raise JobStateError("The job was deleted.")
        if locked.status != JobStatus.FAILED:
            raise JobStateError(
                "Only a failed job can be resumed; this one is "
                f"{locked.get_status_display().lower()}."
            )
        if not can_resume(locked):
            raise JobStateError(
                f"The job failed with {locked.error_code or 'an error'}, which would happen again: "
                "only a full disk, a lost worker or a storage outage can be resumed. Retry it "
                "as a new job once its configuration or data is fixed."
            )
        checkpoint = resume_checkpoint(locked)
        where = (
            f"from its checkpoint of step {checkpoint.step:,}"
            if checkpoint is not None
            else "from the start (no complete checkpoint was kept)"
        )
        FineTuneJob.objects.filter(pk=locked.pk).update(
            error_code="", error_message="", error_traceback="", finished_at=None,
            max_attempts=locked.attempt + settings.TAILOR_JOB_MAX_ATTEMPTS,
        )  # fmt: skip
        queue_job(locked, JobStatus.FAILED, reason=f"Resumed: queued to continue {where}.")
        record(Action.RESUME, locked, detail={"from_step": checkpoint.step if checkpoint else 0})
    job.refresh_from_db()
    return job
