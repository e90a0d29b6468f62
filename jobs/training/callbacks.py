"""The bridge from the HF Trainer's loop to Tailor's events and stop check."""

from __future__ import annotations

import math
import time
from pathlib import Path

# Figures a trainer logs under its own name, in Tailor's words: TRL's DPO and
# KTO trainers log the reward margin (chosen minus rejected, in beta-scaled
# log-ratios to the reference) and DPO the share of pairs whose chosen answer
# wins it. Metric events, final metrics and MetricPoint use the words.
TRAINER_NAMES = {"reward_margin": "rewards/margins", "preference_accuracy": "rewards/accuracies"}


def _finite(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def logged(logs: dict, name: str, *, prefix: str = "") -> float | None:
    """The figure `name` (Tailor's word) in a trainer's `logs`, or None;
    `prefix` "eval_" reads an evaluation's."""
    key = prefix + TRAINER_NAMES.get(name, name)
    return _finite(logs[key]) if key in logs else None


def make_event_callback(*, on_event, should_stop, eval_rows: int, save_at_end: bool,
                        may_write=None, eval_metrics=()):  # fmt: skip
    """A TrainerCallback instance (built here so that transformers loads lazily).

    `may_write()`, when given, is asked before every save: a run that may no
    longer write (it lost its lease) stops without saving. An evaluation's
    event carries the objective's `eval_metrics` (e.g. accuracy) beside the loss;
    a training step's carries the preference figures when the trainer logs them."""
    from transformers import TrainerCallback

    class EventCallback(TrainerCallback):
        """Metric events on log, checkpoint events on save, stop when asked.

        Runs in the trainer's thread: everything here is cheap.
        """

        def __init__(self):
            self.stopped = False
            self.started_at = time.monotonic()
            self.first_step = 0
            self.last_train_loss: float | None = None
            self.last_val_loss: float | None = None
            self.window_time = self.started_at
            self.window_tokens = 0

        def on_train_begin(self, args, state, control, **kwargs):
            self.started_at = self.window_time = time.monotonic()
            self.first_step = state.global_step
            self.window_tokens = state.num_input_tokens_seen
            on_event(
                {
                    "kind": "started",
                    "total_steps": state.max_steps,
                    "resumed_from_step": state.global_step,
                }
            )

        def on_step_end(self, args, state, control, **kwargs):
            if should_stop():
                self.stopped = True
                control.should_training_stop = True
                control.should_save = True  # keep the work done so far, to resume
                on_event({"kind": "log", "message": f"Stopping at step {state.global_step}"})
            elif save_at_end and state.global_step >= state.max_steps:
                control.should_save = True
            if control.should_save and may_write is not None and not may_write():
                self.stopped = True
                control.should_save = False
                control.should_training_stop = True
            if control.should_evaluate and eval_rows:
                on_event({"kind": "log", "message": f"Evaluating on {eval_rows:,} rows"})
            return control

        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = logs or {}
            now = time.monotonic()
            elapsed = now - self.started_at
            done = state.global_step - self.first_step
            remaining = max(0, state.max_steps - state.global_step)
            eta = elapsed / done * remaining if done > 0 else None
            event = {
                "kind": "metric",
                "step": state.global_step,
                "epoch": round(state.epoch or 0.0, 4),
                "elapsed": round(elapsed, 3),
                "eta": round(eta, 1) if eta is not None else None,
                "total_steps": state.max_steps,
                "tokens": state.num_input_tokens_seen,
            }
            if "loss" in logs:
                self.last_train_loss = _finite(logs["loss"])
                tokens = state.num_input_tokens_seen - self.window_tokens
                seconds = now - self.window_time
                self.window_time, self.window_tokens = now, state.num_input_tokens_seen
                event.update(
                    train_loss=self.last_train_loss,
                    val_loss=None,
                    learning_rate=_finite(logs.get("learning_rate")),
                    grad_norm=_finite(logs.get("grad_norm")),
                    tokens_per_second=round(tokens / seconds, 1) if seconds > 0 else None,
                )
                for name in TRAINER_NAMES:
                    if (value := logged(logs, name)) is not None:
                        event[name] = value
            elif "eval_loss" in logs:
                self.last_val_loss = _finite(logs["eval_loss"])
                event.update(
                    train_loss=None,
                    val_loss=self.last_val_loss,
                    learning_rate=None,
                    grad_norm=None,
                    tokens_per_second=None,
                )
                for name in eval_metrics:
                    if (value := logged(logs, name, prefix="eval_")) is not None:
                        event[name] = value
                # Evaluation time is not training time: restart the window.
                self.window_time = now
            else:
                return  # the end-of-training summary: the runner reports it
            on_event(event)

        def on_save(self, args, state, control, **kwargs):
            path = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            on_event(
                {
                    "kind": "checkpoint",
                    "step": state.global_step,
                    "path": str(path),
                    "train_loss": self.last_train_loss,
                    "val_loss": self.last_val_loss,
                }
            )

    return EventCallback()
