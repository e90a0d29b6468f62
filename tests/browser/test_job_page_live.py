"""In Chromium: a job's page follows its status while it is open. Every
sentence says the current status (no "queued for a training worker" on a
running job, no "Cancelling…" on a cancelled one); Cancel is a secondary
button and Open in playground the primary one once finished; a finished job
says how long it took; the loss chart has integer step ticks, a legend that
shows the latest values at rest, and a name that says what it shows. No
worker: the test writes rows as the ledger would (jobs/services/ledger.py).
"""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from jobs.models import FineTuneJob, JobStatus
from jobs.services import ledger
from jobs.services.artifacts import ADAPTER_ZIP
from jobs.status_sentences import STATUS_SENTENCES
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


def start(job) -> int:
    """A worker claims the queued job and starts it (75 steps); its attempt."""
    run = ledger.claim(job.pk, "train@browser")
    ledger.record_start(job.pk, run.attempt, total_steps=TOTAL, resumed_from_step=0)
    return run.attempt


def a_running_job(owner):
    job = make_job(owner, ready_sample(owner))
    FineTuneJob.objects.filter(pk=job.pk).update(status=JobStatus.QUEUED)
    return job, start(job)


def log_step(job, attempt: int, step: int, loss: float) -> None:
    ledger.record_metric(job.pk, attempt, {
        "step": step, "epoch": step / TOTAL, "train_loss": loss, "val_loss": None,
        "tokens_per_second": 1234.5, "tokens": step * 512, "elapsed": step * 1.7,
        "eta": (TOTAL - step) * 1.7, "total_steps": TOTAL,
    })  # fmt: skip


@pytest.mark.usefixtures("no_training_worker")
def test_every_status_sentence_follows_the_live_status_from_queued_to_cancelled(
    page, live_server_url, alice
):
    dataset = ready_sample(alice)
    log_in(page, live_server_url, "alice")
    page.goto(f"{live_server_url}/jobs/new/?dataset={dataset.pk}")
    page.get_by_test_id("model-tailor-tiny").click()
    page.get_by_test_id("preset-quick").click()
    expect(page.get_by_test_id("estimate-steps")).to_have_text("75")
    page.get_by_role("button", name="Start training").click()
    expect(page).to_have_url(re.compile(r"/jobs/[0-9a-f-]{36}/$"))
    job = FineTuneJob.objects.get(pk=page.url.rstrip("/").rsplit("/", 1)[-1])
    main = page.locator("main")
    sentence = page.get_by_test_id("job-status-sentence")
    expect(main).to_contain_text("is queued for a training worker.")
    # (Where it stands in the queue may follow: "Queued: 2nd in line; …".)
    expect(sentence).to_have_text(re.compile(r"^Queued: "))
    expect(page.locator("#job-live")).to_have_attribute("data-live", "connected")

    attempt = start(job)
    expect(page.get_by_test_id("job-status")).to_have_text("Running")
    expect(sentence).to_have_text(STATUS_SENTENCES["running"])
    expect(main).not_to_contain_text("queued for a training worker")
    # Cancel is there, but not the heaviest button: an outline.
    cancel = page.get_by_test_id("cancel-job")
    expect(cancel).to_have_class(re.compile(r"\boutline\b"))

    page.once("dialog", lambda dialog: dialog.accept())
    cancel.click()
    expect(page.get_by_test_id("job-status")).to_have_text("Cancelling")
    expect(sentence).to_have_text(STATUS_SENTENCES["cancelling"])
    expect(page.locator("#job-live")).to_have_attribute("data-live", "connected")

    ledger.finish_cancelled(job.pk, attempt, step=0)
    expect(page.get_by_test_id("job-status")).to_have_text("Cancelled")
    expect(sentence).to_have_text(STATUS_SENTENCES["cancelled"])
    expect(main).not_to_contain_text("Cancelling")
    expect(page.get_by_test_id("cancel-job")).to_have_count(0)
    expect(page.locator("#loss-chart-empty")).to_have_text(
        "No loss was logged: the job was cancelled before its first logged step."
    )


