"""In Chromium, 390 px wide (a phone): a finished job's page, its Finished
card and its evaluation, fit the screen, and each figure sits under its label
on one line. No worker: the rows are written as the ledger would leave them."""

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from jobs.models import FineTuneJob, JobStatus
from serving.models import Evaluation
from tests.builders import make_job, ready_sample
from tests.processes import fits_the_screen, log_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("demo_models"),
]

# The training loop's `_metrics` of a real run.
FINAL_METRICS = {
    "train_loss": 1.8369140625, "mean_train_loss": 2.753436279296875, "val_loss": 1.9021,
    "best_val_loss": 1.8876, "runtime_seconds": 294.21, "steps": 75,
    "trained_tokens": 54692, "tokens_per_second": 185.9,
}  # fmt: skip


def finished_job_with_an_evaluation(owner) -> FineTuneJob:
    job = make_job(owner, ready_sample(owner), name="Routing, quick")
    FineTuneJob.objects.filter(pk=job.pk).update(
        status=JobStatus.SUCCEEDED, adapter_path=str(job.folder / "adapter"),
        current_step=75, train_loss=1.84, val_loss=1.9, finished_at=timezone.now(),
        final_metrics=FINAL_METRICS, trained_tokens=54692,
    )  # fmt: skip
    Evaluation.objects.create(
        job=job, trigger="automatic", sample_size=50, status="succeeded",
        finished_at=timezone.now(),
        results={
            "base": {"exact_match": 0.02, "rouge_l": 0.2134, "val_loss": 6.2113,
                     "perplexity": 498.1234},
            "fine_tuned": {"exact_match": 0.9, "rouge_l": 0.9312, "val_loss": 0.4021,
                           "perplexity": 1.4949},
            "rows": 10050, "sample_size": 50,
            "samples": [{"prompt": "Where is my sofa?", "reference": "shipping",
                         "base": "the the", "fine_tuned": "shipping",
                         "base_exact": False, "fine_tuned_exact": True}],
        },
    )  # fmt: skip
    return job


def test_a_finished_jobs_cards_fit_a_phone(phone, live_server_url, alice):
    job = finished_job_with_an_evaluation(alice)
    log_in(phone, live_server_url, "alice")
    phone.goto(f"{live_server_url}/jobs/{job.pk}/")
    evaluation = phone.get_by_test_id("job-evaluation")
    expect(evaluation.get_by_test_id("evaluation-table")).to_be_visible()

    runtime = phone.locator('#job-results [data-metric="runtime_seconds"]')
    expect(runtime).to_have_text("Runtime4 min 54 s")  # two elements, read as one text
    label, value = runtime.locator("span"), runtime.locator("strong")
    # The label is above its value, and the value is one line.
    assert label.bounding_box()["y"] + label.bounding_box()["height"] <= value.bounding_box()["y"]
    line = value.evaluate("node => parseFloat(getComputedStyle(node).lineHeight)")
    assert value.bounding_box()["height"] < 1.5 * line
    expect(phone.locator('#job-results [data-metric="trained_tokens"] strong')).to_have_text(
        "54,692"
    )
    expect(evaluation.get_by_test_id("evaluation-rows")).to_have_text("10,050")
    expect(evaluation.get_by_test_id("evaluation-rows-note")).to_have_text(
        "50 of them generated from, per model"
    )
    expect(evaluation.get_by_test_id("evaluation-tuned-headline")).to_have_text("90.0 %")
    # The table of figures fits too: its Change column is seen without scrolling.
    table = evaluation.get_by_test_id("evaluation-table")
    assert table.evaluate("node => node.scrollWidth <= node.parentElement.clientWidth")
    expect(table.locator('[data-metric="exact_match"] td').last).to_have_text("+88.0 pts")

    assert fits_the_screen(phone)
