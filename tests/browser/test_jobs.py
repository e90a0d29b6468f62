"""In Chromium, with a real worker: from a sample dataset through the wizard to a
trained adapter, the loss arriving live on the job page."""

import re
import zipfile

import pytest
from playwright.sync_api import expect

from tests.processes import log_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.training,
    pytest.mark.django_db(transaction=True),
]

# A Quick run takes 1-2 minutes on a free CPU, several with the browser and
# server sharing two cores.
TRAINING_TIMEOUT_MS = 600_000


def add_ready_sample(page, base_url: str, sample_name: str) -> str:
    """Add a bundled sample from the datasets page, wait until it is ready; its id."""
    page.goto(f"{base_url}/datasets/")
    page.get_by_role("button", name=f"Use “{sample_name}”").click()
    expect(page).to_have_url(re.compile(r"/datasets/[0-9a-f-]{36}/$"))
    expect(page.get_by_test_id("dataset-status")).to_have_text("Ready", timeout=60_000)
    return page.url.rstrip("/").rsplit("/", 1)[-1]


def train_in_the_wizard(page, base_url: str, dataset_id: str, model: str) -> None:
    page.goto(f"{base_url}/jobs/")
    page.get_by_test_id("new-job").first.click()
    expect(page).to_have_url(f"{base_url}/jobs/new/")
    page.locator("#id_data-dataset").select_option(dataset_id)
    page.get_by_test_id(f"model-{model}").click()
    page.get_by_test_id("preset-quick").click()
    # Every change re-renders the estimate: 1,200 rows / 16 per step.
    expect(page.get_by_test_id("estimate-steps")).to_have_text("75")
    page.get_by_role("button", name="Start training").click()
    expect(page).to_have_url(re.compile(r"/jobs/[0-9a-f-]{36}/$"))


def watch_it_train_and_download(page, tmp_path) -> None:
    status = page.get_by_test_id("job-status")
    # Points arrive over the websocket while the job runs.
    page.wait_for_function(
        "() => Number(document.querySelector('#loss-chart').dataset.points) >= 10",
        timeout=TRAINING_TIMEOUT_MS,
    )
    expect(page.locator("#loss-chart canvas")).to_be_visible()
    expect(status).to_have_text("Succeeded", timeout=TRAINING_TIMEOUT_MS)
    expect(page.locator("#job-progress-percent")).to_have_text("100 %")
    # The panel was fetched again on the final status: the download is there.
    with page.expect_download() as download_info:
        page.get_by_test_id("download-adapter").click()
    download = download_info.value
    assert download.suggested_filename.endswith("-adapter.zip")
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    names = zipfile.ZipFile(path).namelist()
    assert any(name.endswith("adapter_config.json") for name in names), names


def read_the_evaluation(page) -> tuple[float, float]:
    """Wait for the job page's evaluation; its headline figure, base and fine-tuned."""
    table = page.get_by_test_id("evaluation-table")
    expect(table).to_be_visible(timeout=TRAINING_TIMEOUT_MS)
    base = float(page.get_by_test_id("evaluation-base-headline").get_attribute("data-value"))
    tuned = float(page.get_by_test_id("evaluation-tuned-headline").get_attribute("data-value"))
    return base, tuned


@pytest.mark.timeout(900)
@pytest.mark.usefixtures("celery_worker", "demo_models", "alice")
def test_alice_fine_tunes_tailor_tiny_on_support_routing_then_compares_it_with_its_base(
    page, live_server_url, tmp_path
):
    log_in(page, live_server_url, "alice")
    dataset_id = add_ready_sample(page, live_server_url, "Support ticket routing")
    train_in_the_wizard(page, live_server_url, dataset_id, "tailor-tiny")
    watch_it_train_and_download(page, tmp_path)
    job_url = page.url

    # The Quick preset, no knob touched: the held-out routing is learnt.
    base, tuned = read_the_evaluation(page)
    assert tuned >= 0.8 and base <= 0.1, (base, tuned)
    expect(page.get_by_test_id("evaluation-samples")).to_contain_text("Sample by sample")

    page.get_by_test_id("open-playground").click()
    expect(page).to_have_url(re.compile(r"/playground/\?job="))
    expect(page.get_by_test_id("choose-tailor-tiny")).to_be_checked()
    page.get_by_test_id("playground-prompt").fill("I was charged twice for my order")
    page.get_by_test_id("param-max-new-tokens").fill("48")
    page.get_by_test_id("param-seed").fill("7")
    page.get_by_test_id("playground-run").click()
    state = page.get_by_test_id("playground-state")
    expect(state).to_have_text("Done.", timeout=120_000)
    # The base rambled on for many tokens: its pane was filled in several updates.
    assert int(page.get_by_test_id("pane-0").get_attribute("data-updates")) >= 2
    base_text = page.get_by_test_id("pane-text-0").inner_text()
    tuned_text = page.get_by_test_id("pane-text-1").inner_text()
    assert base_text and tuned_text and base_text != tuned_text
    expect(page.get_by_test_id("pane-stats-1")).to_contain_text("tokens/s")

    page.get_by_test_id("vote-choice-b").click()
    expect(page.get_by_test_id("vote-recorded")).to_contain_text("is better")
    expect(page.get_by_test_id("vote-tallies")).to_contain_text("Tailor Tiny (demo, 3.6M) (base)")

    page.goto(job_url)
    expect(page.get_by_test_id("evaluation-table")).to_contain_text("Exact match")


@pytest.mark.timeout(900)
@pytest.mark.usefixtures("celery_worker", "demo_models", "alice")
def test_alice_fine_tunes_minilm_on_sentiment_and_downloads_the_adapter(
    page, live_server_url, tmp_path
):
    log_in(page, live_server_url, "alice")
    dataset_id = add_ready_sample(page, live_server_url, "Review sentiment")
    train_in_the_wizard(page, live_server_url, dataset_id, "minilm-l6")
    expect(page.locator(".job-meta")).to_contain_text("LoRA")
    watch_it_train_and_download(page, tmp_path)
    # The Quick preset, no knob touched: the untrained head is near chance.
    base, tuned = read_the_evaluation(page)
    assert tuned >= 0.9 and base <= 0.75, (base, tuned)
