"""In Chromium, with a real worker: from a sample dataset through the wizard to a
trained adapter, the loss arriving live on the job page."""

import re
import zipfile

import pytest
from playwright.sync_api import expect

from tests.conftest import log_in

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


@pytest.mark.timeout(900)
@pytest.mark.usefixtures("celery_worker", "demo_models", "alice")
def test_alice_fine_tunes_tailor_tiny_on_support_routing_and_downloads_the_adapter(
    page, live_server_url, tmp_path
):
    log_in(page, live_server_url, "alice")
    dataset_id = add_ready_sample(page, live_server_url, "Support ticket routing")
    train_in_the_wizard(page, live_server_url, dataset_id, "tailor-tiny")
    watch_it_train_and_download(page, tmp_path)


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
