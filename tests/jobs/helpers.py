"""Builders for job tests: ready datasets without a worker, and jobs from them."""

import time

from datasets_app.models import Dataset
from datasets_app.services import create_from_sample, run_validation
from jobs.services.lifecycle import check_start_job, create_job


def ready_sample(owner, slug: str = "support-routing") -> Dataset:
    """A bundled sample, validated here and now (or by the test worker, when
    a transactional test sent it the task first)."""
    dataset = create_from_sample(owner, slug)
    if run_validation(str(dataset.pk), dataset.revision) == "already-running":
        deadline = time.monotonic() + 60
        while dataset.status != "ready" and time.monotonic() < deadline:
            time.sleep(0.1)
            dataset.refresh_from_db()
    dataset.refresh_from_db()
    assert dataset.status == "ready", dataset.errors
    return dataset


def make_job(owner, dataset: Dataset, *, model: str = "tailor-tiny", start: bool = False, **doc):
    document = {"data": {"dataset": str(dataset.pk)}, "model": {"base_model": model}, **doc}
    return create_job(owner, check_start_job(owner, document), start=start)


def run_to_success(owner, document: dict):
    """Create and queue a job from `document`; wait for the worker to finish it well."""
    from jobs.models import FineTuneJob, JobStatus
    from tests.conftest import wait_for

    job = create_job(owner, check_start_job(owner, document))
    wait_for(
        lambda: FineTuneJob.objects.get(pk=job.pk).status in ("succeeded", "failed"),
        300,
        "the job to finish",
    )
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error_message
    return job
