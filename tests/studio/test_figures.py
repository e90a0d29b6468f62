"""studio/figures.py and its template filters: each kind of figure reads as
people read it, an unknown name still reads, and no value reads "—"."""

import pytest
from django.template import Context, Template

from studio import figures


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("train_loss", "Train loss"),
        ("mean_train_loss", "Mean train loss"),
        ("val_loss", "Validation loss"),
        ("best_val_loss", "Best validation loss"),
        ("runtime_seconds", "Runtime"),
        ("steps", "Steps"),
        ("trained_tokens", "Trained tokens"),
        ("tokens_per_second", "Speed"),
        ("accuracy", "Accuracy"),
        ("exact_match", "Exact match"),
        ("rouge_l", "ROUGE-L"),
        ("macro_f1", "Macro-F1"),
        ("perplexity", "Perplexity"),
        ("rows", "Rows"),
        ("learning_rate_at_end", "Learning rate at end"),  # unknown: its words
        ("grad_norm", "Grad norm"),
    ],
)
def test_each_name_has_a_label(name, label):
    assert figures.label(name) == label


@pytest.mark.parametrize(
    ("name", "value", "shown"),
    [
        pytest.param("train_loss", 1.83694567, "1.8369", id="loss"),
        pytest.param("mean_train_loss", 2.75344, "2.7534", id="loss-mean"),
        pytest.param("val_loss", 0, "0.0000", id="loss-zero"),
        pytest.param("steps", 75.0, "75", id="count-float"),
        pytest.param("steps", 75, "75", id="count"),
        pytest.param("trained_tokens", 54692, "54,692", id="count-thousands"),
        pytest.param("rows", 1234567, "1,234,567", id="count-millions"),
        pytest.param("runtime_seconds", 294.21, "4 min 54 s", id="duration-minutes"),
        pytest.param("runtime_seconds", 41.6, "42 s", id="duration-seconds"),
        pytest.param("runtime_seconds", 7384, "2 h 03 min", id="duration-hours"),
        pytest.param("accuracy", 0.95, "95.0 %", id="rate"),
        pytest.param("exact_match", 1, "100.0 %", id="rate-all"),
        pytest.param("rouge_l", 0.12345, "12.3 %", id="rate-rounded"),
        pytest.param("tokens_per_second", 1864.3, "1,864 tokens/s", id="speed"),
        pytest.param("perplexity", 492.7, "492.70", id="score"),
        pytest.param("perplexity", 12345.678, "12,345.68", id="score-thousands"),
        pytest.param("grad_norm", 0.123456, "0.1235", id="unknown-fraction"),
        pytest.param("epochs_done", 3.0, "3", id="unknown-whole"),
        pytest.param("epochs_done", 12000, "12,000", id="unknown-thousands"),
        pytest.param("train_loss", None, "—", id="none"),
        pytest.param("grad_norm", None, "—", id="unknown-none"),
        pytest.param("train_loss", float("nan"), "nan", id="nan-as-stored"),
        pytest.param("note", "early stop", "early stop", id="text-as-stored"),
        pytest.param("flag", True, "True", id="bool-as-stored"),
    ],
)
def test_each_kind_reads_as_people_read_it(name, value, shown):
    assert figures.value(name, value) == shown


@pytest.mark.parametrize(
    ("name", "difference", "shown"),
    [
        pytest.param("exact_match", 0.9, "+90.0 pts", id="rate-up"),
        pytest.param("accuracy", -0.125, "-12.5 pts", id="rate-down"),
        pytest.param("val_loss", -5.8, "-5.8000", id="loss-down"),
        pytest.param("perplexity", -491.21, "-491.21", id="score"),
        pytest.param("rows", 1500, "+1,500", id="count"),
        pytest.param("grad_norm", 0.5, "+0.5000", id="unknown"),
        pytest.param("accuracy", None, "—", id="none"),
    ],
)
def test_a_change_is_signed_and_a_rates_is_in_points(name, difference, shown):
    assert figures.change(name, difference) == shown


def test_the_filters_give_the_label_the_value_and_the_change():
    template = Template(
        "{% load figures %}{{ name|figure_label }}|{{ value|figure:name }}|"
        "{{ difference|figure_change:name }}|{{ missing|figure:'steps' }}"
    )
    shown = template.render(Context({"name": "trained_tokens", "value": 54692.0, "difference": 10}))
    assert shown == "Trained tokens|54,692|+10|—"


def test_figures_come_in_the_tables_order_whatever_order_the_document_kept():
    # jsonb keeps no key order: the Finished card must read the same on PostgreSQL.
    from studio.figures import in_order

    stored = {"grad_norm": 0.5, "steps": 75, "zeta": 1, "train_loss": 1.8, "runtime_seconds": 9}
    assert [name for name, _ in in_order(stored)] == [
        "train_loss", "runtime_seconds", "steps", "grad_norm", "zeta",
    ]  # fmt: skip
