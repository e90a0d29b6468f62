"""One training run: data and model in, checkpoints, events and an adapter out."""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import time
from pathlib import Path

from jobs.vocabulary import ObjectiveName

from . import data, objectives, trackers
from .callbacks import logged
from .checkpoints import CHECKPOINT_COMPLETE_MARKER, checkpoint_is_complete, latest_checkpoint  # noqa: F401
from .contract import RunPaths, TrainingFailure, TrainingResult
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
    tracker_settings: trackers.TrackerSettings | None = None,
) -> TrainingResult:
    """Train `paths.model_source` on `paths.train_file` as `config` says.

    Writes checkpoints to output_dir/checkpoints/ and, unless stopped, the
    adapter (or, for a full fine-tune, the whole model) to output_dir/adapter/,
    replacing any adapter there in one rename. Calls `on_event` from this
    thread; calls `should_stop` after every optimizer step and `may_write`
    (when given) before every checkpoint and the adapter is saved. Reports
    to the trackers `config.tracking` names, as `tracker_settings` allow
    (none without them; see trackers.py). Raises
    TrainingFailure for errors an analyst can act on; other exceptions
    propagate unchanged.
    """
    import torch

    if config.objective == ObjectiveName.MERGE:
        # A merge trains nothing: it combines the adapters of paths.start_adapters.
        from .merge import run_merge

        return run_merge(config, paths, on_event=on_event, may_write=may_write)
    if config.training.devices > 1 and "WORLD_SIZE" not in os.environ:
        # Several devices: this process becomes rank 0 of a group (distributed.py).
        from .distributed import run_on_devices

        return run_on_devices(
            config.training.devices, config, paths, task=task, on_event=on_event,
            should_stop=should_stop, resume_from=resume_from, may_write=may_write,
            tracker_settings=tracker_settings,
        )  # fmt: skip
    objective = objectives.for_config(config, task)
    if resume_from is not None and not checkpoint_is_complete(resume_from):
        raise TrainingFailure(
            "training", f"The checkpoint {Path(resume_from).name} is incomplete and cannot resume."
        )
    try:
        with _quiet_progress_bars():
            built = build_trainer(
                config, paths, task=task, on_event=on_event, should_stop=should_stop,
                may_write=may_write,
            )  # fmt: skip
            with trackers.reporting(
                built.trainer, config, tracker_settings, paths, on_event
            ) as reported:
                reported["result"] = _train(
                    built, objective, config, paths, on_event=on_event, resume_from=resume_from,
                    may_write=may_write,
                )  # fmt: skip
            return reported["result"]
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


# --- building the trainer -------------------------------------------------------


def build_trainer(config, paths: RunPaths, *, task: str, on_event, should_stop,
                  may_write=None) -> objectives.Built:  # fmt: skip
    """The trainer of the job's objective, on the job's files (each read once)."""
    objective = objectives.for_config(config, task)
    train_records = data.read_records(paths.train_file, what="training file")
    eval_records = None
    if paths.validation_file is not None:
        eval_records = data.read_records(paths.validation_file, what="validation file")
    run = objectives.Run(
        config=config, paths=paths, train_records=train_records, eval_records=eval_records,
        on_event=on_event, should_stop=should_stop, may_write=may_write,
    )  # fmt: skip
    return objective.build(run)


# --- running --------------------------------------------------------------------


def planned_steps(trainer, config) -> int:
    """Optimizer steps the trainer will run (the HF Trainer's own arithmetic)."""
    t = config.training
    if t.max_steps > 0:
        return t.max_steps
    # Each device of a multi-device run takes its own batch of the data.
    batches = math.ceil(len(trainer.train_dataset) / (t.batch_size * trainer.args.world_size))
    per_epoch = max(1, math.ceil(batches / t.gradient_accumulation))
    return math.ceil(per_epoch * t.epochs)


def _train(built, objective, config, paths: RunPaths, *, on_event, resume_from, may_write=None):
    from transformers import PrinterCallback

    from jobs.config import automatic_logging_steps

    trainer = built.trainer
    total = planned_steps(trainer, config)
    if not config.training.logging_steps:
        trainer.args.logging_steps = automatic_logging_steps(total)
    events = built.events
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
            metrics=_metrics(state, output.metrics, started, val=None, objective=objective),
            adapter_dir=None,
        )
    final_eval = None
    if built.has_validation:
        if trainer.args.eval_strategy == "no" or trainer.args.load_best_model_at_end:
            # Evaluate once at the end (or the best model that was kept).
            on_event({"kind": "log", "message": f"Evaluating on {built.eval_rows:,} rows"})
            final_eval = trainer.evaluate()
        else:
            final_eval = _last_eval(state)
    metrics = _metrics(state, output.metrics, started, val=final_eval, objective=objective)
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
    if not trainer.is_world_process_zero():
        # Another rank of a multi-device run (distributed.py): rank 0 writes the adapter.
        return TrainingResult(
            stopped=False, final_step=state.global_step, total_steps=state.max_steps,
            trained_tokens=state.num_input_tokens_seen, metrics=metrics, adapter_dir=None,
        )  # fmt: skip
    adapter_dir = _save_adapter(built, config, paths, metrics)
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


def _metrics(state, train_output: dict, started: float, *, val: dict | None, objective) -> dict:
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
    for name in objective.eval_metrics:
        if val and (value := logged(val, name, prefix="eval_")) is not None:
            metrics[name] = value
    return metrics


def _save_adapter(built, config, paths: RunPaths, metrics: dict) -> Path:
    """Write the adapter beside its final place, then rename it in."""
    with atomic_folder(paths.adapter_dir) as staging:
        built.trainer.save_model(str(staging))
        for name in _reference_adapters(built.trainer.model):
            # TRL's frozen copy of a continued adapter (objectives/preference.py):
            # the reference, not part of what the run made.
            shutil.rmtree(staging / name, ignore_errors=True)
        built.tokenizer.save_pretrained(str(staging))
        (staging / "tailor_config.json").write_text(json.dumps(config.to_document(), indent=2))
        (staging / "tailor_metrics.json").write_text(json.dumps(metrics, indent=2))
        if built.labels is not None:
            (staging / "tailor_labels.json").write_text(json.dumps(built.labels))
    return paths.adapter_dir


def _reference_adapters(model) -> list[str]:
    """A PeftModel's adapters beside the trained "default" (PEFT saves each in a subfolder)."""
    names = getattr(model, "peft_config", None) or {}
    return [name for name in names if name != "default"]
