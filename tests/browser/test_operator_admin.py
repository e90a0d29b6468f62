"""In Chromium: an operator who is not a superuser (made by `manage.py
make_operator`) uses the admin. They see the jobs list, cancel another
user's running job with the admin's action (after a page that says what it
will do), and the owner's open job page shows Cancelling, then Cancelled,
within a few seconds, as from any cancel; on a phone, they deactivate a
user after a page that lists the work it stops. No worker: the test writes rows
as the ledger would (jobs/services/ledger.py)."""

import io

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from jobs.models import FineTuneJob, JobStatus
from jobs.services import ledger
from studio.models import ApiToken
from studio.services.tokens import create_token
from tests.builders import make_job, ready_sample
from tests.processes import PASSWORD, fits_the_screen, log_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("demo_models"),
]

# The owner's page learns of a cancel from the live summary that
# lifecycle.cancel_job publishes: well under this.
LIVE_MS = 3_000


@pytest.fixture
def opal(django_user_model):
    user = django_user_model.objects.create_user("opal", "opal@example.com", PASSWORD)
    call_command("make_operator", "opal", stdout=io.StringIO())
    user.refresh_from_db()
    assert user.is_staff and not user.is_superuser
    return user


def a_running_job(owner, name: str):
    job = make_job(owner, ready_sample(owner), name=name)
    FineTuneJob.objects.filter(pk=job.pk).update(status=JobStatus.QUEUED)
    run = ledger.claim(job.pk, "train@browser")
    ledger.record_start(job.pk, run.attempt, total_steps=75, resumed_from_step=0)
    return job, run.attempt


def admin_log_in(page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/admin/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def test_an_operator_cancels_another_users_running_job_and_its_page_shows_it_live(
    browser, page, live_server_url, alice, opal
):
    job, attempt = a_running_job(alice, "nightly routing")
    # The owner keeps the job's page open, in a browser of their own.
    owner = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    log_in(owner, live_server_url, "alice")
    owner.goto(f"{live_server_url}/jobs/{job.pk}/")
    expect(owner.get_by_test_id("job-status")).to_have_text("Running")
    expect(owner.locator("#job-live")).to_have_attribute("data-live", "connected")

    admin_log_in(page, live_server_url, "opal")
    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()
    expect(page.locator("main")).not_to_contain_text("permission to view or edit anything")
    page.get_by_role("link", name="Fine tune jobs").first.click()
    row = page.locator("#result_list tbody tr", has_text="nightly routing")
    expect(row).to_contain_text("alice")
    expect(row).to_contain_text("Running")
    row.locator('input[name="_selected_action"]').check()
    page.locator('select[name="action"]').select_option("cancel_jobs")
    page.get_by_role("button", name="Go", exact=True).click()

    # Nothing happened yet: the page says what will.
    plan = page.get_by_test_id(f"plan-{job.pk}")
    expect(plan).to_contain_text("Job “nightly routing” of alice")
    expect(plan).to_contain_text("stops at its next step, keeping its last checkpoint")
    assert FineTuneJob.objects.get(pk=job.pk).status == JobStatus.RUNNING
    page.get_by_role("button", name="Yes, cancel them").click()

    expect(page.locator(".messagelist")).to_contain_text(
        "Job “nightly routing” of alice is cancelling: it stops at its next step."
    )
    expect(owner.get_by_test_id("job-status")).to_have_text("Cancelling", timeout=LIVE_MS)
    # The worker stops at its next step, as it does for the owner's own cancel.
    ledger.finish_cancelled(job.pk, attempt, step=0)
    expect(owner.get_by_test_id("job-status")).to_have_text("Cancelled", timeout=LIVE_MS)
    owner.context.close()


def test_the_confirmation_fits_a_phone_and_works_with_a_keyboard(phone, live_server_url, alice,
                                                                 opal):  # fmt: skip
    job, _ = a_running_job(alice, "a job whose name is long enough to wrap on a phone screen")
    admin_log_in(phone, live_server_url, "opal")
    phone.goto(f"{live_server_url}/admin/jobs/finetunejob/")
    phone.locator(f'input[name="_selected_action"][value="{job.pk}"]').check()
    phone.locator('select[name="action"]').select_option("cancel_jobs")
    phone.get_by_role("button", name="Go", exact=True).click()
    expect(phone.get_by_test_id(f"plan-{job.pk}")).to_be_visible()
    assert fits_the_screen(phone)
    confirm = phone.get_by_role("button", name="Yes, cancel them")
    confirm.focus()
    phone.keyboard.press("Enter")
    expect(phone.locator(".messagelist")).to_contain_text("is cancelling")
    assert FineTuneJob.objects.get(pk=job.pk).status == JobStatus.CANCELLING


def test_deactivating_a_user_lists_their_work_first_then_stops_it(phone, live_server_url, alice,
                                                                  opal):  # fmt: skip
    job, _ = a_running_job(alice, "weekly sentiment")
    create_token(alice, "nightly pipeline")
    admin_log_in(phone, live_server_url, "opal")
    phone.goto(f"{live_server_url}/admin/auth/user/")
    phone.locator(f'input[name="_selected_action"][value="{alice.pk}"]').check()
    phone.locator('select[name="action"]').select_option(label="Deactivate and cancel their work")
    phone.get_by_role("button", name="Go", exact=True).click()
    plan = phone.get_by_test_id(f"plan-{alice.pk}")
    expect(plan).to_contain_text("1 queued or running job cancelled and 1 token revoked")
    expect(plan).to_contain_text("Job “weekly sentiment” (running): cancelled")
    expect(plan).to_contain_text("API token “nightly pipeline”")
    assert fits_the_screen(phone)
    phone.get_by_role("button", name="Yes, deactivate them and cancel their work").click()
    expect(phone.locator(".messagelist")).to_contain_text(
        "User alice was deactivated: 1 job cancelled, 1 token revoked."
    )
    alice.refresh_from_db()
    assert not alice.is_active
    assert FineTuneJob.objects.get(pk=job.pk).status == JobStatus.CANCELLING
    assert not ApiToken.objects.filter(user=alice).exists()
