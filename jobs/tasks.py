"""Celery tasks of jobs: thin wrappers that call the runner and the ledger."""

from celery import shared_task

from jobs import runner
from jobs.services import ledger


@shared_task(name="jobs.train", bind=True, ignore_result=True)
def train_job(self, job_id: str) -> str:
    return runner.run_job(job_id, self.request.hostname or "worker")


@shared_task(name="jobs.export_merged", ignore_result=True)
def export_merged_model(job_id: str) -> str:
    return runner.run_export(job_id)


@shared_task(name="jobs.reap", ignore_result=True)
def reap() -> dict:
    """Beat: rescue jobs whose worker died and queued jobs whose message was lost."""
    return {
        "requeued_or_failed": ledger.reap_expired_leases(),
        "redispatched": ledger.redispatch_lost_messages(),
    }
