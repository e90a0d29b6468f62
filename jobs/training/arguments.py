"""What every objective's trainer is built from: the TrainingArguments they
share, their callbacks and the line that says what is loaded."""

from __future__ import annotations

from pathlib import Path

from jobs.vocabulary import Adapter

from . import loading
from .callbacks import make_event_callback
from .contract import RunPaths


def common_arguments(config, paths: RunPaths, *, has_validation: bool) -> dict:
    """TrainingArguments shared by every objective."""
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
        "bf16": loading.compute_dtype_name() == "bfloat16",
        "activation_checkpointing": loading.use_gradient_checkpointing(),
        "include_num_input_tokens_seen": "non_padding",
        "report_to": "none",
        "disable_tqdm": True,
        "push_to_hub": False,
        "save_only_model": False,
    }


def callbacks(config, common: dict, run, *, eval_rows, eval_metrics=()):
    """The event callback (and early stopping, when `common` keeps the best
    model): `(events, callbacks)` for the trainer of `run` (an objective's
    `Run`); evaluations report `eval_metrics` beside the loss."""
    from transformers import EarlyStoppingCallback

    events = make_event_callback(
        on_event=run.on_event,
        should_stop=run.should_stop,
        eval_rows=len(eval_rows or []),
        save_at_end=not config.training.save_every,
        may_write=run.may_write,
        eval_metrics=eval_metrics,
    )
    callbacks = [events]
    if common["load_best_model_at_end"]:
        callbacks.append(EarlyStoppingCallback(config.training.early_stopping_patience))
    return events, callbacks


def describe_loading(source: str, method: str) -> str:
    path = Path(source)
    # A packaged model sits in a folder named "model": name its package instead.
    name = (path.parent.name if path.name == "model" else path.name) if path.is_dir() else source
    dtype = loading.compute_dtype_name()
    if method == Adapter.QLORA:
        return f"Loading base model {name} in 4-bit nf4 (compute {dtype})"
    if method == Adapter.FULL:
        return f"Loading base model {name} in float32 for a full fine-tune"
    return f"Loading base model {name} in {dtype}"
