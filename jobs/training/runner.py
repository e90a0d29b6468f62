"""One training run: data and model in, checkpoints, events and an adapter out."""

from __future__ import annotations

import contextlib
import json
import math
import time
from pathlib import Path

from . import data, models
from .api import TASKS, RunPaths, TrainingFailure, TrainingResult
from .callbacks import make_event_callback
from .checkpoints import CHECKPOINT_COMPLETE_MARKER, checkpoint_is_complete, latest_checkpoint  # noqa: F401
from .files import atomic_folder

OUT_OF_MEMORY = (
    "The run ran out of memory. Lower the batch size or the maximum sequence length, or use QLoRA."
)


def run_training(
    config,
    paths: RunPaths,
    *,
    task: str,
    on_event,
    should_stop,
    resume_from: Path | None = None,
    may_write=None,
) -> TrainingResult:
    """Train `paths.model_source` on `paths.train_file` as `config` says.

    Writes checkpoints to output_dir/checkpoints/ and, unless stopped, the
    adapter (or, for method "full", the whole model) to output_dir/adapter/,
    replacing any adapter there in one rename. Calls `on_event` from this
    thread; calls `should_stop` after every optimizer step and `may_write`
    (when given) before every checkpoint and the adapter is saved. Raises
    TrainingFailure for errors an analyst can act on; other exceptions
    propagate unchanged.
    """
    import torch

    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}")
    if resume_from is not None and not checkpoint_is_complete(resume_from):
        raise TrainingFailure(
            "training", f"The checkpoint {Path(resume_from).name} is incomplete and cannot resume."
        )
    try:
        with _quiet_progress_bars():
            if task == "causal-lm":
                trainer, facts = build_causal_lm_trainer(
                    config, paths, on_event, should_stop, may_write
                )
            else:
                trainer, facts = build_classification_trainer(
                    config, paths, on_event, should_stop, may_write
                )
            return _train(
                trainer, facts, config, paths, on_event=on_event, resume_from=resume_from,
                may_write=may_write,
            )  # fmt: skip
    except (torch.OutOfMemoryError, MemoryError) as exc:
        raise TrainingFailure("out_of_memory", OUT_OF_MEMORY) from exc


@contextlib.contextmanager
def _quiet_progress_bars():
    """Progress reaches the analyst as events; tqdm bars would only fill the worker's log."""
    from datasets import utils as datasets_utils
    from transformers.utils import logging as transformers_logging

    datasets_were_on = datasets_utils.is_progress_bar_enabled()
    transformers_were_on = transformers_logging.is_progress_bar_enabled()
    datasets_utils.disable_progress_bar()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if datasets_were_on:
            datasets_utils.enable_progress_bar()
        if transformers_were_on:
            transformers_logging.enable_progress_bar()


# --- building the trainers ------------------------------------------------------


def _common_arguments(config, paths: RunPaths, *, has_validation: bool) -> dict:
    """TrainingArguments shared by both tasks."""
    import torch

    t = config.training
    cuda = torch.cuda.is_available()
    evaluate_during = has_validation and t.eval_every > 0
    early_stopping = evaluate_during and t.early_stopping_patience > 0
    save_steps = t.save_every
    if early_stopping and (not save_steps or save_steps % t.eval_every):
        # Keeping the best model needs a checkpoint at each evaluation.
        save_steps = t.eval_every
    return {
        "output_dir": str(paths.checkpoints_dir),
        "seed": t.seed,
        "data_seed": t.seed,
        "learning_rate": t.learning_rate,
        "lr_scheduler_type": t.scheduler,
        "warmup_steps": t.warmup_ratio,  # below 1: a fraction of the steps
        "weight_decay": t.weight_decay,
        "per_device_train_batch_size": t.batch_size,
        "per_device_eval_batch_size": t.batch_size,
        "gradient_accumulation_steps": t.gradient_accumulation,
        "num_train_epochs": t.epochs,
        "max_steps": t.max_steps or -1,
        "logging_strategy": "steps",
        "logging_steps": t.logging_steps or 1,  # automatic: set once the steps are known
        "eval_strategy": "steps" if evaluate_during else "no",
        "eval_steps": t.eval_every if evaluate_during else None,
        # save_every 0: the callback saves once, at the last step.
        "save_strategy": "steps" if save_steps else "no",
        "save_steps": save_steps or 500,
        "save_total_limit": t.keep_checkpoints,
        "load_best_model_at_end": early_stopping,
        "metric_for_best_model": "eval_loss",
        "greater_is_better": False,
        "restore_callback_states_from_checkpoint": early_stopping,
        "use_cpu": not cuda,
        "bf16": models.compute_dtype_name() == "bfloat16",
        "activation_checkpointing": models.use_gradient_checkpointing(),
        "include_num_input_tokens_seen": "non_padding",
        "report_to": "none",
        "disable_tqdm": True,
        "push_to_hub": False,
        "save_only_model": False,
    }


