"""In Chromium: the job page and the jobs list converge on the database when
live messages were lost (fault test 16): a resume's rewind, points, the
final summary. No worker: the test writes rows as the ledger would and sends
only the messages it chooses. The page's clock is Playwright's, so its 10 s
resync is stepped over rather than waited for.
"""

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from jobs.models import FineTuneJob, JobStatus, MetricPoint
from jobs.services import live
from tests.builders import make_job, ready_sample
from tests.processes import log_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("demo_models"),
]

RESYNC_MS = 10_000  # data-resync-seconds on the job page and the jobs list


def store(job, attempt: int, steps, kind: str = "train") -> MetricPoint:
    for step in steps:
        loss = 5.0 - step / 10 - attempt
        point = MetricPoint.objects.create(
            job=job, attempt=attempt, step=step, kind=kind, epoch=step / 75,
            train_loss=loss if kind == "train" else None,
            val_loss=loss if kind == "eval" else None, tokens=step * 100,
        )  # fmt: skip
    return point


def running_job(owner):
    """A job whose first attempt has logged steps 1-10."""
    job = make_job(owner, ready_sample(owner))
    FineTuneJob.objects.filter(pk=job.pk).update(
        status=JobStatus.RUNNING, attempt=1, current_step=10, started_at=timezone.now()
    )
    store(job, 1, range(1, 11))
    return FineTuneJob.objects.get(pk=job.pk)


def held_points(page) -> str:
    return page.locator("#loss-chart").get_attribute("data-points")


def test_the_job_page_converges_after_a_lost_rewind_and_a_lost_final_summary(
    page, live_server_url, alice
):
    job = running_job(alice)
    page.clock.install()
    log_in(page, live_server_url, "alice")
    page.goto(f"{live_server_url}/jobs/{job.pk}/")
    expect(page.locator("#job-live")).to_have_attribute("data-live", "connected")
    expect(page.locator("#loss-chart")).to_have_attribute("data-points", "10")
    expect(page.get_by_test_id("job-status")).to_have_text("Running")

    # Attempt 2 resumed from step 4's checkpoint; its rewind was lost, and
    # only its point of step 7 reaches the page. A point from a newer attempt
    # makes the page ask with its old cursor: the answer rewinds to step 4.
    MetricPoint.objects.filter(job=job, attempt=1, step__gt=4).delete()
    point = store(job, 2, (5, 6, 7))
    FineTuneJob.objects.filter(pk=job.pk).update(attempt=2, current_step=7)
    live.publish_metric(job.pk, live.metric_payload(point, job.total_steps)).result(5)
    expect(page.locator("#loss-chart")).to_have_attribute("data-points", "7")

    # Steps 8-12, the evaluation at 12 and the final summary are all lost.
    store(job, 2, range(8, 13))
    store(job, 2, (12,), "eval")
    FineTuneJob.objects.filter(pk=job.pk).update(
        status=JobStatus.SUCCEEDED, current_step=12, train_loss=2.5, val_loss=0.75,
        best_val_loss=0.75, tokens_per_second=1234.0, finished_at=timezone.now(),
    )  # fmt: skip
    page.clock.fast_forward(RESYNC_MS)
    expect(page.get_by_test_id("job-status")).to_have_text("Succeeded")
    expect(page.locator("#loss-chart")).to_have_attribute("data-points", "13")
    expect(page.get_by_test_id("job-step")).to_have_text("12")
    expect(page.locator("#job-progress-percent")).to_have_text("100 %")
    expect(page.locator("#job-train-loss")).to_have_text("2.5000")
    expect(page.locator("#job-val-loss")).to_have_text("0.7500")
    expect(page.locator("#job-best-val-loss")).to_have_text("best 0.7500")
    expect(page.locator("#job-tps")).to_have_text("1,234")
    assert MetricPoint.objects.filter(job=job).count() == 13

    # The job is over: the page stops asking.
    synced = page.locator("#job-live").get_attribute("data-synced")
    page.clock.fast_forward(3 * RESYNC_MS)
    page.wait_for_timeout(500)
    assert page.locator("#job-live").get_attribute("data-synced") == synced


def test_the_jobs_list_row_of_a_job_whose_summary_was_lost_catches_up(page, live_server_url, alice):
    job = running_job(alice)
    page.clock.install()
    log_in(page, live_server_url, "alice")
    page.goto(f"{live_server_url}/jobs/")
    row = page.locator(f"#job-{job.pk}")
    expect(page.locator("#jobs-table")).to_have_attribute("data-live", "connected")
    expect(row.locator("[data-status-badge]")).to_have_text("Running")

    FineTuneJob.objects.filter(pk=job.pk).update(
        status=JobStatus.SUCCEEDED, current_step=75, train_loss=0.5
    )
    page.clock.fast_forward(RESYNC_MS)
    expect(row.locator("[data-status-badge]")).to_have_text("Succeeded")
    expect(row.locator('[data-field="step"]')).to_have_text("75")
    expect(row.locator('[data-field="train-loss"]')).to_have_text("0.5000")
    expect(row).to_have_attribute("data-status", "succeeded")


def test_bob_cannot_watch_alices_job_page(page, live_server_url, alice, bob):
    job = running_job(alice)
    log_in(page, live_server_url, "bob")
    response = page.goto(f"{live_server_url}/jobs/{job.pk}/")
    assert response.status == 404
