"""The background work of jobs, as leased work (studio/services/leases.py):
training runs and merged exports. Registered when the app is ready."""

import shutil

from django.db import transaction

from jobs.models import ExportStatus, FineTuneJob, JobStatus
from jobs.services import ledger
from studio.services import capacity, leases

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
    from jobs.worker import export_event

    folder = job.export_folder(job.export_attempt)
    transaction.on_commit(lambda: shutil.rmtree(folder, ignore_errors=True))
    cause = leases.lost_cause(why)
    again = leases.attempts_left(EXPORT, job)
    message = (
        f"The export's worker {cause}; queued again."
        if again
        else f"The export's worker {cause} on every attempt ({job.export_attempt}), so Tailor "
        "gave up. Check the training worker's memory and logs, then export again."
    )
    done = leases.requeue_or_fail(
        EXPORT, job, failed={"export_status": ExportStatus.FAILED, "export_error": message}
    )
    if done:
        export_event(job, message, "warning" if again else "error")
    return done


def release_training() -> int:
    """Held training jobs go to workers by quotas and fair share (quotas/)."""
    from quotas.services import release

    return release()


TRAINING = leases.WorkKind(
    name="training",
    model=FineTuneJob,
    queue="train",
    task="jobs.train",
    waiting=JobStatus.QUEUED,
    running=(JobStatus.RUNNING, JobStatus.CANCELLING),
    on_lost=ledger.training_lost,
    release=release_training,
    # By the job's memory class (studio/services/capacity.py): plain `train`
    # for the smallest, which every training worker takes.
    route=capacity.training_queue,
    routes=capacity.training_queues,
)

EXPORT = leases.WorkKind(
    name="export",
    model=FineTuneJob,
    queue="train",
    task="jobs.export_merged",
    waiting=ExportStatus.QUEUED,
    running=(ExportStatus.RUNNING,),
    on_lost=export_lost,
    columns=EXPORT_COLUMNS,
    # Merging needs less memory than training: a worker of the job's class holds it.
    route=capacity.training_queue,
    routes=capacity.training_queues,
)


def register() -> None:
    leases.register(TRAINING)
    leases.register(EXPORT)