def _callbacks(config, on_event, should_stop, may_write, *, eval_rows: int,
               early_stopping: bool):  # fmt: skip
    from transformers import EarlyStoppingCallback

    events = make_event_callback(
        on_event=on_event,
        should_stop=should_stop,
        eval_rows=eval_rows,
        save_at_end=not config.training.save_every,
        may_write=may_write,
    )
    callbacks = [events]
    if early_stopping:
        callbacks.append(EarlyStoppingCallback(config.training.early_stopping_patience))
    return events, callbacks


def _describe_loading(source: str, method: str) -> str:
    path = Path(source)
    # A packaged model sits in a folder named "model": name its package instead.
    name = (path.parent.name if path.name == "model" else path.name) if path.is_dir() else source
    dtype = models.compute_dtype_name()
    if method == "qlora":
        return f"Loading base model {name} in 4-bit nf4 (compute {dtype})"
    if method == "full":
        return f"Loading base model {name} in float32 for a full fine-tune"
    return f"Loading base model {name} in {dtype}"


def _facts(tokenizer, events, labels, eval_rows) -> dict:
    """What `_train` and `_save_adapter` need to know of a built trainer."""
    return {
        "tokenizer": tokenizer,
        "events": events,
        "labels": labels,
        "has_validation": eval_rows is not None,
        "eval_rows": len(eval_rows or []),
    }


def build_causal_lm_trainer(config, paths: RunPaths, on_event, should_stop, may_write=None):
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer
    from trl.chat_template_utils import has_generation_markers

    t = config.training
    method = config.model.method
    tokenizer = models.load_tokenizer(paths.model_source)
    if not tokenizer.chat_template:
        raise models.model_load_failure("its tokenizer has no chat template, which chat data needs")
    completions = t.loss_on == "completions"
    # Templates with {% generation %} markers give TRL the assistant mask; for
    # the rest (most Hub models) the last turn becomes a completion.
    markers = has_generation_markers(tokenizer.chat_template)
    prompt_completion = completions and not markers

    train_rows = data.chat_rows(
        data.read_records(paths.train_file, what="training file"),
        what="training file",
        prompt_completion=prompt_completion,
    )
    eval_rows = None
    if paths.validation_file is not None:
        eval_rows = data.chat_rows(
            data.read_records(paths.validation_file, what="validation file"),
            what="validation file",
            prompt_completion=prompt_completion,
        )

    on_event({"kind": "log", "message": _describe_loading(paths.model_source, method)})
    model = models.load_model(paths.model_source, task="causal-lm", method=method)

    has_validation = eval_rows is not None
    common = _common_arguments(config, paths, has_validation=has_validation)
    args = SFTConfig(
        **common,
        max_length=t.max_seq_length,
        packing=t.packing,
        packing_strategy=models.packing_strategy(),
        assistant_only_loss=completions and markers,
        completion_only_loss=prompt_completion,
        prediction_loss_only=True,  # eval needs the loss; logits would cost a second forward
        dataset_num_proc=None,
    )
    events, callbacks = _callbacks(
        config,
        on_event,
        should_stop,
        may_write,
        eval_rows=len(eval_rows or []),
        early_stopping=common["load_best_model_at_end"],
    )
    on_event({"kind": "log", "message": f"Tokenising {len(train_rows):,} rows"})
    try:
        trainer = SFTTrainer(
            model=model,
            args=args,
            train_dataset=Dataset.from_list(train_rows),
            eval_dataset=Dataset.from_list(eval_rows) if has_validation else None,
            processing_class=tokenizer,
            peft_config=models.lora_config(config, task="causal-lm") if method != "full" else None,
            callbacks=callbacks,
        )
    except IndexError as exc:
        # datasets/TRL index into the first row of a dataset that filtering emptied.
        raise _nothing_fits(t.max_seq_length) from exc
    if len(trainer.train_dataset) == 0:
        raise _nothing_fits(t.max_seq_length)
    if not t.packing and len(trainer.train_dataset) < len(train_rows):
        dropped = len(train_rows) - len(trainer.train_dataset)
        on_event(
            {
                "kind": "log",
                "message": f"Left out {dropped:,} rows whose prompt fills all "
                f"{t.max_seq_length} tokens",
            }
        )
    if models.compute_dtype_name() == "float32":
        models.trainable_in_float32(trainer.model)
    return trainer, _facts(tokenizer, events, None, eval_rows)


