"""In Chromium: a failed job's page says why first, at the top, with the step
that helps, and offers Retry only where a retry can help; a failure that
arrives while the page is open shows without a reload. No worker: the test
writes rows as the ledger would (jobs/services/ledger.py).
"""

import re

import pytest
from playwright.sync_api import expect

from jobs.failures import next_step
from jobs.models import FineTuneJob, JobStatus
from jobs.services import ledger
from jobs.training.loop import OUT_OF_MEMORY
from tests.builders import make_job, ready_sample
from tests.processes import fits_the_screen, log_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("demo_models"),
]


def a_running_job(owner):
    """A job a worker has claimed and started (attempt 1, 75 steps)."""
    job = make_job(owner, ready_sample(owner))
    FineTuneJob.objects.filter(pk=job.pk).update(status=JobStatus.QUEUED)
    run = ledger.claim(job.pk, "train@browser")
    ledger.record_start(job.pk, run.attempt, total_steps=75, resumed_from_step=0)
    return job, run.attempt


def test_a_failure_that_arrives_live_comes_first_with_its_next_step_and_no_retry(
    page, live_server_url, alice
):
    job, attempt = a_running_job(alice)
    log_in(page, live_server_url, "alice")
    page.goto(f"{live_server_url}/jobs/{job.pk}/")
    expect(page.locator("#job-live")).to_have_attribute("data-live", "connected")
    expect(page.locator("#loss-chart-empty")).to_have_text(
        "Points appear here as the worker logs them."
    )

    ledger.finish_failed(
        job.pk, attempt, code="out_of_memory", message=OUT_OF_MEMORY, traceback="Traceback …"
    )

    # No reload: the summary's status brings the failure, above everything else.
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("The job failed: it ran out of memory")
    expect(alert).to_contain_text(OUT_OF_MEMORY)
    expect(alert).to_contain_text("What to do next: " + next_step("out_of_memory").advice)
    progress = page.locator("#job-progress").bounding_box()
    assert alert.bounding_box()["y"] + alert.bounding_box()["height"] <= progress["y"]
    expect(page.get_by_test_id("job-status")).to_have_text("Failed")
    expect(page.get_by_test_id("job-status-sentence")).to_have_text(
        "Failed: the reason and what to do next are just below."
    )
    # The next step is a smaller run, not the same one again.
    next_link = alert.get_by_test_id("failure-next-step")
    expect(next_link).to_have_text("Clone with a smaller batch")
    expect(next_link).to_have_attribute("href", f"/jobs/new/?from={job.pk}")
    expect(page.get_by_role("button", name="Retry")).to_have_count(0)
    expect(page.get_by_role("button", name="Cancel")).to_have_count(0)
    # The empty chart says why it is empty.
    expect(page.locator("#loss-chart-empty")).to_have_text(
        "No loss was logged: the job failed before its first logged step."
    )
    expect(page.get_by_test_id("loss-chart")).to_be_hidden()

    # A reload renders the same.
    page.reload()
    expect(page.get_by_role("alert")).to_contain_text("The job failed: it ran out of memory")
    expect(page.get_by_role("button", name="Retry")).to_have_count(0)
    expect(page.get_by_test_id("failure-next-step")).to_have_text("Clone with a smaller batch")


@pytest.mark.parametrize(
    ("code", "next_label", "href"),
    [
        ("dataset", "Open the dataset", "/datasets/{dataset}/"),
        ("model_load", "Choose a ready model", "/models/"),
    ],
)
def test_a_failure_a_retry_would_repeat_offers_its_next_step_instead(
    phone, live_server_url, alice, code, next_label, href
):
    job = make_job(alice, ready_sample(alice))
    FineTuneJob.objects.filter(pk=job.pk).update(
        status=JobStatus.FAILED, error_code=code, error_message="It could not go on."
    )
    log_in(phone, live_server_url, "alice")
    phone.goto(f"{live_server_url}/jobs/{job.pk}/")
    alert = phone.get_by_role("alert")
    expect(alert).to_contain_text(next_step(code).advice)
    link = alert.get_by_test_id("failure-next-step")
    expect(link).to_have_text(next_label)
    expect(link).to_have_attribute("href", href.format(dataset=job.dataset_id))
    expect(phone.get_by_role("button", name="Retry")).to_have_count(0)
    assert fits_the_screen(phone)


@pytest.mark.usefixtures("no_training_worker")
def test_a_lost_worker_offers_resume_and_retry_for_they_can_help(page, live_server_url, alice):
    job = make_job(alice, ready_sample(alice))
    FineTuneJob.objects.filter(pk=job.pk).update(
        status=JobStatus.FAILED, attempt=3, max_attempts=3, error_code="worker_lost",
        error_message="The training worker was lost on every attempt (3 of 3).",
    )  # fmt: skip
    log_in(page, live_server_url, "alice")
    page.goto(f"{live_server_url}/jobs/{job.pk}/")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("The job failed: its training worker was lost")
    expect(alert.get_by_role("button", name="Resume")).to_be_visible()
    expect(alert.get_by_role("button", name="Retry")).to_be_visible()
    alert.get_by_role("button", name="Retry").click()
    expect(page).to_have_url(re.compile(r"/jobs/[0-9a-f-]{36}/$"))
    assert page.url != f"{live_server_url}/jobs/{job.pk}/"
    expect(page.get_by_test_id("job-status")).to_have_text("Queued")
