"""In Chromium, with real workers, issue 19's loop: an analyst votes in the
playground on pairs of answers from two fine-tunes, makes a preference
dataset from the votes, runs DPO from the better job's adapter, watches the
reward margin rise live, and compares parent and child in the playground;
then merges the two fine-tunes and the merge answers in the playground."""

import re

import pytest
from playwright.sync_api import expect

from datasets_app.models import Dataset
from jobs.models import FineTuneJob
from tests.builders import ready_sample, run_to_success
from tests.processes import log_in, wait_for

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.training,
    pytest.mark.django_db(transaction=True),
]

PROMPTS = [
    "I was charged twice for my order",
    "My parcel never arrived",
    "The app crashes when I log in",
    "How do I change my email address?",
    "Refund the second payment please",
    "The tracking page shows nothing",
]
RUN_TIMEOUT_MS = 300_000


def _sft(owner, dataset, name: str, steps: int) -> FineTuneJob:
    return run_to_success(
        owner,
        {
            "name": name,
            "data": {"dataset": str(dataset.pk)},
            "model": {"base_model": "tailor-tiny", "method": "lora"},
            "training": {"max_steps": steps, "batch_size": 8, "save_every": 0},
        },
    )


def _run(page, prompt: str) -> None:
    page.get_by_test_id("playground-prompt").fill(prompt)
    page.get_by_test_id("playground-run").click()
    expect(page.get_by_test_id("playground-state")).to_have_text("Done.", timeout=60_000)


def _vote_for(page, model: str) -> None:
    """Vote for `model`'s answer, whichever side it is on."""
    side = "a" if page.get_by_test_id("vote-a").input_value() == model else "b"
    page.get_by_test_id(f"vote-choice-{side}").click()
    expect(page.get_by_test_id("vote-recorded")).to_contain_text("Vote recorded")


def _margins(label: str) -> tuple[float, float]:
    """The first and latest training reward margin the chart's text names."""
    found = re.search(r"reward margin from (-?[\d.]+) to (-?[\d.]+)", label)
    assert found, label
    return float(found.group(1)), float(found.group(2))


@pytest.mark.timeout(900)
@pytest.mark.usefixtures("celery_worker", "demo_models")
def test_votes_become_preference_data_and_dpo_trains_on_from_the_better_job(
    page, live_server_url, alice
):
    routing = ready_sample(alice)
    better = _sft(alice, routing, "Routing, longer", 16)
    worse = _sft(alice, routing, "Routing, short", 2)

    # 1. Votes in the playground, on the two fine-tunes' answers.
    log_in(page, live_server_url, "alice")
    page.goto(f"{live_server_url}/playground/?job={better.pk}")
    page.get_by_test_id("choose-tailor-tiny").uncheck()
    page.get_by_test_id(f"choose-{worse.pk}").check()
    page.get_by_test_id("param-max-new-tokens").fill("12")
    for prompt in PROMPTS:
        _run(page, prompt)
        _vote_for(page, better.fine_tuned_model)

    # 2. The votes become a dataset, reviewed first.
    page.get_by_test_id("make-preference-dataset").click()
    expect(page).to_have_url(re.compile(r"/playground/preference-dataset/"))
    pairs = page.get_by_test_id("preference-pair")
    expect(pairs.first).to_be_visible()
    kept = pairs.count()
    assert kept >= 4, page.get_by_test_id("preference-counts").inner_text()
    expect(pairs.first.get_by_test_id("preference-chosen")).to_contain_text("Routing, longer")
    page.get_by_test_id("preference-name").fill("Routing votes")
    page.get_by_test_id("preference-create-button").click()
    expect(page).to_have_url(re.compile(r"/datasets/[0-9a-f-]{36}/$"))
    expect(page.get_by_test_id("dataset-provenance")).to_contain_text("votes")
    votes = Dataset.objects.get(name="Routing votes")
    wait_for(lambda: Dataset.objects.get(pk=votes.pk).status == "ready", 60, "validation")

    # 3. DPO from the better job's adapter, from the wizard.
    page.goto(f"{live_server_url}/jobs/new/?dataset={votes.pk}")
    page.get_by_test_id("model-tailor-tiny").click()
    page.get_by_test_id("method-lora").click()
    page.get_by_test_id("preset-quick").click()
    # Preference data opens the advanced settings: start from, and beta.
    page.get_by_test_id("start-from").select_option(str(better.pk))
    page.locator("#id_training-max_steps").fill("12")
    page.locator("#id_training-batch_size").fill("2")
    expect(page.get_by_test_id("estimate-steps")).to_have_text("12")
    page.get_by_role("button", name="Start training").click()
    expect(page).to_have_url(re.compile(r"/jobs/[0-9a-f-]{36}/$"))
    expect(page.get_by_test_id("job-objective")).to_have_text("Preference tuning (DPO)")
    expect(page.get_by_test_id("job-lineage")).to_contain_text("Routing, longer")

    # 4. The reward margin rises, live, while the page is open.
    chart = page.get_by_test_id("reward-chart")
    expect(chart).to_have_attribute("data-points", re.compile(r"^([3-9]|\d\d+)$"),
                                    timeout=RUN_TIMEOUT_MS)  # fmt: skip
    expect(page.get_by_test_id("job-status")).to_have_text("Succeeded", timeout=RUN_TIMEOUT_MS)
    first, last = _margins(chart.get_attribute("aria-label"))
    assert last > first
    assert page.get_by_test_id("job-reward-margin").inner_text() != "—"
    child = FineTuneJob.objects.get(name__startswith="Routing votes")
    assert (child.objective, child.parent_id) == ("dpo", better.pk)

    # 5. Parent and child side by side in the playground.
    page.get_by_test_id("open-playground").click()
    expect(page.get_by_test_id(f"choose-{better.pk}")).to_be_checked()
    expect(page.get_by_test_id(f"choose-{child.pk}")).to_be_checked()
    expect(page.get_by_test_id("choose-tailor-tiny")).not_to_be_checked()
    _run(page, "I was charged twice for my order")
    expect(page.get_by_test_id("pane-text-0")).not_to_be_empty()
    expect(page.get_by_test_id("pane-text-1")).not_to_be_empty()

    # 6. A merge of the two fine-tunes answers in the playground.
    page.goto(f"{live_server_url}/jobs/merge/?job={better.pk}")
    page.locator(f"#id_source-{worse.pk}").check()
    page.locator("#id_combination-ties").check()
    page.get_by_test_id("merge-adapters").click()
    expect(page).to_have_url(re.compile(r"/jobs/[0-9a-f-]{36}/$"))
    expect(page.get_by_test_id("job-merge-sources")).to_contain_text("Routing, short")
    expect(page.get_by_test_id("job-status")).to_have_text("Succeeded", timeout=RUN_TIMEOUT_MS)
    merged = FineTuneJob.objects.get(objective="merge")
    page.get_by_test_id("open-playground").click()
    expect(page.get_by_test_id(f"choose-{merged.pk}")).to_be_checked()
    _run(page, "My parcel never arrived")
    expect(page.get_by_test_id("pane-text-1")).not_to_be_empty()
