"""Preference tuning (DPO, KTO) and continuing from an adapter, on tailor-tiny:
real training, held-out preference accuracy measured before and after.

The sample test is the long one (the Quick preset's whole pass); the others
run a few steps. HF_HUB_OFFLINE makes sure nothing is fetched.
"""

import dataclasses
import json
import math
import statistics
import time
from pathlib import Path

import pytest

from jobs.config import DatasetFacts, JobConfig, ModelFacts, preset_overlay
from jobs.training import RunPaths, TrainingFailure, run_training
from jobs.training.loop import build_trainer
from jobs.vocabulary import PREFERENCE
from tests.samples import ROOT, offline, routing_rows, sentiment_rows, write_jsonl  # noqa: F401

PREFERENCES = ROOT / "datasets_app" / "samples" / "support-preferences"
TINY = {
    # tailor-tiny's catalog entry (jobs/services/catalog.py), as planning reads it.
    "task": "causal-lm",
    "parameters": 3_572_992,
    "context_length": 512,
    "characters_per_token": 1.6,
    "learning_rate": 3e-3,
    "batch_size": 16,
    "target_modules": (),
}


def canonical_pairs(name: str, rows: int | None = None) -> list[dict]:
    """The sample's `name` file as canonical preference records (what the
    datasets engine writes from its prompt/chosen/rejected rows)."""
    lines = (PREFERENCES / f"{name}.jsonl").read_text().splitlines()[:rows]
    return [
        {"messages": row["prompt"], "chosen": row["chosen"], "rejected": row["rejected"]}
        for row in map(json.loads, lines)
    ]


def as_feedback(pairs: list[dict]) -> list[dict]:
    """Each pair as two answers marked good and bad (KTO's canonical records)."""
    return [
        {"messages": pair["messages"], "completion": pair[side], "label": side == "chosen"}
        for pair in pairs
        for side in ("chosen", "rejected")
    ]


class Recorder:
    def __init__(self):
        self.events: list[dict] = []

    def __call__(self, event: dict) -> None:
        self.events.append(event)

    def metrics(self, *, evaluation: bool) -> list[dict]:
        key = "val_loss" if evaluation else "train_loss"
        return [e for e in self.events if e["kind"] == "metric" and e.get(key) is not None]

    def logs(self) -> list[str]:
        return [e["message"] for e in self.events if e["kind"] == "log"]


def train(config, paths):
    recorder = Recorder()
    result = run_training(
        config, paths, task="causal-lm", on_event=recorder, should_stop=lambda: False
    )
    return result, recorder


def short_config(objective: str, **training) -> JobConfig:
    config = JobConfig(name=f"{objective} test")
    config.objective = objective
    config.model.base_model = "tailor-tiny"
    config.model.method = "lora"
    config.lora.rank, config.lora.alpha = 8, 16
    defaults = {"max_steps": 3, "batch_size": 8, "max_seq_length": 96, "learning_rate": 3e-3,
                "warmup_ratio": 0.0, "logging_steps": 1}  # fmt: skip
    config.training = dataclasses.replace(config.training, **{**defaults, **training})
    return config


def load_tiny(demo_models):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = demo_models.tiny_path()
    return (
        AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32),
        AutoTokenizer.from_pretrained(source),
    )


def accuracy_of(demo_models, adapter: Path | None, records: list[dict]) -> dict:
    from peft import PeftModel

    from serving.engine.preference import preference_accuracy

    model, tokenizer = load_tiny(demo_models)
    if adapter is not None:
        model = PeftModel.from_pretrained(model, str(adapter))
    return preference_accuracy(model.eval(), tokenizer, records)


# --- the bundled sample, with the Quick preset's figures ------------------------------------


def quick_preset(train_records: list[dict], validation_rows: int) -> JobConfig:
    """The Quick preset as a no-code user gets it for this data on tailor-tiny (LoRA)."""
    sizes = [
        sum(len(m["content"]) for m in r["messages"]) + max(len(r["chosen"]), len(r["rejected"]))
        for r in train_records
    ]
    facts = DatasetFacts(
        rows=len(train_records), validation_rows=validation_rows,
        mean_characters=statistics.mean(sizes), p95_characters=statistics.quantiles(sizes, n=20)[-1],
        task=PREFERENCE,
    )  # fmt: skip
    overlay = preset_overlay("quick", facts, ModelFacts(**TINY), "lora")
    config = JobConfig(name="support preferences")
    config.objective = "dpo"
    config.model.base_model, config.model.method = "tailor-tiny", "lora"
    config.training = dataclasses.replace(config.training, **overlay["training"])
    config.preference = dataclasses.replace(config.preference, **overlay["preference"])
    return config


