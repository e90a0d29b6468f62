"""In Chromium: a user over her running-jobs limit sees where her queued jobs
stand on the jobs list and the job page, and the next in line is released
when the running job ends. The rows are moved as the ledger moves them (no
training worker: the session's are paused so that none takes a message)."""

import re

import pytest
from playwright.sync_api import expect

from jobs.models import FineTuneJob
from jobs.services import ledger
from jobs.services.lifecycle import cancel_job, start_job
from quotas.models import QuotaOverride
from tests.builders import make_job, ready_sample
from tests.processes import fits_the_screen, log_in, paused_workers

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AT_LIMIT = "you have 1 running job, your limit"


def started(owner, dataset, name):
    job = make_job(owner, dataset, name=name)
    start_job(job)
    return FineTuneJob.objects.get(pk=job.pk)


def test_alices_queued_jobs_show_their_place_and_the_next_goes_when_hers_ends(
    alice, bob, demo_models, live_server_url, page, phone
):
    QuotaOverride.objects.create(user=alice, running_jobs=1, note="one at a time")
    mine, theirs = ready_sample(alice), ready_sample(bob)
    with paused_workers({"train"}):
        running = started(alice, mine, "First")
        ledger.claim(running.pk, "train@tests")  # as the worker would
        bobs = started(bob, theirs, "Bob's")  # the only slot is taken: held
        second, third = started(alice, mine, "Second"), started(alice, mine, "Third")
        try:
            log_in(page, live_server_url, "alice")
            page.goto(f"{live_server_url}/jobs/")
            expect(page.locator(f"#job-{second.pk} [data-testid=queue-line]")).to_have_text(
                f"2nd in line; {AT_LIMIT}"
            )
            expect(page.locator(f"#job-{third.pk} [data-testid=queue-line]")).to_have_text(
                f"3rd in line; {AT_LIMIT}"
            )
            expect(page.locator(f"#job-{running.pk} [data-testid=queue-line]")).to_have_count(0)
            page.goto(f"{live_server_url}/jobs/{second.pk}/")
            expect(page.get_by_test_id("job-status-sentence")).to_have_text(
                f"Queued: 2nd in line; {AT_LIMIT}."
            )
            log_in(phone, live_server_url, "alice")
            phone.goto(f"{live_server_url}/jobs/")
            expect(phone.locator(f"#job-{third.pk} [data-testid=queue-line]")).to_be_visible()
            assert fits_the_screen(phone)

            # Her running job ends: the first in line, bob's, is released;
            # hers stay held, and move up.
            ledger.finish_succeeded(
                running.pk, 1, metrics={}, adapter_path="", adapter_bytes=0, trained_tokens=0,
                final_step=75,
            )  # fmt: skip
            bobs.refresh_from_db()
            assert bobs.dispatched_at is not None and bobs.task_id
            page.reload()
            expect(page.get_by_test_id("job-status-sentence")).to_have_text(
                re.compile(r"^Queued: 1st in line; every training worker is busy \(1 of 1\)\.$")
            )
            assert FineTuneJob.objects.get(pk=second.pk).dispatched_at is None
        finally:
            # No session worker may train what is left once they come back.
            for job in (bobs, second, third):
                cancel_job(FineTuneJob.objects.get(pk=job.pk))


def test_her_places_move_up_live_on_the_list_and_the_job_page_when_one_is_cancelled(
    alice, demo_models, no_training_worker, live_server_url, page, phone
):
    QuotaOverride.objects.create(user=alice, running_jobs=1, note="one at a time")
    mine = ready_sample(alice)
    running = started(alice, mine, "Running")
    ledger.claim(running.pk, "train@tests")  # as the worker would: her one slot is taken
    first, second, third = (started(alice, mine, name) for name in ("First", "Second", "Third"))

    def queue_line(job):
        return page.locator(f"#job-{job.pk} [data-testid=queue-line]")

    try:
        log_in(page, live_server_url, "alice")
        page.goto(f"{live_server_url}/jobs/")
        for job, place in ((first, "1st"), (second, "2nd"), (third, "3rd")):
            expect(queue_line(job)).to_have_text(f"{place} in line; {AT_LIMIT}")
        log_in(phone, live_server_url, "alice")
        phone.goto(f"{live_server_url}/jobs/{third.pk}/")
        sentence = phone.get_by_test_id("job-status-sentence")
        expect(sentence).to_have_text(f"Queued: 3rd in line; {AT_LIMIT}.")
        # Both sockets have told the server what they show.
        expect(page.locator("#jobs-table[data-synced]")).to_have_count(1)
        expect(phone.locator("#job-live[data-synced]")).to_have_count(1)
        page.evaluate("window.loadedOnce = true")  # gone if the page reloads

        cancel_job(first)  # the first in line goes: the others move up
        expect(queue_line(second)).to_have_text(f"1st in line; {AT_LIMIT}")
        expect(queue_line(third)).to_have_text(f"2nd in line; {AT_LIMIT}")
        expect(queue_line(first)).to_have_count(0)
        expect(sentence).to_have_text(f"Queued: 2nd in line; {AT_LIMIT}.")
        assert page.evaluate("window.loadedOnce") is True
    finally:
        for job in (running, second, third):
            cancel_job(FineTuneJob.objects.get(pk=job.pk))
