"""The worker's side of a job: claim it, hold its lease, write what the run
produces, finish it; and the reaper that rescues jobs whose worker died.

Celery only rings the bell; the database decides (see docs/architecture.md,
"Durability"). `claim` is one conditional UPDATE that bumps `attempt`, the
run's fencing token. Every later write of the run matches on that attempt;
when it matches nothing the run has lost the job (`LostJob`) and must stop
without writing more.
"""

import logging

import redis
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.db.models.functions import Coalesce, Now
from django.utils import timezone

from jobs.models import Checkpoint, EventKind, FineTuneJob, JobStatus, MetricKind, MetricPoint
from jobs.services import live, sweep_pruning, sweeps
from jobs.services.lifecycle import (
    cancel_flag_key,
    do_transition,
    flags_client,
    queue_job,
    record_event,
)
from jobs.signals import job_succeeded
from studio.services import leases
from usage.services import device_time

logger = logging.getLogger(__name__)

RUNNING_STATES = (JobStatus.RUNNING, JobStatus.CANCELLING)


class LostJob(Exception):
    """This run's attempt no longer owns the job (a newer attempt claimed it,
    or it was finished elsewhere)."""


def _owned(job_id, attempt: int):
    return leases.owned(leases.kind("training"), job_id, attempt)


def claim(job_id, worker: str, *, device: str = "") -> FineTuneJob | None:
    """Take the job for this run: queued (or running with an expired lease) →
    running, attempt + 1, and open the attempt's device time on `device`
    (usage/). None when someone else holds it or it is over."""
    with transaction.atomic():
        previous = FineTuneJob.objects.filter(pk=job_id).values_list("status", flat=True).first()
        attempt = leases.claim(
            leases.kind("training"), job_id, worker,
            started_at=Coalesce(F("started_at"), Now()), updated_at=Now(),
        )  # fmt: skip
        if attempt is None:
            return None
        job = FineTuneJob.objects.select_related("base_model").get(pk=job_id)
        device_time.begin(job, worker=worker, device=device)
        resumed = " (resuming)" if job.attempt > 1 else ""
        record_event(
            job,
            EventKind.STATUS,
            f"Running on {worker}, attempt {job.attempt} of {job.max_attempts}{resumed}.",
            from_status=previous,
            to_status=JobStatus.RUNNING,
            attempt=job.attempt,
        )
        transaction.on_commit(lambda: live.publish_summary(job_id))
    return job


def still_owned(job_id, attempt: int) -> bool:
    """Whether this run's attempt still holds the job (asked before writing files)."""
    return _owned(job_id, attempt).exists()


def cancel_requested(job_id) -> bool:
    try:
        return bool(flags_client().exists(cancel_flag_key(job_id)))
    except redis.RedisError:
        return False  # the heartbeat reads the status from the database too


# --- what a run writes -------------------------------------------------------------


def record_start(job_id, attempt: int, *, total_steps: int, resumed_from_step: int) -> None:
    """The trainer knows its step count; earlier attempts' points past the
    checkpoint this run resumes from no longer describe the model."""
    with transaction.atomic():
        if not _owned(job_id, attempt).update(
            total_steps=total_steps, current_step=resumed_from_step
        ):
            raise LostJob
        stale = MetricPoint.objects.filter(
            job_id=job_id, attempt__lt=attempt, step__gt=resumed_from_step
        )
        if stale.delete()[0]:
            transaction.on_commit(
                lambda: live.publish(
                    live.job_group(job_id), {"type": "job.rewind", "after_step": resumed_from_step}
                )
            )
    transaction.on_commit(lambda: live.publish_summary(job_id))