def _nothing_fits(max_length: int) -> TrainingFailure:
    return TrainingFailure(
        "dataset",
        f"No training row leaves room for an answer within {max_length} tokens; "
        "raise the maximum sequence length.",
    )


def build_classification_trainer(config, paths: RunPaths, on_event, should_stop,
                                 may_write=None):  # fmt: skip
    import numpy as np
    from datasets import Dataset
    from peft import get_peft_model
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    t = config.training
    method = config.model.method
    tokenizer = models.load_tokenizer(paths.model_source)
    train_rows = data.classification_rows(
        data.read_records(paths.train_file, what="training file"), what="training file"
    )
    labels = data.label_list(train_rows)
    eval_rows = None
    if paths.validation_file is not None:
        eval_rows = data.classification_rows(
            data.read_records(paths.validation_file, what="validation file"),
            what="validation file",
        )
        data.check_labels(eval_rows, labels, what="validation file")

    on_event({"kind": "log", "message": _describe_loading(paths.model_source, method)})
    model = models.load_model(
        paths.model_source, task="sequence-classification", method=method, labels=labels
    )
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    if method != "full":
        # task_type SEQ_CLS puts the new classifier head in modules_to_save.
        model = get_peft_model(model, models.lora_config(config, task="sequence-classification"))
        models.trainable_in_float32(model)

    label_ids = {label: i for i, label in enumerate(labels)}

    def tokenise(batch):
        encoded = tokenizer(batch["text"], truncation=True, max_length=t.max_seq_length)
        encoded["labels"] = [label_ids[label] for label in batch["label"]]
        return encoded

    def as_dataset(rows):
        return Dataset.from_list(rows).map(tokenise, batched=True, remove_columns=["text", "label"])

    on_event({"kind": "log", "message": f"Tokenising {len(train_rows):,} rows"})
    has_validation = eval_rows is not None
    common = _common_arguments(config, paths, has_validation=has_validation)
    events, callbacks = _callbacks(
        config,
        on_event,
        should_stop,
        may_write,
        eval_rows=len(eval_rows or []),
        early_stopping=common["load_best_model_at_end"],
    )

    def accuracy(prediction):
        predicted = np.argmax(prediction.predictions, axis=-1)
        return {"accuracy": float((predicted == prediction.label_ids).mean())}

    trainer = Trainer(
        model=model,
        args=TrainingArguments(**common, remove_unused_columns=False),
        train_dataset=as_dataset(train_rows),
        eval_dataset=as_dataset(eval_rows) if has_validation else None,
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=accuracy,
        callbacks=callbacks,
    )
    return trainer, _facts(tokenizer, events, labels, eval_rows)


# --- running --------------------------------------------------------------------


def planned_steps(trainer, config) -> int:
    """Optimizer steps the trainer will run (the HF Trainer's own arithmetic)."""
    t = config.training
    if t.max_steps > 0:
        return t.max_steps
    batches = math.ceil(len(trainer.train_dataset) / t.batch_size)
    per_epoch = max(1, math.ceil(batches / t.gradient_accumulation))
    return math.ceil(per_epoch * t.epochs)