def test_a_job_that_finishes_live_says_how_long_it_took_and_offers_the_playground_first(
    page, live_server_url, alice
):
    job, attempt = a_running_job(alice)
    log_in(page, live_server_url, "alice")
    page.goto(f"{live_server_url}/jobs/{job.pk}/")
    expect(page.locator("#job-live")).to_have_attribute("data-live", "connected")
    estimate = human_duration(job.estimate["seconds"])
    expect(page.get_by_test_id("job-estimate")).to_have_text(f"estimated {estimate} in all")
    log_step(job, attempt, 75, 1.5)

    # It began 4 min 50 s ago (its claim), and ends now.
    began = timezone.now() - timedelta(seconds=290)
    FineTuneJob.objects.filter(pk=job.pk).update(started_at=began)
    adapter = job.folder / "adapter"
    adapter.mkdir(parents=True, exist_ok=True)
    (job.folder / ADAPTER_ZIP).write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip
    ledger.finish_succeeded(
        job.pk, attempt, metrics={"train_loss": 1.5, "steps": TOTAL}, adapter_path=str(adapter),
        adapter_bytes=22, trained_tokens=38_400, final_step=TOTAL,
    )  # fmt: skip

    expect(page.get_by_test_id("job-status")).to_have_text("Succeeded")
    took = page.get_by_test_id("job-took")
    expect(took).to_have_text(re.compile(r"^4 min (5\d) s$"))
    expect(page.locator("#job-progress")).to_contain_text("Took")
    expect(page.get_by_test_id("job-estimate")).to_have_text(
        re.compile(rf"^estimated {estimate} · (rough guess|from )")
    )
    expect(page.locator("#job-progress")).not_to_contain_text("Time left")
    expect(page.get_by_test_id("job-eta")).to_have_count(0)
    # Open in playground is the primary action; the rest are outlines.
    playground = page.get_by_test_id("open-playground")
    expect(playground).to_be_visible()
    assert "outline" not in (playground.get_attribute("class") or "")
    expect(page.get_by_test_id("download-adapter")).to_have_class(re.compile(r"\boutline\b"))
    expect(page.get_by_test_id("cancel-job")).to_have_count(0)
    expect(page.get_by_test_id("job-status-sentence")).to_have_text(STATUS_SENTENCES["succeeded"])

    # A reload renders the same.
    live_took = took.text_content()
    page.reload()
    expect(page.get_by_test_id("job-took")).to_have_text(live_took)
    expect(page.get_by_test_id("job-estimate")).to_have_text(
        re.compile(rf"^estimated {estimate} · (rough guess|from )")
    )


def test_the_loss_chart_has_whole_step_ticks_a_legend_at_rest_and_a_name(
    page, live_server_url, alice
):
    job, attempt = a_running_job(alice)
    for step, loss in ((1, 3.5), (2, 2.25)):
        log_step(job, attempt, step, loss)
    log_in(page, live_server_url, "alice")
    page.goto(f"{live_server_url}/jobs/{job.pk}/")
    chart = page.get_by_test_id("loss-chart")
    expect(chart).to_have_attribute("data-points", "2")
    expect(
        page.get_by_role(
            "img", name="Loss chart: training loss from 3.5000 to 2.2500 over steps 1 to 2 of 75."
        )
    ).to_be_visible()
    # Two steps apart by one: uPlot's own ticks would be 1, 1.2, 1.4 …
    ticks = chart.get_attribute("data-step-ticks").split()
    assert ticks and all(re.fullmatch(r"\d[\d,]*", tick) for tick in ticks), ticks
    # At rest the legend shows the latest values, not "--".
    values = chart.locator(".u-legend .u-value")
    expect(values).to_have_text(["2", "2.2500", "—"])

    # A point logged live moves the name and the legend.
    log_step(job, attempt, 3, 1.125)
    expect(chart).to_have_attribute("data-points", "3")
    expect(chart).to_have_attribute(
        "aria-label", "Loss chart: training loss from 3.5000 to 1.1250 over steps 1 to 3 of 75."
    )
    expect(values).to_have_text(["3", "1.1250", "—"])
    ticks = chart.get_attribute("data-step-ticks").split()
    assert all(re.fullmatch(r"\d[\d,]*", tick) for tick in ticks), ticks

    # Under the cursor the legend shows that step; away from the chart, the latest again.
    # (In view first: the mouse hovers only what the viewport shows.)
    chart.scroll_into_view_if_needed()
    box = chart.locator(".u-over").bounding_box()
    page.mouse.move(box["x"] + 2, box["y"] + box["height"] / 2)
    expect(values.first).to_have_text("1")
    page.mouse.move(0, 0)
    expect(values).to_have_text(["3", "1.1250", "—"])