def record_metric(job_id, attempt: int, event: dict) -> None:
    """Store one logging step and send it, with the job's figures, to the
    job's page and the jobs lists. Raises LostJob."""
    evaluation = event.get("train_loss") is None and event.get("val_loss") is not None
    kind = MetricKind.EVAL if evaluation else MetricKind.TRAIN
    fields = {
        "current_step": event["step"],
        "epoch": event.get("epoch") or 0,
        "trained_tokens": event.get("tokens") or 0,
        "updated_at": timezone.now(),
    }
    if kind == MetricKind.TRAIN:
        fields.update(
            train_loss=event.get("train_loss"),
            tokens_per_second=event.get("tokens_per_second"),
            eta_seconds=event.get("eta"),
        )
    else:
        val = event["val_loss"]
        fields.update(
            val_loss=val,
            # min(best, val), written so that SQLite and PostgreSQL agree
            best_val_loss=_least("best_val_loss", val),
        )
    with transaction.atomic():
        if not _owned(job_id, attempt).update(**fields):
            raise LostJob
        point, _ = MetricPoint.objects.update_or_create(
            job_id=job_id,
            attempt=attempt,
            step=event["step"],
            kind=kind,
            defaults={
                "epoch": event.get("epoch") or 0,
                "train_loss": event.get("train_loss"),
                "val_loss": event.get("val_loss"),
                "accuracy": event.get("accuracy"),
                "reward_margin": event.get("reward_margin"),
                "preference_accuracy": event.get("preference_accuracy"),
                "learning_rate": event.get("learning_rate"),
                "grad_norm": event.get("grad_norm"),
                "tokens_per_second": event.get("tokens_per_second"),
                "tokens": event.get("tokens") or 0,
                "elapsed": event.get("elapsed") or 0,
                "eta": event.get("eta"),
            },
        )
    live.publish_point(point, event.get("total_steps") or 0)
    if kind == MetricKind.EVAL:  # a sweep may stop the run early
        sweep_pruning.after_validation(job_id, event["step"], event["val_loss"])


def _least(column: str, value: float):
    from django.db.models import Case, Value, When

    return Case(
        When(**{f"{column}__lt": value}, then=F(column)),
        default=Value(value),
    )


def record_log(job_id, attempt: int, message: str, *, level: str = "info", data=None) -> None:
    with transaction.atomic():
        if not _owned(job_id, attempt).exists():
            raise LostJob
        record_event(job_id, EventKind.LOG, message, level=level, attempt=attempt, data=data)


def record_log_event(job_id, attempt: int, event: dict) -> None:
    """A training run's log event (jobs.training.LogEvent), at its level."""
    record_log(
        job_id, attempt, event["message"], level=event.get("level", "info"), data=event.get("data")
    )


def record_checkpoint(job_id, attempt: int, event: dict) -> None:
    with transaction.atomic():
        if not _owned(job_id, attempt).exists():
            raise LostJob
        Checkpoint.objects.update_or_create(
            job_id=job_id,
            step=event["step"],
            defaults={
                "attempt": attempt,
                "path": event["path"],
                "train_loss": event.get("train_loss"),
                "val_loss": event.get("val_loss"),
            },
        )
        # The trainer keeps only the newest few of this attempt on disk; the
        # list follows it. Older attempts' rows stay: with object storage they
        # name files of another machine, kept in the store (housekeeping
        # removes them with the rows).
        from pathlib import Path

        ours = Checkpoint.objects.filter(job_id=job_id, attempt=attempt)
        for checkpoint in ours.exclude(step=event["step"]):
            if not Path(checkpoint.path).exists():
                checkpoint.delete()
        record_event(
            job_id,
            EventKind.CHECKPOINT,
            f"Saved a checkpoint at step {event['step']:,}.",
            attempt=attempt,
            data={"step": event["step"]},
        )


# --- how a run ends -------------------------------------------------------------------


def _ended(job_id) -> None:
    """What follows every end of a run: its cancel flag cleared, its sweep advanced."""
    _clear_cancel_flag(job_id)
    sweeps.job_ended(job_id)


def _clear_cancel_flag(job_id) -> None:
    try:
        flags_client().delete(cancel_flag_key(job_id))
    except redis.RedisError:
        logger.warning("Could not clear the cancel flag of job %s", job_id)


def finish_succeeded(job_id, attempt: int, *, metrics: dict, adapter_path: str,
                     adapter_bytes: int, trained_tokens: int, final_step: int) -> bool:  # fmt: skip
    job = FineTuneJob(pk=job_id)
    with transaction.atomic():
        device_time.close(job_id, attempt)  # ends with the run, in its transaction
        done = do_transition(
            job, JobStatus.SUCCEEDED, expected=RUNNING_STATES, attempt=attempt,
            reason="Training finished; the adapter is ready to download.",
            final_metrics=metrics, adapter_path=adapter_path, adapter_bytes=adapter_bytes,
            trained_tokens=trained_tokens, current_step=final_step,
        )  # fmt: skip
    _clear_cancel_flag(job_id)
    if done:
        # The job has succeeded whatever a listener does (say, fail to queue its evaluation).
        job = FineTuneJob.objects.get(pk=job_id)
        answers = job_succeeded.send_robust(sender=FineTuneJob, job=job)
        for receiver, answer in answers:
            if isinstance(answer, Exception):
                logger.error("%s failed after job %s succeeded: %s", receiver, job_id, answer)
        sweeps.job_ended(job_id)  # after the evaluation was asked for: its metric may be one
    return done


