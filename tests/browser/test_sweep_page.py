"""A sweep's page on a phone, and by keyboard: its leaderboard fits 390 px
and every link is reached with Tab."""

import pytest
from playwright.sync_api import expect

from jobs.models import FineTuneJob, JobStatus
from jobs.services import sweep_space, sweeps
from jobs.services.drafts import check_start_job
from tests.builders import ready_sample
from tests.processes import fits_the_screen, log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.usefixtures("demo_models", "no_training_worker")
def test_a_finished_sweep_reads_on_a_phone_and_by_keyboard(phone, live_server_url, alice):
    dataset = ready_sample(alice)
    draft = check_start_job(alice, {"data": {"dataset": str(dataset.pk)},
                                    "model": {"base_model": "tailor-tiny", "method": "lora"}})  # fmt: skip
    plan = sweep_space.read_sweep(
        {"parameters": {"learning_rate": {"values": [1e-3, 3e-3]}, "lora_rank": {"values": [4]}},
         "budget": 2, "sampler": "grid"},
        task=draft.model.task,
    )  # fmt: skip
    sweep = sweeps.create_sweep(alice, draft, plan)
    for loss, trial in zip((0.9, 0.4), sweep.trials.order_by("number"), strict=True):
        FineTuneJob.objects.filter(pk=trial.job_id).update(
            status=JobStatus.SUCCEEDED, best_val_loss=loss
        )
    sweeps.advance(sweep.pk)
    log_in(phone, live_server_url, "alice")
    phone.goto(f"{live_server_url}/sweeps/{sweep.pk}/")
    expect(phone.get_by_test_id("sweep-status")).to_have_text("Finished")
    expect(phone.get_by_test_id("sweep-row")).to_have_count(2)
    winner = sweep.trials.get(number=1)  # the lower loss
    words = f"learning rate {winner.params['learning_rate']:g}, LoRA rank 4"
    expect(phone.locator("tr.winner")).to_contain_text(words)
    assert fits_the_screen(phone)
    playground = phone.get_by_test_id("open-winner-playground")
    for _ in range(40):
        phone.keyboard.press("Tab")
        if playground.evaluate("link => link === document.activeElement"):
            break
    else:
        pytest.fail("Tab never reached Open in playground")
    phone.keyboard.press("Enter")
    expect(phone).to_have_url(
        f"{live_server_url}/playground/?job={sweep.trials.get(number=1).job_id}"
    )
