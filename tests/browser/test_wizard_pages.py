"""In Chromium: the new-job wizard's cards at 1,366 px and on a phone, the
memory and time it estimates (one figure with the job page's; the time from
this studio's own runs, and how sure it is), errors in labels on the wizard
and the job-file upload, and a second job of one name numbered."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from jobs.models import FineTuneJob, JobStatus
from tests.builders import make_job, ready_sample
from tests.processes import fits_the_screen, log_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("demo_models"),
]

CARD_BOXES = """() => [...document.querySelectorAll('#wizard .choice-card')].map(card => {
    const box = card.getBoundingClientRect();
    return {x: Math.round(box.x), width: Math.round(box.width)};
})"""


def open_the_wizard_with_every_step(page, url: str, owner) -> None:
    """The wizard with a dataset and a model chosen: every step is drawn."""
    job = make_job(owner, ready_sample(owner))
    page.goto(f"{url}/jobs/new/?from={job.pk}")
    expect(page.get_by_test_id("estimate-steps")).to_have_text("75")


def test_choice_cards_share_one_width_at_1366_px_and_stack_on_a_phone(
    page, phone, live_server_url, alice
):
    page.set_viewport_size({"width": 1366, "height": 900})
    log_in(page, live_server_url, "alice")
    open_the_wizard_with_every_step(page, live_server_url, alice)
    boxes = page.evaluate(CARD_BOXES)
    assert len(boxes) >= 9 + 3 + 3  # models, methods, presets
    assert {box["width"] for box in boxes} == {boxes[0]["width"]}, boxes
    assert fits_the_screen(page)

    log_in(phone, live_server_url, "alice")
    open_the_wizard_with_every_step(phone, live_server_url, alice)
    boxes = phone.evaluate(CARD_BOXES)
    # One card to a row, each as wide as the others, and no sideways scrolling.
    assert {(box["x"], box["width"]) for box in boxes} == {(boxes[0]["x"], boxes[0]["width"])}
    assert boxes[0]["width"] <= 390
    assert fits_the_screen(phone)


def succeeded_run(owner, dataset, *, tokens_per_second: float, setup_seconds: float) -> None:
    """A finished tailor-tiny QLoRA run (Quick) as the ledger leaves it: its
    plan's tokens trained at `tokens_per_second`, plus `setup_seconds`."""
    job = make_job(owner, dataset, name="earlier run")
    planned = job.plan["total_tokens"]
    wall_seconds = planned / tokens_per_second + setup_seconds
    finished = timezone.now()
    FineTuneJob.objects.filter(pk=job.pk).update(
        status=JobStatus.SUCCEEDED, attempt=1, trained_tokens=planned,
        started_at=finished - timedelta(seconds=wall_seconds), finished_at=finished,
        final_metrics={"tokens_per_second": tokens_per_second}, tokens_per_second=1.0,
    )  # fmt: skip


def test_the_wizard_learns_the_time_from_this_studios_runs_and_shows_the_job_pages_memory(
    page, live_server_url, alice
):
    dataset = ready_sample(alice)
    log_in(page, live_server_url, "alice")
    page.goto(f"{live_server_url}/jobs/new/?dataset={dataset.pk}")
    page.get_by_test_id("model-tailor-tiny").click()
    expect(page.get_by_test_id("estimate-basis")).to_have_text(
        "rough guess: no run of this model with QLoRA here yet"
    )

    # Three runs measured here, at 100, 200 and 400 tokens/s, each with 60 s
    # besides training: the median, 200 tokens/s, and 60 s.
    for rate in (100.0, 200.0, 400.0):
        succeeded_run(alice, dataset, tokens_per_second=rate, setup_seconds=60)
    page.get_by_test_id("preset-balanced").click()
    page.get_by_test_id("preset-quick").click()
    expect(page.get_by_test_id("estimate-basis")).to_have_text(
        "from 3 runs of this model with QLoRA here"
    )
    # 53,550 tokens (1,200 rows × 44.6) / 200 tokens/s + 60 s = 328 s; the
    # guess from FLOPs said 46 s.
    assert FineTuneJob.objects.filter(owner=alice).first().plan["total_tokens"] == 53_550
    expect(page.get_by_test_id("estimate-time")).to_have_text("about 5 min 28 s")

    # The checked method's memory, the estimate's and the job page's: one figure.
    memory = page.get_by_test_id("estimate-memory").inner_text()
    assert re.fullmatch(r"\d+ MiB", memory), memory
    expect(page.get_by_test_id("method-qlora-memory")).to_have_text(f"about {memory} of memory")
    page.get_by_role("button", name="Start training").click()
    expect(page).to_have_url(re.compile(r"/jobs/[0-9a-f-]{36}/$"))
    expect(page.get_by_text(f"peak memory about {memory}")).to_be_visible()


def test_a_second_job_of_one_name_is_numbered_and_the_pages_say_so(page, live_server_url, alice):
    dataset = ready_sample(alice)
    first = make_job(alice, dataset, name="Routing")
    log_in(page, live_server_url, "alice")
    page.goto(f"{live_server_url}/jobs/new/?from={first.pk}")
    page.locator("#step-advanced summary").click()
    page.locator("#id_name").fill("Routing")
    page.keyboard.press("Tab")
    expect(page.locator("#message-name")).to_have_text(
        "You already have a job named “Routing”: this one will be “Routing (2)”."
    )
    page.get_by_role("button", name="Start training").click()
    expect(page.locator("h1")).to_have_text("Routing (2)")
    expect(page.locator(".message-success")).to_have_text(
        "“Routing (2)” is queued for a training worker. "
        "You already had a job named “Routing”, so this one is “Routing (2)”."
    )


def test_errors_on_the_wizard_and_the_upload_name_fields_by_their_labels(
    page, live_server_url, alice, tmp_path
):
    log_in(page, live_server_url, "alice")
    open_the_wizard_with_every_step(page, live_server_url, alice)
    page.locator("#step-advanced summary").click()
    page.locator("#id_training-learning_rate").fill("0.5")
    page.keyboard.press("Tab")
    summary = page.locator("#wizard-errors")
    expect(summary).to_contain_text("Learning rate: must be more than 0 and at most 0.1.")
    expect(page.locator("#message-training-learning_rate")).to_have_text(
        "must be more than 0 and at most 0.1."
    )
    expect(page.locator("#id_training-learning_rate")).to_have_attribute("aria-invalid", "true")
    # Typing on in the next input: the preview left it, and its focus, alone.
    assert page.evaluate("document.activeElement.id") == "id_training-scheduler"
    expect(page.get_by_role("button", name="Start training")).to_be_disabled()
    assert "training.learning_rate" not in page.locator("main").inner_text()

    bad = tmp_path / "job.yaml"
    bad.write_text("training:\n  learning_rate: 0.5\n")
    page.locator("#upload-config summary").click()
    page.locator('input[name="config_file"]').set_input_files(bad)
    page.get_by_role("button", name="Upload and start").click()
    errors = page.locator("#upload-errors li")
    expect(errors).to_have_text(
        ["Training data: choose a dataset.", "Base model: choose a base model."]
    )
    assert "data.dataset" not in page.locator("main").inner_text()
