"""In Chromium: every logged point moves every figure of the job page and
the job's row on the jobs list, without a reload, and they match the API
(issue 15). No worker: the test logs steps through the ledger as a worker
would. The page's clock is Playwright's and never steps over a resync, so
only the points' own messages can move the figures.
"""

import pytest
from django.template.defaultfilters import floatformat
from playwright.sync_api import expect

from jobs.models import FineTuneJob, JobStatus, MetricPoint
from jobs.services import ledger
from jobs.wizard import human_duration
from tests.builders import make_job, ready_sample
from tests.processes import log_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("demo_models"),
]

TOTAL = 75
FIGURES = ("#job-progress-percent", "#job-step", "#job-eta", "#job-elapsed", "#job-tps",
           "#job-train-loss", "#job-val-loss", "#job-best-val-loss")  # fmt: skip


def a_running_job(owner):
    """A job a worker has claimed and started (attempt 1, 75 steps)."""
    job = make_job(owner, ready_sample(owner))
    FineTuneJob.objects.filter(pk=job.pk).update(status=JobStatus.QUEUED)
    run = ledger.claim(job.pk, "train@browser")
    ledger.record_start(job.pk, run.attempt, total_steps=TOTAL, resumed_from_step=0)
    return job, run.attempt


def log_step(job, attempt: int, step: int, *, eta: float | None, loss: float | None = None,
             val_loss: float | None = None) -> None:  # fmt: skip
    """One logging step (or evaluation) as the trainer reports it: 1.7 s a step."""
    ledger.record_metric(job.pk, attempt, {
        "step": step, "epoch": step / TOTAL, "train_loss": loss, "val_loss": val_loss,
        "tokens_per_second": 1234.5 if loss is not None else None, "tokens": step * 512,
        "elapsed": step * 1.7, "eta": eta, "total_steps": TOTAL,
    })  # fmt: skip


def the_api(page, url: str, job) -> dict:
    response = page.request.get(f"{url}/api/v1/jobs/{job.pk}/")
    assert response.ok
    return response.json()


def expect_the_figures_of(page, api: dict, *, elapsed: float, time_left: float | None) -> None:
    expect(page.locator("#job-progress-percent")).to_have_text(f"{api['progress_percent']} %")
    expect(page.locator("#job-progress-bar")).to_have_js_property("value", api["progress_percent"])
    expect(page.get_by_test_id("job-step")).to_have_text(f"{api['current_step']:,}")
    expect(page.get_by_test_id("job-eta")).to_have_text(human_duration(time_left))
    expect(page.get_by_test_id("job-elapsed")).to_have_text(human_duration(elapsed))
    expect(page.locator("#job-train-loss")).to_have_text(floatformat(api["train_loss"], 4))
    expect(page.locator("#job-tps")).to_have_text(floatformat(api["tokens_per_second"], "0g"))


def test_every_logged_point_moves_every_figure_of_the_job_page_and_they_match_the_api(
    page, live_server_url, alice
):
    job, attempt = a_running_job(alice)
    page.clock.install()
    log_in(page, live_server_url, "alice")
    page.goto(f"{live_server_url}/jobs/{job.pk}/")
    expect(page.locator("#job-live")).to_have_attribute("data-live", "connected")
    expect(page.locator("#job-progress-percent")).to_have_text("0 %")
    expect(page.get_by_test_id("job-elapsed")).to_have_text("—")

    for step, eta, loss in ((10, 110.5, 3.5494), (16, 100.0, 3.25), (42, 56.1, 2.06251)):
        log_step(job, attempt, step, eta=eta, loss=loss)
        api = the_api(page, live_server_url, job)
        assert api["current_step"] == step and api["eta_seconds"] == eta
        expect_the_figures_of(page, api, elapsed=step * 1.7, time_left=eta)

    # An evaluation moves the validation loss and its best.
    log_step(job, attempt, 42, eta=56.0, val_loss=1.98765)
    api = the_api(page, live_server_url, job)
    expect(page.locator("#job-val-loss")).to_have_text(floatformat(api["val_loss"], 4))
    expect(page.locator("#job-best-val-loss")).to_have_text(
        "best " + floatformat(api["best_val_loss"], 4)
    )
    expect(page.get_by_test_id("job-elapsed")).to_have_text(human_duration(42 * 1.7))

    # Without the worker's estimate the time left is the measured rate's:
    # 1.7 s a step for the 15 steps left.
    log_step(job, attempt, 60, eta=None, loss=1.5)
    api = the_api(page, live_server_url, job)
    assert api["eta_seconds"] is None and api["progress_percent"] == 80
    expect_the_figures_of(page, api, elapsed=60 * 1.7, time_left=15 * 1.7)

    # On reload the server renders what the live script showed.
    assert MetricPoint.objects.filter(job=job).count() == 5
    live = {name: page.locator(name).text_content() for name in FIGURES}
    page.reload()
    expect(page.locator("#job-live")).to_have_attribute("data-live", "connected")
    assert {name: page.locator(name).text_content() for name in FIGURES} == live


def test_every_logged_point_moves_the_jobs_row_on_the_jobs_list(page, live_server_url, alice):
    job, attempt = a_running_job(alice)
    page.clock.install()
    log_in(page, live_server_url, "alice")
    page.goto(f"{live_server_url}/jobs/")
    expect(page.locator("#jobs-table")).to_have_attribute("data-live", "connected")
    row = page.locator(f"#job-{job.pk}")
    for step, loss in ((10, 3.5), (33, 2.75)):
        log_step(job, attempt, step, eta=60.0, loss=loss)
        api = the_api(page, live_server_url, job)
        expect(row.locator('[data-field="step"]')).to_have_text(f"{api['current_step']:,}")
        expect(row.locator('[data-field="progress"]')).to_have_js_property(
            "value", api["progress_percent"]
        )
        expect(row.locator('[data-field="train-loss"]')).to_have_text(
            floatformat(api["train_loss"], 4)
        )