@pytest.mark.training
@pytest.mark.timeout(900)
def test_dpo_on_the_preference_sample_takes_held_out_accuracy_from_a_half_to_above_0_8(
    demo_models, tmp_path
):
    train_records, held_out = canonical_pairs("train"), canonical_pairs("validation")
    config = quick_preset(train_records, len(held_out))
    t = config.training
    # The preset's figures for preference data: half the model's LoRA rate, beta 0.1.
    assert (t.learning_rate, config.preference.beta) == (1.5e-3, 0.1)
    assert (t.epochs, t.max_steps, t.batch_size) == (1.0, 0, 16)
    paths = RunPaths(
        str(demo_models.tiny_path()),
        write_jsonl(tmp_path / "train.jsonl", train_records),
        write_jsonl(tmp_path / "validation.jsonl", held_out),
        tmp_path / "job",
    )

    before = accuracy_of(demo_models, None, held_out)
    started = time.monotonic()
    result, recorder = train(config, paths)
    seconds = time.monotonic() - started
    after = accuracy_of(demo_models, result.adapter_dir, held_out)
    print(
        f"\nsupport-preferences, Quick DPO on tailor-tiny (LoRA): held-out preference accuracy "
        f"{before['accuracy']:.2f} -> {after['accuracy']:.2f} in {result.final_step} steps, "
        f"{seconds:.0f} s (in-training: {result.metrics['preference_accuracy']:.2f})"
    )
    assert 0.3 <= before["accuracy"] <= 0.7
    assert after["accuracy"] >= 0.8
    assert after["pairs"] == 100 and after["mean_margin"] > before["mean_margin"]
    assert result.final_step == math.ceil(800 / 16)

    steps = recorder.metrics(evaluation=False)
    assert all(
        math.isfinite(m["reward_margin"]) and 0 <= m["preference_accuracy"] <= 1 for m in steps
    )
    assert steps[-1]["reward_margin"] > steps[0]["reward_margin"]
    (final,) = recorder.metrics(evaluation=True)
    assert final["reward_margin"] > 0 and final["preference_accuracy"] >= 0.7
    assert result.metrics["reward_margin"] == final["reward_margin"]
    assert result.metrics["preference_accuracy"] == final["preference_accuracy"]
    assert "Tokenising 800 pairs" in recorder.logs()


# --- KTO on feedback ------------------------------------------------------------------------


@pytest.mark.training
def test_kto_trains_on_answers_marked_good_or_bad_and_reports_the_reward_margin(
    demo_models, tmp_path
):
    feedback = as_feedback(canonical_pairs("train", 24))
    paths = RunPaths(
        str(demo_models.tiny_path()),
        write_jsonl(tmp_path / "train.jsonl", feedback),
        write_jsonl(tmp_path / "validation.jsonl", as_feedback(canonical_pairs("validation", 8))),
        tmp_path / "job",
    )
    result, recorder = train(short_config("kto", max_steps=2), paths)
    assert "Tokenising 48 answers" in recorder.logs()
    assert [m["step"] for m in recorder.metrics(evaluation=False)] == [1, 2]
    (final,) = recorder.metrics(evaluation=True)
    assert math.isfinite(final["val_loss"]) and math.isfinite(final["reward_margin"])
    assert result.metrics["reward_margin"] == final["reward_margin"]
    assert (result.adapter_dir / "adapter_model.safetensors").exists()


@pytest.mark.training
def test_kto_refuses_feedback_that_marks_every_answer_good(demo_models, tmp_path):
    good_only = [r for r in as_feedback(canonical_pairs("train", 6)) if r["label"]]
    paths = RunPaths(
        str(demo_models.tiny_path()), write_jsonl(tmp_path / "train.jsonl", good_only), None,
        tmp_path / "job",
    )  # fmt: skip
    with pytest.raises(TrainingFailure) as failure:
        train(short_config("kto"), paths)
    assert failure.value.code == "dataset"
    assert failure.value.message == (
        "The training file needs answers marked good and answers marked bad to learn from; "
        "it has only one kind."
    )


