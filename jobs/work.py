"""The background work of jobs, as leased work (studio/services/leases.py):
training runs and merged exports. Registered when the app is ready."""

import shutil

from django.db import transaction

from jobs.models import FineTuneJob, JobStatus
from jobs.services import ledger
from studio.services import leases

EXPORT_COLUMNS = leases.Columns(
    status="export_status",
    attempt="export_attempt",
    lease="export_lease_expires_at",
    worker="export_worker",
    task_id="export_task_id",
    dispatched="export_dispatched_at",
)


def export_lost(job: FineTuneJob, why: str) -> bool:
    """An export whose worker died or hung: its files are removed, and it is
    queued again while attempts remain, else failed with the reason."""
    from jobs.runner import export_event

    folder = job.export_folder(job.export_attempt)
    transaction.on_commit(lambda: shutil.rmtree(folder, ignore_errors=True))
    cause = "stopped making progress" if why == "stalled" else "was lost"
    if leases.attempts_left(EXPORT, job):
        done = leases.requeue(EXPORT, job)
        if done:
            export_event(job, f"The export's worker {cause}; queued again.", "warning")
        return done
    message = (
        f"The export's worker {cause} on every attempt ({job.export_attempt}), so Tailor gave "
        "up. Check the training worker's memory and logs, then export again."
    )
    done = leases.owned(EXPORT, job.pk, job.export_attempt).update(
        export_status="failed", export_error=message, export_lease_expires_at=None
    )
    if done:
        export_event(job, message, "error")
    return bool(done)


TRAINING = leases.WorkKind(
    name="training",
    model=FineTuneJob,
    queue="train",
    task="jobs.train",
    waiting=JobStatus.QUEUED,
    running=(JobStatus.RUNNING, JobStatus.CANCELLING),
    on_lost=ledger.training_lost,
)

EXPORT = leases.WorkKind(
    name="export",
    model=FineTuneJob,
    queue="train",
    task="jobs.export_merged",
    waiting="queued",
    running=("running",),
    on_lost=export_lost,
    columns=EXPORT_COLUMNS,
)


def register() -> None:
    leases.register(TRAINING)
    leases.register(EXPORT)
