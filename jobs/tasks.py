"""Celery tasks of jobs: thin wrappers that call the worker side (`jobs.worker`).

A run that hangs ends its own pool process (`leases.end_process`); the
reaper and dispatcher for every kind of work is `studio.maintenance`.
Housekeeping (`jobs.housekeeping`) runs on the maintenance queue too.
"""

from celery import shared_task

from jobs import worker
from jobs.services import housekeeping
from studio.services import leases


@shared_task(name="jobs.train", bind=True, ignore_result=True)
def train_job(self, job_id: str) -> str:
    return worker.run_job(job_id, self.request.hostname or "worker", hard_stop=leases.end_process)


@shared_task(name="jobs.export_merged", bind=True, ignore_result=True)
def export_merged_model(self, job_id: str) -> str:
    return worker.run_export(
        job_id, self.request.hostname or "worker", hard_stop=leases.end_process
    )


@shared_task(name="jobs.housekeeping", ignore_result=True)
def tidy_disk() -> dict:
    """Beat, on the maintenance queue: trim finished jobs' checkpoints and
    sweep half-written files (jobs/services/housekeeping.py)."""
    return housekeeping.run()