@pytest.mark.training
def test_a_pair_without_a_rejected_answer_is_a_dataset_failure(demo_models, tmp_path):
    pairs = canonical_pairs("train", 3)
    del pairs[1]["rejected"]
    paths = RunPaths(
        str(demo_models.tiny_path()), write_jsonl(tmp_path / "train.jsonl", pairs), None,
        tmp_path / "job",
    )  # fmt: skip
    with pytest.raises(TrainingFailure) as failure:
        train(short_config("dpo"), paths)
    assert failure.value.code == "dataset"
    assert failure.value.message == (
        "Row 2 of the training file needs prompt messages ending with the user's turn, "
        "a chosen answer and a rejected answer."
    )


# --- continuing from an adapter -------------------------------------------------------------


@pytest.fixture(scope="module")
def parent(demo_models, tmp_path_factory):
    """A supervised job's adapter on support routing: what a DPO job goes on from."""
    folder = tmp_path_factory.mktemp("parent")
    config = short_config("supervised", max_steps=6, batch_size=16, logging_steps=3)
    config.name = "routing parent"
    paths = RunPaths(
        str(demo_models.tiny_path()),
        write_jsonl(folder / "train.jsonl", routing_rows("train", 96)),
        None,
        folder / "job",
    )
    result, _ = train(config, paths)
    return result.adapter_dir


def lora_weights(model, adapter: str = "default") -> dict:
    return {
        name.replace(f".{adapter}.", "."): param.detach().clone()
        for name, param in model.named_parameters()
        if f".{adapter}." in name
    }


def saved_weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "adapter_model.safetensors"))


def same_tensors(loaded: dict, saved: dict) -> bool:
    import torch

    # PEFT saves "...lora_A.weight" for the model's "...lora_A.default.weight".
    by_name = {name.removeprefix("base_model.model."): value for name, value in saved.items()}
    mine = {name.removeprefix("base_model.model."): value for name, value in loaded.items()}
    return mine.keys() == by_name.keys() and all(
        torch.equal(mine[name], by_name[name]) for name in mine
    )


@pytest.mark.training
def test_dpo_continues_from_a_supervised_adapter_against_it_as_the_reference(
    demo_models, parent, tmp_path
):
    pairs = canonical_pairs("train", 32)
    paths = RunPaths(
        str(demo_models.tiny_path()), write_jsonl(tmp_path / "train.jsonl", pairs), None,
        tmp_path / "job", start_adapters=(parent,),
    )  # fmt: skip
    config = short_config("dpo", max_steps=2)
    recorder = Recorder()
    built = build_trainer(
        config, paths, task="causal-lm", on_event=recorder, should_stop=lambda: False
    )
    # The model starts as the parent's adapter (trainable), and TRL's frozen
    # reference copy ("ref") holds the same weights.
    assert same_tensors(lora_weights(built.trainer.model), saved_weights(parent))
    assert same_tensors(lora_weights(built.trainer.model, "ref"), saved_weights(parent))
    parameters = dict(built.trainer.model.named_parameters())
    assert all(p.requires_grad for name, p in parameters.items() if ".default." in name)
    assert not any(p.requires_grad for name, p in parameters.items() if ".ref." in name)
    assert "Continuing from the adapter of routing parent" in recorder.logs()

    result, recorder = train(config, paths)
    first = recorder.metrics(evaluation=False)[0]
    # Policy and reference are one model before the first update: no margin, loss log 2.
    assert first["reward_margin"] == 0.0
    assert first["train_loss"] == pytest.approx(math.log(2), abs=1e-4)
    # The adapter saved is the trained one alone, with the parent's shape.
    assert not (result.adapter_dir / "ref").exists()
    trained = saved_weights(result.adapter_dir)
    assert trained.keys() == saved_weights(parent).keys()
    assert not same_tensors(trained, saved_weights(parent))


@pytest.mark.training
def test_a_qlora_dpo_job_continues_from_a_qlora_adapter(demo_models, tmp_path):
    tiny = str(demo_models.tiny_path())
    routing = write_jsonl(tmp_path / "routing.jsonl", routing_rows("train", 16))
    parent_config = short_config("supervised", max_steps=2)
    parent_config.model.method = "qlora"
    first, _ = train(parent_config, RunPaths(tiny, routing, None, tmp_path / "parent"))
    config = short_config("dpo", max_steps=2)
    config.model.method = "qlora"
    pairs = write_jsonl(tmp_path / "pairs.jsonl", canonical_pairs("train", 16))
    result, recorder = train(
        config, RunPaths(tiny, pairs, None, tmp_path / "child", start_adapters=(first.adapter_dir,))
    )
    steps = recorder.metrics(evaluation=False)
    assert steps[0]["reward_margin"] == 0.0 and math.isfinite(steps[-1]["train_loss"])
    assert (result.adapter_dir / "adapter_model.safetensors").exists()
    assert not (result.adapter_dir / "ref").exists()


