"""What a failed job's page offers next (jobs/failures.py `next_step`): one
record per failure code a run can end with, Retry only where running the
same job again can succeed, and the page's parts that follow the status."""

import pytest
from django.urls import reverse

from jobs.failures import NEXT_STEPS, UNFORESEEN, next_step
from jobs.models import FineTuneJob, JobStatus
from jobs.services.lifecycle import RESUMABLE_ERRORS
from jobs.training.contract import FAILURE_CODES
from tests.builders import make_job

pytestmark = pytest.mark.django_db

# Every code a worker or the reaper records (jobs/training, jobs/worker.py,
# jobs/services/ledger.py).
RECORDED_CODES = (*FAILURE_CODES, "disk_full", "worker_lost", "stalled", "storage")


def test_every_recorded_failure_has_a_next_step():
    assert {code: next_step(code) is not UNFORESEEN for code in RECORDED_CODES} == {
        "out_of_memory": True, "model_load": True, "dataset": True, "training": False,
        "disk_full": True, "worker_lost": True, "stalled": True, "storage": True,
    }  # fmt: skip


def test_a_retry_is_offered_only_where_it_can_help():
    helps = {code: next_step(code).retry_helps for code in RECORDED_CODES}
    assert helps == {
        "out_of_memory": False, "model_load": False, "dataset": False, "training": True,
        "disk_full": True, "worker_lost": True, "stalled": True, "storage": True,
    }  # fmt: skip
    assert next_step("").retry_helps and next_step("never-heard-of").retry_helps


def test_the_failures_a_job_can_resume_from_say_resume():
    assert {code: NEXT_STEPS[code].action for code in RESUMABLE_ERRORS} == dict.fromkeys(
        RESUMABLE_ERRORS, "resume"
    )


def failed(owner, dataset, code: str) -> FineTuneJob:
    job = make_job(owner, dataset)
    FineTuneJob.objects.filter(pk=job.pk).update(
        status=JobStatus.FAILED, error_code=code, error_message="It stopped."
    )
    return job


def test_an_out_of_memory_job_offers_a_smaller_clone_not_a_retry(alice, alice_client, routing):
    job = failed(alice, routing, "out_of_memory")
    html = alice_client.get(reverse("job-detail", args=[job.pk])).content.decode()
    assert 'role="alert"' in html
    assert "The job failed: it ran out of memory" in html
    clone = f'href="/jobs/new/?from={job.pk}" role="button" data-testid="failure-next-step">'
    assert clone + "Clone with a smaller batch</a>" in html
    assert 'data-testid="retry-job"' not in html
    # The reason comes before the progress card and the chart.
    assert html.index('id="job-error"') < html.index('id="job-progress"')


def test_an_unforeseen_failure_offers_a_retry(alice, alice_client, routing):
    job = failed(alice, routing, "training")
    html = alice_client.get(reverse("job-detail", args=[job.pk])).content.decode()
    assert ">Retry</button>" in html and 'data-testid="failure-next-step"' not in html


def test_the_parts_that_follow_the_status_come_alone_for_the_pages_script(
    alice, alice_client, bob_client, routing
):
    job = failed(alice, routing, "dataset")
    url = reverse("job-detail", args=[job.pk])
    html = alice_client.get(url, headers={"HX-Request": "true"}).content.decode()
    ids = ('id="job-outcome"', 'id="job-actions"', 'id="job-progress"', 'id="loss-chart-empty"',
           'id="job-panel"')  # fmt: skip
    assert [part for part in ids if part not in html] == []
    assert "<html" not in html and 'id="job-log"' not in html
    assert f'href="/datasets/{routing.pk}/" role="button" data-testid="failure-next-step"' in html
    assert bob_client.get(url, headers={"HX-Request": "true"}).status_code == 404
