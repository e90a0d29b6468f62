"""In Chromium: the home page is the analyst's, and changes with their work:
the next step, running jobs moving live, recent results with their headline
figure, datasets waiting for a job; nothing of anyone else's. No worker: the
rows are written as the services and the ledger would leave them."""

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from jobs.models import FineTuneJob, JobStatus
from jobs.services import ledger
from serving.models import Evaluation
from tests.builders import make_job, ready_sample
from tests.processes import fits_the_screen, log_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("demo_models"),
]


def a_running_job(owner, dataset, name: str):
    job = make_job(owner, dataset, name=name)
    FineTuneJob.objects.filter(pk=job.pk).update(status=JobStatus.QUEUED)
    run = ledger.claim(job.pk, "train@home")
    ledger.record_start(job.pk, run.attempt, total_steps=40, resumed_from_step=0)
    return job, run.attempt


def log_step(job, attempt: int, step: int, loss: float) -> None:
    ledger.record_metric(job.pk, attempt, {
        "step": step, "epoch": step / 40, "train_loss": loss, "val_loss": None,
        "tokens_per_second": 800.0, "tokens": step * 256, "elapsed": step * 1.5,
        "eta": (40 - step) * 1.5, "total_steps": 40,
    })  # fmt: skip


def an_evaluated_success(owner, dataset, name: str) -> FineTuneJob:
    job = make_job(owner, dataset, name=name)
    FineTuneJob.objects.filter(pk=job.pk).update(
        status=JobStatus.SUCCEEDED, current_step=40, train_loss=1.2, finished_at=timezone.now()
    )
    Evaluation.objects.create(
        job=job, trigger="automatic", sample_size=20, status="succeeded",
        finished_at=timezone.now(),
        results={"base": {"exact_match": 0.05, "rouge_l": 0.2},
                 "fine_tuned": {"exact_match": 0.85, "rouge_l": 0.9}, "rows": 20},
    )  # fmt: skip
    return job


def test_the_home_page_follows_the_analysts_work(page, live_server_url, alice, bob):
    log_in(page, live_server_url, "alice")
    next_step = page.get_by_test_id("next-step")
    expect(next_step).to_contain_text("Start with a dataset")
    expect(page.get_by_role("heading", name="How it works")).to_be_visible()

    waiting = ready_sample(alice)
    ready_sample(bob)  # bob's: never on alice's home
    page.reload()
    expect(next_step).to_contain_text(f"“{waiting.name}” is checked and ready")
    expect(page.get_by_test_id("waiting-datasets").get_by_role("listitem")).to_have_count(1)
    next_step.get_by_role("button", name="New job").click()
    expect(page).to_have_url(f"{live_server_url}/jobs/new/?dataset={waiting.pk}")

    other = ready_sample(alice)
    an_evaluated_success(alice, other, "Sentiment, quick")
    job, attempt = a_running_job(alice, waiting, "Routing, quick")
    page.goto(f"{live_server_url}/")
    expect(page.get_by_role("heading", name="How it works")).to_have_count(0)
    # Both datasets now have a job: none waits.
    expect(page.get_by_test_id("waiting-datasets")).to_have_count(0)
    result = page.get_by_test_id("recent-results").get_by_role("listitem")
    expect(result).to_contain_text("Sentiment, quick")
    expect(result).to_contain_text("Exact match 85.0 %")
    expect(result).to_contain_text("base 5.0 %")
    expect(next_step).to_contain_text("“Routing, quick” is running")

    # The running job's row moves with every logged step, without a reload.
    row = page.locator(f"#job-{job.pk}")
    expect(page.locator("#jobs-table")).to_have_attribute("data-live", "connected")
    for step in (4, 10):
        log_step(job, attempt, step, 3.0 - step / 10)
        expect(row.locator('[data-field="step"]')).to_have_text(str(step))
        expect(row.locator('[data-field="progress"]')).to_have_js_property(
            "value", round(100 * step / 40)
        )
    expect(row.locator('[data-field="train-loss"]')).to_have_text("2.0000")


def test_the_home_page_fits_a_phone(phone, live_server_url, alice):
    dataset = ready_sample(alice)
    a_running_job(alice, dataset, "A run with a rather long name for a small screen")
    an_evaluated_success(alice, ready_sample(alice), "Sentiment, quick")
    log_in(phone, live_server_url, "alice")
    expect(phone.get_by_test_id("running-jobs")).to_be_visible()
    expect(phone.get_by_test_id("recent-results")).to_be_visible()
    assert fits_the_screen(phone)