@pytest.mark.training
def test_supervised_training_continues_from_an_adapter_with_its_weights(
    demo_models, parent, tmp_path
):
    paths = RunPaths(
        str(demo_models.tiny_path()),
        write_jsonl(tmp_path / "train.jsonl", routing_rows("train", 16)),
        None,
        tmp_path / "job",
        start_adapters=(parent,),
    )
    recorder = Recorder()
    config = short_config("supervised")
    config.lora.rank = 4  # the continued adapter keeps the parent's rank (8)
    built = build_trainer(
        config, paths, task="causal-lm", on_event=recorder, should_stop=lambda: False
    )
    weights = lora_weights(built.trainer.model)
    assert same_tensors(weights, saved_weights(parent))
    assert any(value.shape[0] == 8 for name, value in weights.items() if "lora_A" in name)
    assert "Continuing from the adapter of routing parent" in recorder.logs()


@pytest.mark.training
def test_a_classifier_continues_from_its_adapter_with_its_head_and_labels(demo_models, tmp_path):
    minilm = str(demo_models.minilm_path())
    reviews = write_jsonl(tmp_path / "reviews.jsonl", sentiment_rows("train", 32))
    config = short_config("classification", max_steps=2)
    config.model.base_model = "minilm-l6"
    config.lora.target_modules = ["query", "value"]
    first, _ = train_classifier(config, RunPaths(minilm, reviews, None, tmp_path / "parent"))
    recorder = Recorder()
    paths = RunPaths(minilm, reviews, None, tmp_path / "child", start_adapters=(first.adapter_dir,))
    built = build_trainer(
        config, paths, task="sequence-classification", on_event=recorder, should_stop=bool
    )
    assert built.labels == json.loads((first.adapter_dir / "tailor_labels.json").read_text())
    # The head PEFT keeps in modules_to_save is saved under its plain name.
    weights = {
        name.replace(".modules_to_save", ""): value
        for name, value in lora_weights(built.trainer.model).items()
    }
    assert same_tensors(weights, saved_weights(first.adapter_dir))
    assert "Continuing from the adapter of classification test" in recorder.logs()


def train_classifier(config, paths):
    recorder = Recorder()
    result = run_training(
        config, paths, task="sequence-classification", on_event=recorder, should_stop=bool
    )
    return result, recorder


@pytest.mark.training
def test_an_adapter_of_another_base_is_a_model_load_failure(demo_models, parent, tmp_path):
    paths = RunPaths(
        str(demo_models.tiny_path()),
        write_jsonl(tmp_path / "train.jsonl", canonical_pairs("train", 4)),
        None,
        tmp_path / "job",
        start_adapters=(parent,),
    )
    config = short_config("dpo")
    config.model.base_model = "smollm2-135m"
    with pytest.raises(TrainingFailure) as failure:
        train(config, paths)
    assert failure.value.code == "model_load"
    assert failure.value.message == (
        "The adapter of “routing parent” was trained on tailor-tiny, not on smollm2-135m: "
        "an adapter trains on only with its own base."
    )


# --- choosing the objective -----------------------------------------------------------------


def test_a_job_trains_with_the_objective_it_names_or_its_tasks_default():
    from jobs.training import objectives

    assert set(objectives.REGISTRY) == {"supervised", "classification", "dpo", "kto"}
    config = JobConfig()
    assert objectives.for_config(config, "causal-lm") is objectives.REGISTRY["supervised"]
    config.objective = "dpo"
    assert objectives.for_config(config, "causal-lm") is objectives.REGISTRY["dpo"]
    assert objectives.REGISTRY["dpo"].eval_metrics == ("reward_margin", "preference_accuracy")
    with pytest.raises(ValueError, match="objective 'dpo' does not train a 'sequence-class"):
        objectives.for_config(config, "sequence-classification")
    config.objective = "ranking"
    with pytest.raises(ValueError, match="unknown objective 'ranking'"):
        objectives.for_config(config, "causal-lm")
