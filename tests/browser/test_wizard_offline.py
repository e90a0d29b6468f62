"""In Chromium, on a studio that cannot download (HF_HUB_OFFLINE, an empty
Hugging Face cache): the wizard warns beside each model that needs a
download, and choosing one says why it cannot start instead of creating a
job that fails in the worker."""

import sys
import urllib.request

import pytest
from playwright.sync_api import expect

from jobs.models import FineTuneJob
from studio.redis_server import free_port
from tests.builders import ready_sample
from tests.processes import ChildProcess, child_env, log_in, wait_for

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("demo_models"),
]

OFFLINE = (
    "SmolLM2 135M Instruct needs a download of HuggingFaceTB/SmolLM2-135M-Instruct (about "
    "0.3 GiB), and this studio cannot download (HF_HUB_OFFLINE is set). Choose a model on "
    "this machine, or ask an operator to put it in the Hugging Face cache."
)


@pytest.fixture
def offline_server_url(django_db_setup, tmp_path):
    """The studio under uvicorn as an offline machine runs it."""
    port = free_port()
    env = child_env(HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(tmp_path / "empty-hub-cache"))
    server = ChildProcess(
        "uvicorn-offline",
        [sys.executable, "-m", "uvicorn", "studio.asgi:application", "--host", "127.0.0.1",
         "--port", str(port), "--timeout-graceful-shutdown", "2"],
        env,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def answers():
        try:
            with urllib.request.urlopen(f"{url}/login/", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    wait_for(answers, 60, "the offline server", server)
    yield url
    server.stop()


def test_an_offline_studio_warns_beside_a_model_that_needs_a_download_and_refuses_it(
    page, offline_server_url, alice
):
    dataset = ready_sample(alice)
    log_in(page, offline_server_url, "alice")
    page.goto(f"{offline_server_url}/jobs/new/?dataset={dataset.pk}")

    card = page.get_by_test_id("model-smollm2-135m-instruct")
    expect(card).to_contain_text("Needs a download: offline")
    expect(page.get_by_test_id("model-smollm2-135m-instruct-warning")).to_have_text(OFFLINE)
    # The bundled model is on this machine: no warning.
    expect(page.get_by_test_id("model-tailor-tiny-warning")).to_have_count(0)

    card.click()
    expect(page.locator("#wizard-errors li")).to_have_text(f"Base model: {OFFLINE}")
    expect(page.locator("#message-model-base_model")).to_have_text(OFFLINE)
    expect(page.get_by_role("button", name="Start training")).to_be_disabled()

    # Posted anyway (a stale page, say), Start refuses with the same sentence.
    page.evaluate("document.getElementById('start-job').disabled = false")
    page.get_by_role("button", name="Start training").click()
    expect(page.locator("#wizard-errors li")).to_have_text(f"Base model: {OFFLINE}")
    assert not FineTuneJob.objects.exists()

    # Back on the bundled model, the job can start.
    page.get_by_test_id("model-tailor-tiny").click()
    expect(page.get_by_test_id("estimate-steps")).to_have_text("75")
    expect(page.get_by_role("button", name="Start training")).to_be_enabled()
