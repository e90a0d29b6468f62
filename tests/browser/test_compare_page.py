"""In Chromium, on a phone: two jobs that differ in their learning rate, ticked
on the jobs list with the keyboard and compared. No worker: the points are
stored as a run logs them."""

import pytest
from playwright.sync_api import expect

from jobs.models import FineTuneJob
from tests.builders import finished_job, log_losses, ready_sample
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
    expect(phone.locator("svg.compare-chart polyline")).to_have_count(4)
    rate = phone.locator("#compare-config tr.differs[data-field='training.learning_rate']")
    expect(rate).to_be_visible()
    # Highlighted: the row's cells have the differences' tint, not the page's.
    tint = rate.locator("td").first.evaluate("cell => getComputedStyle(cell).backgroundColor")
    assert tint == "rgb(255, 246, 214)"
    expect(phone.locator("#compare-figures td.best")).to_have_count(2)
    assert fits_the_screen(phone)
    assert not refused, refused
