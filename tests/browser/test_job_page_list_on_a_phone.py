"""In Chromium, 390 px wide (a phone): the jobs list fits the screen, each
job a card whose figures are all on screen and readable, with no sideways
scrolling of the page (at 1280 px it stays a table)."""

import pytest
from playwright.sync_api import expect

from jobs.models import FineTuneJob, JobStatus
from tests.builders import make_job, ready_sample
from tests.processes import fits_the_screen, log_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("demo_models"),
]


def some_jobs(owner) -> list[FineTuneJob]:
    dataset = ready_sample(owner)
    running = make_job(owner, dataset, name="Support routing with a rather long name, take two")
    FineTuneJob.objects.filter(pk=running.pk).update(
        status=JobStatus.RUNNING, current_step=1234, total_steps=12345, train_loss=1.23456
    )
    failed = make_job(owner, dataset, name="routing-oom")
    FineTuneJob.objects.filter(pk=failed.pk).update(
        status=JobStatus.FAILED, current_step=17, total_steps=75, train_loss=2.5,
        error_code="out_of_memory",
    )  # fmt: skip
    return [running, failed, make_job(owner, dataset, name="routing-new")]


def test_the_jobs_list_is_cards_that_fit_a_phone(phone, live_server_url, alice):
    running, *_ = some_jobs(alice)
    log_in(phone, live_server_url, "alice")
    phone.goto(f"{live_server_url}/jobs/")
    expect(phone.locator("#jobs-table")).to_have_attribute("data-live", "connected")
    assert fits_the_screen(phone)

    width = phone.viewport_size["width"]
    row = phone.locator(f"#job-{running.pk}")
    for field, text in (("step", "1,234"), ("total", "12,345"), ("train-loss", "1.2346")):
        figure = row.locator(f'[data-field="{field}"]')
        expect(figure).to_have_text(text)
        box = figure.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= width, (field, box)
        # Not cut off: the whole figure is drawn.
        assert figure.evaluate("node => node.scrollWidth <= node.clientWidth + 1"), field
    # Each figure is under its label, read from the table's header.
    expect(row.locator('[data-label="Train loss"]')).to_be_visible()
    label = row.locator('[data-label="Train loss"]').evaluate(
        "node => getComputedStyle(node, '::before').content"
    )
    assert label == '"Train loss"'
    for name in ("Support routing with a rather long name, take two", "routing-oom"):
        link = phone.get_by_role("link", name=name)
        box = link.bounding_box()
        assert box["x"] + box["width"] <= width, (name, box)


def test_the_jobs_list_stays_a_table_on_a_laptop(page, live_server_url, alice):
    some_jobs(alice)
    log_in(page, live_server_url, "alice")
    page.goto(f"{live_server_url}/jobs/")
    expect(page.get_by_role("columnheader", name="Train loss")).to_be_visible()
    assert (
        page.locator("#jobs-table tr").first.evaluate("node => getComputedStyle(node).display")
        == "table-row"
    )
    assert fits_the_screen(page)
