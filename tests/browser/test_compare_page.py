"""In Chromium: two jobs that differ in their learning rate, ticked on the jobs
list with the keyboard and compared on a phone; a running job's curve grows
on the Compare page as its points are logged. No worker: the points are
stored as a run logs them (jobs/services/ledger.py)."""

import re

import pytest
from playwright.sync_api import expect

from jobs.models import FineTuneJob, JobStatus
from jobs.services import ledger
from tests.builders import finished_job, log_losses, make_job, ready_sample
from tests.processes import fits_the_screen, log_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("demo_models"),
]


def test_two_runs_compared_from_the_list_on_a_phone(phone, live_server_url, alice):
    dataset = ready_sample(alice)
    for name, rate, losses in (("Slow", 0.0002, (2.0, 1.6)), ("Fast", 0.002, (1.8, 1.0))):
        job = finished_job(alice, dataset, name=name, training={"learning_rate": rate})
        log_losses(job, {10: losses[0], 20: losses[1]}, {20: losses[1] + 0.1})
        FineTuneJob.objects.filter(pk=job.pk).update(
            final_metrics={"train_loss": losses[1], "val_loss": losses[1] + 0.1}
        )
    refused: list[str] = []
    phone.on("console", lambda m: refused.append(m.text) if "Refused" in m.text else None)

    log_in(phone, live_server_url, "alice")
    phone.goto(f"{live_server_url}/jobs/")
    for name in ("Slow", "Fast"):
        box = phone.get_by_label(f"Compare {name}")
        box.focus()
        phone.keyboard.press("Space")
        expect(box).to_be_checked()
    phone.get_by_test_id("compare-jobs").focus()
    phone.keyboard.press("Enter")

    expect(phone.get_by_role("heading", name="Compare runs")).to_be_visible()
    expect(phone.get_by_test_id("legend-entry")).to_have_count(2)
    chart = phone.get_by_test_id("compare-chart")
    # Both runs' curves drawn: 2 training and 1 validation point each.
    expect(chart.locator("canvas")).to_have_count(1)
    expect(chart).to_have_attribute("data-points", "6")
    expect(chart).to_have_attribute("data-x-ticks", re.compile(r"^[\d ]+$"))
    expect(chart).to_have_attribute(
        "aria-label",
        re.compile(
            r"^Loss of each run across step\. .*Slow: 2 training points, last training loss 1\.6000 at step 20"
        ),
    )
    # Across tokens seen, on a log scale, with the keyboard: the address keeps the view.
    phone.get_by_label("Tokens seen").focus()
    phone.keyboard.press("Space")
    expect(chart).to_have_attribute("data-x", "tokens")
    expect(chart).to_have_attribute("data-x-ticks", re.compile(r"1,\d00"))
    phone.get_by_label("Log scale").focus()
    phone.keyboard.press("Space")
    expect(chart).to_have_attribute("data-log", "1")
    assert "x=tokens" in phone.url and "log=1" in phone.url
    rate = phone.locator("#compare-config tr.differs[data-field='training.learning_rate']")
    expect(rate).to_be_visible()
    # Highlighted: the row's cells have the differences' tint, not the page's.
    tint = rate.locator("td").first.evaluate("cell => getComputedStyle(cell).backgroundColor")
    assert tint == "rgb(255, 246, 214)"
    expect(phone.locator("#compare-figures td.best")).to_have_count(2)
    assert fits_the_screen(phone)
    assert not refused, refused


TOTAL = 40


def test_a_running_jobs_curve_grows_on_the_compare_page(page, live_server_url, alice):
    dataset = ready_sample(alice)
    done = finished_job(alice, dataset, name="Done", training={"learning_rate": 0.0002})
    log_losses(done, {10: 2.0, 20: 1.5}, {20: 1.6})
    running = make_job(alice, dataset, name="Running", training={"learning_rate": 0.002})
    FineTuneJob.objects.filter(pk=running.pk).update(status=JobStatus.QUEUED)
    attempt = ledger.claim(running.pk, "train@browser").attempt
    ledger.record_start(running.pk, attempt, total_steps=TOTAL, resumed_from_step=0)

    def log_step(step: int, loss: float) -> None:
        ledger.record_metric(running.pk, attempt, {
            "step": step, "epoch": step / TOTAL, "train_loss": loss, "val_loss": None,
            "tokens_per_second": 900.0, "tokens": step * 100, "elapsed": step * 1.5,
            "eta": (TOTAL - step) * 1.5, "total_steps": TOTAL,
        })  # fmt: skip

    log_step(10, 1.9)
    log_in(page, live_server_url, "alice")
    page.goto(f"{live_server_url}/jobs/compare/?ids={done.pk},{running.pk}")
    chart = page.get_by_test_id("compare-chart")
    expect(chart).to_have_attribute("data-points", "4")
    expect(chart).to_have_attribute("data-live", "1")
    for step, loss in ((20, 1.4), (30, 1.1)):
        log_step(step, loss)
    expect(chart).to_have_attribute("data-points", "6")
    expect(chart).to_have_attribute(
        "aria-label",
        re.compile(r"Running: 3 training points, last training loss 1\.1000 at step 30"),
    )
    expect(page.locator(f'[data-points-of="{running.pk}"]')).to_have_text(
        "3 training, 0 validation points"
    )
