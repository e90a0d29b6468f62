"""In Chromium: a finished job's evaluation card, a classifier's and a
generator's: the words fit the kind of model, every confusion cell is
readable, right and wrong answers are told by more than colour. No worker:
the rows are written as the ledger and the evaluation leave them."""

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from serving.models import Evaluation
from tests.builders import finished_job, ready_sample
from tests.processes import log_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("demo_models"),
]

# The contrast of each confusion cell's text on its background (WCAG 2's
# formula; a transparent background is the first opaque one behind it).
CELL_CONTRASTS = """(table) => {
  const rgba = (text) => (text.match(/[\\d.]+/g) || []).map(Number);
  const channel = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
  const luminance = ([r, g, b]) => 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
  const background = (node) => {
    for (; node; node = node.parentElement) {
      const [r, g, b, a = 1] = rgba(getComputedStyle(node).backgroundColor);
      if (a > 0 && getComputedStyle(node).backgroundColor !== "transparent") {
        if (a >= 1) return [r, g, b];
        const under = background(node.parentElement);
        return [r, g, b].map((c, i) => a * c + (1 - a) * under[i]);
      }
    }
    return [255, 255, 255];
  };
  return Array.from(table.querySelectorAll("td")).map((cell) => {
    const text = luminance(rgba(getComputedStyle(cell).color));
    const back = luminance(background(cell));
    const [light, dark] = text > back ? [text, back] : [back, text];
    return [cell.textContent.trim(), (light + 0.05) / (dark + 0.05)];
  });
}"""

SAMPLES = [
    {"prompt": "Great sound, and the battery lasts all week.", "reference": "positive",
     "base": "negative", "fine_tuned": "positive", "base_exact": False, "fine_tuned_exact": True},
    {"prompt": "Broke after two days.", "reference": "negative",
     "base": "negative", "fine_tuned": "negative", "base_exact": True, "fine_tuned_exact": True},
]  # fmt: skip


def classifier_with_an_evaluation(owner):
    job = finished_job(owner, ready_sample(owner, "sentiment"), model="minilm-l6", name="Mood")
    Evaluation.objects.create(
        job=job, trigger="automatic", sample_size=2, status="succeeded",
        finished_at=timezone.now(),
        results={
            "labels": ["negative", "positive"], "rows": 200, "sample_size": 2,
            "base": {"accuracy": 0.52, "macro_f1": 0.41, "confusion": [[90, 10], [86, 14]]},
            "fine_tuned": {"accuracy": 0.935, "macro_f1": 0.935,
                           "confusion": [[94, 6], [7, 93]]},
            "samples": SAMPLES,
        },
    )  # fmt: skip
    return job


def test_a_classifiers_card_speaks_of_its_classes_and_every_cell_reads(
    page, live_server_url, alice
):
    job = classifier_with_an_evaluation(alice)
    log_in(page, live_server_url, "alice")
    page.goto(f"{live_server_url}/jobs/{job.pk}/")
    card = page.get_by_test_id("job-evaluation")
    expect(card.get_by_test_id("evaluation-table")).to_be_visible()

    # Accuracy and the classes, with the rows the matrices count: nothing of generation.
    expect(card.get_by_test_id("evaluation-tuned-headline")).to_have_text("93.5 %")
    expect(card.get_by_test_id("evaluation-rows")).to_have_text("200")
    expect(card.get_by_test_id("evaluation-rows-note")).to_have_text(
        "each classified by both models"
    )
    expect(card).to_contain_text("Accuracy is the share of rows given their true label")
    for words in ("Exact match", "ROUGE-L", "generated from", "generate from"):
        expect(card).not_to_contain_text(words)
    expect(card.get_by_role("heading", name="Base — 200 rows")).to_be_visible()
    positive = card.get_by_test_id("class-table").locator('[data-class="positive"] td')
    expect(positive).to_have_text(["positive", "100", "22.6 %", "93.5 %", "+70.9 pts"])
    expect(card.get_by_text("Sample by sample (the first 2 of 200 rows)")).to_be_visible()

    # Every confusion cell reads at 4.5:1 or better (WCAG AA).
    for index in (0, 1):
        contrasts = card.get_by_test_id(f"confusion-{index}").evaluate(CELL_CONTRASTS)
        assert len(contrasts) == 4
        low = [(text, round(ratio, 2)) for text, ratio in contrasts if ratio < 4.5]
        assert low == [], low

    # Right and wrong are said, not only coloured.
    card.locator("summary", has_text="Sample by sample").click()
    first = card.locator(".samples-table tbody tr").first
    expect(first.locator("td").nth(2).get_by_role("img", name="wrong")).to_be_visible()
    expect(first.locator("td").nth(3).get_by_role("img", name="right")).to_be_visible()
    expect(card.locator(".samples-table").get_by_role("img", name="right")).to_have_count(3)
    expect(card.locator(".samples-table").get_by_role("img", name="wrong")).to_have_count(1)


def test_a_generators_card_keeps_its_words_and_marks_its_samples(page, live_server_url, alice):
    job = finished_job(alice, ready_sample(alice), name="Routing, quick")
    Evaluation.objects.create(
        job=job, trigger="automatic", sample_size=1, status="succeeded",
        finished_at=timezone.now(),
        results={
            "base": {"exact_match": 0.0, "rouge_l": 0.05, "val_loss": 6.2, "perplexity": 492.7},
            "fine_tuned": {"exact_match": 0.9, "rouge_l": 0.93, "val_loss": 0.4,
                           "perplexity": 1.49},
            "rows": 1250, "sample_size": 1,
            "samples": [{"prompt": "Where is my sofa?", "reference": "shipping",
                         "base": "", "fine_tuned": "shipping", "base_exact": False,
                         "fine_tuned_exact": True}],
        },
    )  # fmt: skip
    log_in(page, live_server_url, "alice")
    page.goto(f"{live_server_url}/jobs/{job.pk}/")
    card = page.get_by_test_id("job-evaluation")
    expect(card.get_by_test_id("evaluation-rows-note")).to_have_text(
        "1 of them generated from, per model"
    )
    expect(card).to_contain_text("ROUGE-L is the word overlap in order")
    expect(card.get_by_label("Rows to generate from")).to_be_visible()
    expect(card.get_by_role("heading", name="Evaluation", exact=True)).to_be_visible()
    card.locator("summary", has_text="Sample by sample").click()
    row = card.locator(".samples-table tbody tr").first
    expect(row.locator("td").nth(2)).to_have_text("✗ (empty)")
    expect(row.locator("td").nth(2).get_by_role("img", name="wrong")).to_be_visible()
    expect(row.locator("td").nth(3).get_by_role("img", name="right")).to_be_visible()