def _train(trainer, facts, config, paths: RunPaths, *, on_event, resume_from, may_write=None):
    from transformers import PrinterCallback

    from jobs.config import automatic_logging_steps

    total = planned_steps(trainer, config)
    if not config.training.logging_steps:
        trainer.args.logging_steps = automatic_logging_steps(total)
    events = facts["events"]
    # Metrics reach the analyst as events, not as printed dicts.
    trainer.remove_callback(PrinterCallback)
    started = time.monotonic()
    tokens_before = _tokens_in_checkpoint(resume_from)
    output = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    state = trainer.state
    if events.stopped:
        return TrainingResult(
            stopped=True,
            final_step=state.global_step,
            total_steps=state.max_steps,
            trained_tokens=state.num_input_tokens_seen,
            metrics=_metrics(state, output.metrics, started, val=None),
            adapter_dir=None,
        )
    final_eval = None
    if facts["has_validation"]:
        if trainer.args.eval_strategy == "no" or trainer.args.load_best_model_at_end:
            # Evaluate once at the end (or the best model that was kept).
            on_event({"kind": "log", "message": f"Evaluating on {facts['eval_rows']:,} rows"})
            final_eval = trainer.evaluate()
        else:
            final_eval = _last_eval(state)
    metrics = _metrics(state, output.metrics, started, val=final_eval)
    metrics["tokens_per_second"] = round(
        (state.num_input_tokens_seen - tokens_before) / max(output.metrics["train_runtime"], 1e-9),
        1,
    )
    if may_write is not None and not may_write():
        # The run lost its lease while it trained: the adapter is not its to write.
        return TrainingResult(
            stopped=True, final_step=state.global_step, total_steps=state.max_steps,
            trained_tokens=state.num_input_tokens_seen, metrics=metrics, adapter_dir=None,
        )  # fmt: skip
    adapter_dir = _save_adapter(trainer, facts, config, paths, metrics)
    on_event({"kind": "log", "message": f"Saved the adapter at step {state.global_step}"})
    return TrainingResult(
        stopped=False,
        final_step=state.global_step,
        total_steps=state.max_steps,
        trained_tokens=state.num_input_tokens_seen,
        metrics=metrics,
        adapter_dir=adapter_dir,
    )


def _tokens_in_checkpoint(checkpoint: Path | None) -> int:
    if checkpoint is None:
        return 0
    state = json.loads((Path(checkpoint) / CHECKPOINT_COMPLETE_MARKER).read_text())
    return int(state.get("num_input_tokens_seen", 0))


def _last_eval(state) -> dict | None:
    evaluations = [entry for entry in state.log_history if "eval_loss" in entry]
    return evaluations[-1] if evaluations else None


def _metrics(state, train_output: dict, started: float, *, val: dict | None) -> dict:
    train_losses = [entry["loss"] for entry in state.log_history if "loss" in entry]
    val_losses = [entry["eval_loss"] for entry in state.log_history if "eval_loss" in entry]
    runtime = time.monotonic() - started
    metrics = {
        "train_loss": train_losses[-1] if train_losses else None,
        "mean_train_loss": train_output.get("train_loss"),
        "val_loss": val["eval_loss"] if val else None,
        "best_val_loss": min(val_losses) if val_losses else None,
        "runtime_seconds": round(runtime, 2),
        "steps": state.global_step,
        "trained_tokens": state.num_input_tokens_seen,
    }
    if val and "eval_accuracy" in val:
        metrics["accuracy"] = val["eval_accuracy"]
    return metrics


def _save_adapter(trainer, facts, config, paths: RunPaths, metrics: dict) -> Path:
    """Write the adapter beside its final place, then rename it in."""
    with atomic_folder(paths.adapter_dir) as staging:
        trainer.save_model(str(staging))
        facts["tokenizer"].save_pretrained(str(staging))
        (staging / "tailor_config.json").write_text(json.dumps(config.to_document(), indent=2))
        (staging / "tailor_metrics.json").write_text(json.dumps(metrics, indent=2))
        if facts["labels"] is not None:
            (staging / "tailor_labels.json").write_text(json.dumps(facts["labels"]))
    return paths.adapter_dir
