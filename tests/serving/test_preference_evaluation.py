"""Preference accuracy and the evaluation of a preference job against its
parent, on tailor-tiny with a DPO adapter trained here (a few steps).

HF_HUB_OFFLINE makes sure nothing is fetched.
"""

import dataclasses
import json

import pytest

from jobs.config import JobConfig
from jobs.training import RunPaths, run_training
from serving.engine import AdapterSpec, ModelPool, ModelSpec, ServingFailure
from serving.engine.preference import evaluate_preference, pairs_of, preference_accuracy
from tests.samples import ROOT, offline, write_jsonl  # noqa: F401

PREFERENCES = ROOT / "datasets_app" / "samples" / "support-preferences"
BIG = 10**10  # a memory budget nothing here reaches


def held_out_pairs(name: str = "validation", rows: int | None = None) -> list[dict]:
    lines = (PREFERENCES / f"{name}.jsonl").read_text().splitlines()[:rows]
    return [
        {"messages": row["prompt"], "chosen": row["chosen"], "rejected": row["rejected"]}
        for row in map(json.loads, lines)
    ]


@pytest.fixture(scope="module")
def dpo_adapter(demo_models, tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("dpo")
    config = JobConfig(name="dpo for evaluation")
    config.objective, config.model.method = "dpo", "lora"
    config.lora.rank, config.lora.alpha = 8, 16
    config.training = dataclasses.replace(
        config.training, max_steps=4, batch_size=16, max_seq_length=96, learning_rate=3e-3,
        warmup_ratio=0.0, logging_steps=2,
    )  # fmt: skip
    paths = RunPaths(
        str(demo_models.tiny_path()),
        write_jsonl(folder / "train.jsonl", held_out_pairs("train", 64)),
        None,
        folder / "job",
    )
    result = run_training(
        config, paths, task="causal-lm", on_event=lambda event: None, should_stop=lambda: False
    )
    return str(result.adapter_dir)


def direct_accuracy(demo_models, adapter: str | None, records: list[dict]) -> dict:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = demo_models.tiny_path()
    model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
    if adapter is not None:
        model = PeftModel.from_pretrained(model, adapter)
    return preference_accuracy(model.eval(), AutoTokenizer.from_pretrained(source), records)


def test_an_untrained_model_prefers_either_answer_about_as_often(demo_models):
    figures = direct_accuracy(demo_models, None, held_out_pairs())
    assert figures["pairs"] == 100
    assert 0.3 <= figures["accuracy"] <= 0.7
    assert abs(figures["mean_margin"]) < 0.1


@pytest.mark.training
def test_the_evaluation_sets_the_tuned_model_against_the_base_it_started_from(
    demo_models, dpo_adapter
):
    rows = held_out_pairs(rows=40)
    progress = []
    results = evaluate_preference(
        ModelPool(BIG),
        ModelSpec(str(demo_models.tiny_path()), "causal-lm"),
        AdapterSpec("ft_dpo", dpo_adapter),
        rows,
        sample_size=5,
        on_progress=lambda done, total: progress.append((done, total)),
    )
    base = direct_accuracy(demo_models, None, rows)
    tuned = direct_accuracy(demo_models, dpo_adapter, rows)
    assert results["compared_with"] == "base"
    assert results["rows"] == 40 and results["sample_size"] == 5
    for key, expected in (("base", base), ("fine_tuned", tuned)):
        assert results[key]["preference_accuracy"] == expected["accuracy"]
        assert results[key]["mean_margin"] == pytest.approx(expected["mean_margin"], abs=1e-5)
    assert progress[-1] == (40, 40)
    sample = results["samples"][0]
    assert sample["prompt"] == rows[0]["messages"][-1]["content"]
    assert (sample["reference"], sample["rejected"]) == (rows[0]["chosen"], rows[0]["rejected"])
    for key in ("base", "fine_tuned"):
        assert sample[key] == (rows[0]["chosen"] if sample[f"{key}_exact"] else rows[0]["rejected"])


@pytest.mark.training
def test_a_job_compared_with_its_parent_adapter_scores_the_parent_not_the_base(
    demo_models, dpo_adapter
):
    rows = held_out_pairs(rows=24)
    # The same adapter as its own parent: both sides must score alike.
    results = evaluate_preference(
        ModelPool(BIG),
        ModelSpec(str(demo_models.tiny_path()), "causal-lm"),
        AdapterSpec("ft_child", dpo_adapter),
        rows,
        parent=AdapterSpec("ft_parent", dpo_adapter),
    )
    assert results["compared_with"] == "parent"
    assert results["base"]["preference_accuracy"] == results["fine_tuned"]["preference_accuracy"]
    assert results["base"]["mean_margin"] == pytest.approx(results["fine_tuned"]["mean_margin"])
    base = direct_accuracy(demo_models, None, rows)
    assert results["base"]["mean_margin"] != pytest.approx(base["mean_margin"])


def test_feedback_rows_pair_each_good_answer_with_each_bad_one_to_the_same_prompt():
    ask = [{"role": "user", "content": "Where is my parcel?"}]
    other = [{"role": "user", "content": "I was charged twice."}]
    rows = [
        {"messages": ask, "completion": "Shipping will help.", "label": True},
        {"messages": ask, "completion": "Billing will help.", "label": False},
        {"messages": ask, "completion": "Account will help.", "label": False},
        {"messages": other, "completion": "Billing will help.", "label": True},
    ]
    assert pairs_of(rows) == [
        {"messages": ask, "chosen": "Shipping will help.", "rejected": "Billing will help."},
        {"messages": ask, "chosen": "Shipping will help.", "rejected": "Account will help."},
    ]


def test_a_row_that_is_neither_a_pair_nor_feedback_is_refused_with_its_number(demo_models):
    rows = [*held_out_pairs(rows=2), {"messages": [{"role": "user", "content": "Hi"}]}]
    with pytest.raises(ServingFailure) as refused:
        evaluate_preference(
            ModelPool(BIG),
            ModelSpec(str(demo_models.tiny_path()), "causal-lm"),
            AdapterSpec("ft_none", "/nowhere"),
            rows,
        )
    assert refused.value.code == "bad_input"
    assert refused.value.message == (
        "Row 3 of the validation set is neither a preference pair (a prompt, a chosen and a "
        "rejected answer) nor an answer marked good or bad."
    )
