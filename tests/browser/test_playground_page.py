"""In Chromium: the playground as a user finds it, at 1,280 px and at 390 px.

No inference worker answers: the answers come over the playground's socket
as the worker would send them, and the run is stored as the worker leaves
it, so that it can be voted on."""

import pytest
from playwright.sync_api import expect

from serving.models import Generation, GenerationStatus
from serving.services import generations
from studio.events import publish
from tests.builders import finished_job, ready_sample
from tests.processes import fits_the_screen, log_in, paused_workers, wait_for

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("demo_models"),
]

BASE_LABEL = "Tailor Tiny (demo, 3.6M) (base)"

# Heading levels that skip one (an h3 straight under the h1), among the
# headings a screen reader lists (not those of hidden parts).
SKIPPED_HEADINGS = """() => {
  const found = [];
  let previous = 0;
  for (const heading of document.querySelectorAll("main h1, main h2, main h3, main h4, main h5, main h6")) {
    if (heading.closest("[hidden]")) continue;
    const level = Number(heading.tagName[1]);
    if (level > previous + 1) found.push(`${heading.tagName}: ${heading.textContent.trim()}`);
    previous = level;
  }
  return found;
}"""


def run_and_answer(page, prompt: str, answers: list[str]) -> Generation:
    """Run `prompt` from the page and answer every pane as the worker would."""
    before = set(Generation.objects.values_list("pk", flat=True))
    # No inference worker may answer first: the answers are the ones sent here.
    with paused_workers({"infer"}):
        page.get_by_test_id("playground-prompt").fill(prompt)
        page.get_by_test_id("playground-run").click()
        generation = wait_for(
            lambda: Generation.objects.exclude(pk__in=before).first(), 30, "the playground's run"
        )
        expect(page.get_by_test_id("pane-0")).to_be_visible()
        results = [
            {"model": pane["model"], "label": pane["label"], "text": text, "error": None,
             "prompt_tokens": 3, "completion_tokens": 5, "finish_reason": "stop",
             "first_token_seconds": 0.1, "seconds": 0.5, "tokens_per_second": 10.0}
            for pane, text in zip(generation.panes, answers, strict=True)
        ]  # fmt: skip
        Generation.objects.filter(pk=generation.pk).update(
            status=GenerationStatus.SUCCEEDED, results=results
        )
        group = generations.generation_group(generation.pk)
        sent = {"seq": 1, "id": str(generation.pk)}
        publish(group, {"type": "generation.started", **sent}).result(5)
        publish(group, {"type": "generation.done", **sent, "seq": 2, "status": "succeeded",
                        "error": None, "results": results}).result(5)  # fmt: skip
        expect(page.get_by_test_id("playground-state")).to_have_text("Done.")
    return generation


def test_a_comparison_reads_right_and_its_votes_read_as_seen(page, live_server_url, alice):
    job = finished_job(alice, ready_sample(alice), name="Routing, quick")
    log_in(page, live_server_url, "alice")
    page.goto(f"{live_server_url}/playground/")
    assert page.evaluate(SKIPPED_HEADINGS) == []

    # An empty message: the page says so in a sentence, not an API field path.
    page.get_by_test_id("playground-run").click()
    error = page.locator('[data-error-for="prompt"]')
    expect(error).to_have_text("Write a message first.")

    run_and_answer(page, "I was charged twice for my order", ["the the the", "billing"])
    expect(error).to_be_hidden()
    # The answers are text to read, in the page's text colour (not grey).
    answer = page.get_by_test_id("pane-text-1")
    expect(answer).to_have_text("billing")
    body_colour = page.evaluate("getComputedStyle(document.body).color")
    assert answer.evaluate("node => getComputedStyle(node).color") == body_colour
    # The prompt just run is offered again, without a reload.
    expect(page.get_by_test_id("recent-prompts")).to_contain_text(
        "I was charged twice for my order"
    )
    assert page.evaluate(SKIPPED_HEADINGS) == []

    # "B is better", B being the fine-tuned model in the right pane.
    expect(page.get_by_test_id("vote-b")).to_have_value(job.fine_tuned_model)
    page.get_by_test_id("vote-choice-b").click()
    expect(page.get_by_test_id("vote-recorded")).to_have_text(
        "Vote recorded: B is better (Routing, quick). To change it, choose another answer."
    )
    tally = page.get_by_test_id("tally")
    expect(tally.get_by_test_id("tally-left")).to_have_text(BASE_LABEL)
    expect(tally.get_by_test_id("tally-right")).to_have_text("Routing, quick")
    expect(tally.get_by_test_id("tally-left-wins")).to_have_text("0 wins")
    expect(tally.get_by_test_id("tally-right-wins")).to_have_text("1 win")
    # The bar is whole: inside its card, its right part (the winner's) drawn.
    bar = tally.locator("svg.tally-bar")
    card = page.get_by_test_id("vote-tallies")
    bar_box, card_box = bar.bounding_box(), card.bounding_box()
    assert bar_box["width"] > 50
    assert bar_box["x"] >= card_box["x"] and bar_box["x"] + bar_box["width"] <= (
        card_box["x"] + card_box["width"] + 0.5
    )
    assert bar.evaluate("node => node.parentElement.scrollWidth <= node.parentElement.clientWidth")
    expect(bar.locator("rect.tally-right")).to_have_attribute("width", "100%")
    expect(page.get_by_test_id("vote-choice-b")).to_have_attribute("aria-pressed", "true")

    # The same vote again is not silently dropped: the page says what counts.
    page.get_by_test_id("vote-choice-b").click()
    expect(page.get_by_test_id("vote-recorded")).to_have_text(
        "You already voted: B is better (Routing, quick). One vote per pair of answers counts; "
        "to change it, choose another answer."
    )
    expect(tally.get_by_test_id("tally-right-wins")).to_have_text("1 win")
    # Another answer changes it.
    page.get_by_test_id("vote-choice-a").click()
    expect(page.get_by_test_id("vote-recorded")).to_have_text(
        f"Vote changed: now A is better ({BASE_LABEL}), no longer B is better (Routing, quick). "
        "One vote per pair of answers counts."
    )
    expect(tally.get_by_test_id("tally-left-wins")).to_have_text("1 win")
    expect(tally.get_by_test_id("tally-right-wins")).to_have_text("0 wins")
    expect(page.get_by_test_id("vote-choice-a")).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_test_id("vote-choice-b")).to_have_attribute("aria-pressed", "false")


def test_on_a_phone_the_panes_stack_and_nothing_scrolls_sideways(phone, live_server_url, alice):
    finished_job(alice, ready_sample(alice), name="Routing, quick")
    log_in(phone, live_server_url, "alice")
    phone.goto(f"{live_server_url}/playground/")
    assert fits_the_screen(phone)

    run_and_answer(phone, "Where is my sofa?", ["the the the " * 20, "shipping"])
    first, second = phone.get_by_test_id("pane-0"), phone.get_by_test_id("pane-1")
    # One under the other, each the width of the column.
    assert second.bounding_box()["y"] >= first.bounding_box()["y"] + first.bounding_box()["height"]
    panes = phone.get_by_test_id("panes")
    assert panes.evaluate("node => node.scrollWidth <= node.clientWidth")
    assert fits_the_screen(phone)

    phone.get_by_test_id("vote-choice-b").click()
    expect(phone.get_by_test_id("vote-recorded")).to_contain_text("Vote recorded")
    expect(phone.get_by_test_id("tally")).to_be_visible()
    assert fits_the_screen(phone)
