"""In Chromium, an operator (staff, not a superuser) keeps /ops/ open: two
users' jobs queued and running, the real workers with their heartbeats and
the job one runs (from the ledger), the storage survey the maintenance
worker took; a job queued meanwhile appears without a reload. At 390 px
nothing scrolls sideways. An analyst has no link to it and gets a 404."""

import itertools

import pytest
from playwright.sync_api import expect

from jobs.models import FineTuneJob, JobStatus
from jobs.services import ledger
from ops import storage, workers
from studio.celery import app
from tests.builders import make_job, ready_sample
from tests.processes import fits_the_screen, log_in, wait_for

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("demo_models"),
]


def held(owner, dataset, name: str) -> FineTuneJob:
    """A queued job as the fair-share line holds it (no message sent)."""
    job = make_job(owner, dataset, name=name)
    FineTuneJob.objects.filter(pk=job.pk).update(status=JobStatus.QUEUED, queued_at=job.created_at)
    return job


def test_an_operator_watches_the_fleet(
    page, phone, live_server_url, celery_worker, alice, bob, olga
):
    train_worker = celery_worker  # the worker of the default and train queues
    running = held(alice, ready_sample(alice), "alice-routing")
    ledger.claim(running.pk, train_worker)
    waiting = held(bob, ready_sample(bob), "bob-sentiment")
    workers.client().delete(storage.SURVEY_KEY)
    app.send_task("ops.survey_storage", queue="maintenance")
    wait_for(storage.last_survey, 30, "the storage survey")
    wait_for(lambda: any(w["name"] == train_worker for w in workers.read_all()), 30, "a heartbeat")

    log_in(page, live_server_url, "olga")
    page.get_by_role("link", name="Operations", exact=True).first.click()
    expect(page).to_have_url(f"{live_server_url}/ops/")
    expect(page.get_by_role("heading", name="Operations", level=1)).to_be_visible()

    queued = page.get_by_test_id("ops-queued-jobs")
    expect(queued.locator(f"#ops-queued-{waiting.pk}")).to_contain_text("1st")
    expect(queued.locator(f"#ops-queued-{waiting.pk}")).to_contain_text("bob")
    run_row = page.locator(f"#ops-running-{running.pk}")
    expect(run_row).to_contain_text("alice-routing")
    expect(run_row).to_contain_text("alice")
    worker_row = page.locator(f'[data-worker="{train_worker}"]')
    expect(worker_row).to_contain_text("reporting")
    expect(worker_row).to_contain_text("default, train")
    expect(
        worker_row.get_by_role("link", name=f"training {str(running.pk)[:8]}")
    ).to_have_attribute("href", f"/jobs/{running.pk}/")
    expect(page.locator('[data-worker$="@localhost"]')).to_have_count(4)
    expect(page.get_by_test_id("ops-storage-kinds")).to_contain_text("Datasets")
    expect(page.get_by_text("Measured at")).to_be_visible()
    expect(page.locator('[data-check="reaper"]')).to_be_visible()

    # Live: a job queued now shows within a few seconds, no reload.
    later = held(alice, ready_sample(alice), "alice-later")
    expect(queued.locator(f"#ops-queued-{later.pk}")).to_contain_text("alice-later", timeout=10_000)

    log_in(phone, live_server_url, "olga")
    phone.goto(f"{live_server_url}/ops/")
    expect(phone.get_by_test_id("ops-workers")).to_be_visible()
    assert fits_the_screen(phone)
    levels = phone.evaluate(
        "[...document.querySelectorAll('main h1, main h2, main h3')].map(h => +h.tagName[1])"
    )
    assert levels[0] == 1
    assert all(b - a <= 1 for a, b in itertools.pairwise(levels)), levels
    region = phone.get_by_role("region", name="Workers table")
    region.focus()
    expect(region).to_be_focused()


def test_an_analyst_has_no_operations_page(page, live_server_url, alice):
    log_in(page, live_server_url, "alice")
    expect(page.get_by_role("link", name="Operations", exact=True)).to_have_count(0)
    response = page.goto(f"{live_server_url}/ops/")
    assert response.status == 404
