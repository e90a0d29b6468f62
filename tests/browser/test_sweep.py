"""In Chromium, with a real worker: a 6-run sweep on the bundled sentiment
sample from the wizard's Sweep, its live leaderboard to the end, and the
winner opened in the playground."""

import re

import pytest
from playwright.sync_api import expect

from tests.builders import ready_sample
from tests.processes import log_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.training,
    pytest.mark.django_db(transaction=True),
]

# Six runs of two steps, two at a time, and their evaluations, on two shared cores.
SWEEP_TIMEOUT_MS = 600_000


@pytest.mark.timeout(900)
@pytest.mark.usefixtures("celery_worker", "demo_models")
def test_alice_sweeps_six_runs_on_sentiment_and_opens_the_winner_in_the_playground(
    page, live_server_url, alice
):
    dataset = ready_sample(alice, "sentiment")
    log_in(page, live_server_url, "alice")
    page.goto(f"{live_server_url}/jobs/new/?dataset={dataset.pk}")
    page.get_by_test_id("model-minilm-l6").click()
    page.get_by_test_id("method-lora").click()
    page.get_by_test_id("preset-quick").click()
    page.locator("#step-advanced > summary").click()
    page.locator("#id_training-max_steps").fill("2")
    page.locator("#id_training-batch_size").fill("8")
    expect(page.get_by_test_id("estimate-steps")).to_have_text("2")

    page.locator("#sweep-fields > summary").click()
    page.get_by_label("Learning rate (sweep)").fill("1e-4, 1e-3, 5e-3")
    page.get_by_label("LoRA rank (sweep)").fill("4, 8")
    page.get_by_label("Runs at most").fill("6")
    page.get_by_label("Search").select_option("grid")
    page.get_by_label("Optimise").select_option("val_loss")
    page.get_by_role("button", name="Sweep", exact=True).click()

    expect(page).to_have_url(re.compile(r"/sweeps/[0-9a-f-]{36}/$"))
    rows = page.get_by_test_id("sweep-row")
    expect(rows.first).to_be_visible()
    # The leaderboard refreshes itself while the runs train, to the end.
    expect(page.get_by_test_id("sweep-status")).to_have_text("Finished", timeout=SWEEP_TIMEOUT_MS)
    expect(rows).to_have_count(6)
    expect(page.get_by_test_id("winner-badge")).to_have_count(1)
    winner_row = page.locator("tr.winner")
    expect(winner_row.locator("td").first).to_contain_text("1")
    expect(page.get_by_test_id("winner-yaml")).to_be_visible()

    page.get_by_test_id("open-winner-playground").click()
    expect(page).to_have_url(re.compile(r"/playground/\?job=[0-9a-f-]{36}$"))
    winner_id = page.url.rsplit("=", 1)[-1]
    expect(page.get_by_test_id(f"choose-{winner_id}")).to_be_checked()