def finish_cancelled(job_id, attempt: int, *, step: int) -> bool:
    job = FineTuneJob(pk=job_id)
    kept = Checkpoint.objects.filter(job_id=job_id).order_by("-step").first()
    where = f"; checkpoint of step {kept.step:,} kept" if kept else ""
    with transaction.atomic():
        device_time.close(job_id, attempt)  # ends with the run, in its transaction
        done = do_transition(
            job, JobStatus.CANCELLED, expected=RUNNING_STATES, attempt=attempt,
            reason=f"Cancelled at step {step:,}{where}.", current_step=step,
        )  # fmt: skip
    _ended(job_id)
    return done


def finish_failed(job_id, attempt: int, *, code: str, message: str, traceback: str) -> bool:
    job = FineTuneJob(pk=job_id)
    with transaction.atomic():
        device_time.close(job_id, attempt)  # ends with the run, in its transaction
        done = do_transition(
            job, JobStatus.FAILED, expected=RUNNING_STATES, attempt=attempt, level="error",
            reason=message, error_code=code, error_message=message, error_traceback=traceback,
        )  # fmt: skip
    _ended(job_id)
    return done


# --- what the reaper does with a lost run (studio/services/leases.py) ------------------------

LOST_WHY = {
    "lost": "The training worker stopped responding",
    "stalled": "The run made no progress for {minutes}",
}


def _minutes(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:,.0f} s"
    return f"{seconds / 60:,.0f} minutes"


def training_lost(job: FineTuneJob, why: str) -> bool:
    """A run that died ("lost"), hung ("stalled") or ignored a cancel
    ("cancel_timeout"): cancelled if a cancel was asked, queued again to resume
    from the newest checkpoint while attempts remain, else failed in plain
    words. The row is locked by the caller."""
    device_time.close_lost(job.pk, job.attempt)
    if job.status == JobStatus.CANCELLING:
        ending = {
            "cancel_timeout": (
                f"Cancelled; the run did not stop within {settings.TAILOR_CANCEL_GRACE_SECONDS} s, "
                "so it was ended."
            ),
        }.get(why, "Cancelled; the worker stopped before it could confirm.")
        return do_transition(
            job, JobStatus.CANCELLED, expected=(JobStatus.CANCELLING,), attempt=job.attempt,
            reason=ending,
        )  # fmt: skip
    cause = LOST_WHY.get(why, LOST_WHY["lost"]).format(
        minutes=_minutes(settings.TAILOR_STALL_SECONDS)
    )
    if not leases.attempts_left(leases.kind("training"), job):
        code = "stalled" if why == "stalled" else "worker_lost"
        if code == "stalled":
            message = (
                f"{cause} on its last attempt ({job.attempt} of {job.max_attempts}), so Tailor "
                "ended it. A step that hangs usually means a stuck device or data loader: "
                "check the worker's logs, then retry."
            )
        else:
            message = (
                f"The training worker was lost on every attempt ({job.attempt} of "
                f"{job.max_attempts}): its process died or its machine went away, so Tailor "
                "gave up. Check the worker's memory and logs, then retry."
            )
        return do_transition(
            job, JobStatus.FAILED, expected=(JobStatus.RUNNING,), attempt=job.attempt,
            level="error", reason=message, error_code=code, error_message=message,
        )  # fmt: skip
    return queue_job(
        job,
        JobStatus.RUNNING,
        attempt=job.attempt,
        reason=(
            f"{cause}; queued again to resume from the newest checkpoint "
            f"(attempt {job.attempt + 1} of {job.max_attempts})."
        ),
    )


def resume_checkpoint(job: FineTuneJob) -> Checkpoint | None:
    """The newest checkpoint a fenced write recorded whose files are complete
    (a checkpoint cut short by a crash or a full disk is passed over). With
    object storage the files are on no machine in particular: a row is
    recorded only once its checkpoint is whole in the store, so the newest
    row is the one (a worker checks the files it fetches: worker_files)."""
    from jobs.services.worker_files import here
    from jobs.training import checkpoint_is_complete
    from studio.services import object_store
    from studio.services.paths import inside

    for checkpoint in Checkpoint.objects.filter(job=job).order_by("-step"):
        path = here(job, checkpoint.path)
        # Only the job's own files: a row is text anyone with the database can change.
        if inside(job.folder, path) and (object_store.enabled() or checkpoint_is_complete(path)):
            return checkpoint
    return None
