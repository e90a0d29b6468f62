"""Presets and the plan: a preset's shape sized to a dataset and model in
steps, and the arithmetic (rows, tokens, steps) shown before Start.

Plain Python; the token counts are estimates from characters per token.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from jobs.vocabulary import CLASSIFICATION, FEEDBACK, PREFERENCE, Adapter

from .schema import JobConfig


@dataclass(frozen=True)
class DatasetFacts:
    """What planning needs to know of the training data."""

    rows: int
    validation_rows: int
    mean_characters: float
    p95_characters: float
    task: str  # a dataset task (jobs/vocabulary.py)


@dataclass(frozen=True)
class ModelFacts:
    """What planning needs to know of a catalog entry."""

    task: str
    parameters: int
    context_length: int
    characters_per_token: float
    learning_rate: float  # for LoRA/QLoRA; full fine-tunes use a tenth
    batch_size: int
    target_modules: tuple[str, ...]


@dataclass(frozen=True)
class Plan:
    """The arithmetic behind a configuration, shown before Start."""

    rows: int
    tokens_per_row: float
    tokens_per_epoch: int
    sequences_per_epoch: int
    rows_per_step: int
    steps_per_epoch: int
    total_steps: int
    total_tokens: int

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


# Each preset: how many epochs, and at most how many optimizer steps (so a
# big dataset stays quick), plus how often to evaluate and save. Steps, not
# epochs, decide the time a job takes.
PRESET_SHAPES = {
    # One pass, capped at 300 steps: on the bundled 1,200-row sets that is
    # 1,200 / 16 = 75 steps, enough for held-out accuracy above 0.9.
    "quick": {"epochs": 1.0, "step_cap": 300, "evaluations": 1, "checkpoints": 2, "patience": 0},
    # Two passes, up to 2,000 steps, 10 evaluations, stop after 3 without progress.
    "balanced": {
        "epochs": 2.0,
        "step_cap": 2000,
        "evaluations": 10,
        "checkpoints": 5,
        "patience": 3,
    },
    # Three passes, no cap, 20 evaluations, stop after 5 without progress.
    "thorough": {
        "epochs": 3.0,
        "step_cap": 0,
        "evaluations": 20,
        "checkpoints": 10,
        "patience": 5,
    },
}


_PASSES = {1.0: "One pass", 2.0: "Two passes", 3.0: "Three passes"}


def preset_description(preset: str) -> str:
    """One line saying what `preset` does, read from its shape."""
    shape = PRESET_SHAPES[preset]
    parts = [_PASSES.get(shape["epochs"], f"{shape['epochs']:g} passes")]
    if shape["step_cap"]:
        parts.append(f"at most {shape['step_cap']:,} steps")
    evaluations = shape["evaluations"]
    parts.append("one evaluation at the end" if evaluations <= 1 else f"{evaluations} evaluations")
    text = ", ".join(parts)
    if shape["patience"]:
        text += f"; stops early after {shape['patience']} evaluations without gain"
    return text + "."


def tokens_per_row(dataset: DatasetFacts, model: ModelFacts) -> float:
    # Characters over the model's measured characters per token, plus the
    # chat template's role markers (about 4 tokens per turn, 3 turns) for
    # chats, preference pairs and feedback alike.
    overhead = 2 if dataset.task == CLASSIFICATION else 12
    return dataset.mean_characters / model.characters_per_token + overhead


def plan(config: JobConfig, dataset: DatasetFacts, model: ModelFacts) -> Plan:
    """Steps and tokens that `config` will run on `dataset` (an estimate for tokens)."""
    t = config.training
    per_row = min(tokens_per_row(dataset, model), t.max_seq_length)
    tokens_per_epoch = int(dataset.rows * per_row)
    if t.packing:
        # Packed rows fill whole sequences: the step count follows tokens.
        sequences = max(1, math.ceil(tokens_per_epoch / t.max_seq_length))
    else:
        sequences = dataset.rows
    # Each device takes its own batch: an optimizer step sees all of them.
    rows_per_step = t.batch_size * t.gradient_accumulation * t.devices
    steps_per_epoch = max(1, math.ceil(sequences / rows_per_step))
    total = t.max_steps or max(1, math.ceil(steps_per_epoch * t.epochs))
    return Plan(
        rows=dataset.rows,
        tokens_per_row=round(per_row, 1),
        tokens_per_epoch=tokens_per_epoch,
        sequences_per_epoch=sequences,
        rows_per_step=rows_per_step,
        steps_per_epoch=steps_per_epoch,
        total_steps=total,
        total_tokens=int(total * rows_per_step * (tokens_per_epoch / sequences)),
    )


def preset_learning_rate(model: ModelFacts, method: str) -> float:
    """The presets' learning rate: the model's LoRA rate, a tenth of it for a
    full fine-tune (every weight moves, so each must move less)."""
    return model.learning_rate if method != Adapter.FULL else model.learning_rate / 10


# Preference tuning (DPO on pairs, KTO on feedback) nudges an adapter by the
# gap between answers' log-ratios to its starting model, so the presets take
# a smaller step than supervised tuning does: PREFERENCE_RATE_SHARE of the
# model's rate. On tailor-tiny (3e-3) that is 1.5e-3, which takes the bundled
# support-preferences sample from 0.48 to over 0.8 held-out preference
# accuracy in one Quick pass of 50 steps (datasets_app/samples/README.md);
# a tenth (3e-4) reached 0.74. On the Hub models' 2e-4 it is 1e-4, within
# the 5e-6 to 5e-4 that LoRA DPO recipes use.
PREFERENCE_RATE_SHARE = 0.5
# DPO's paper value and TRL's default: the tuned model may leave its starting
# model, but not so far that its answers stop being fluent. 0.1 suits KTO too
# (its paper's default).
PREFERENCE_BETA = 0.1
PREFERENCE_TASKS = (PREFERENCE, FEEDBACK)


def preset_overlay(preset: str, dataset: DatasetFacts, model: ModelFacts, method: str) -> dict:
    """The fields `preset` sets, as a partial document, sized from the dataset
    (for preference and feedback data: a preference-tuning step and beta)."""
    shape = PRESET_SHAPES[preset]
    learning_rate = preset_learning_rate(model, method)
    preference = dataset.task in PREFERENCE_TASKS
    if preference:
        learning_rate *= PREFERENCE_RATE_SHARE
    # Rows longer than this are rare (p95), and shorter sequences train
    # faster: round the p95 up to a multiple of 64, within the model's context.
    p95_tokens = dataset.p95_characters / model.characters_per_token + 16
    max_len = int(min(model.context_length, 2048, max(64, math.ceil(p95_tokens / 64) * 64)))
    draft = JobConfig()
    draft.training.batch_size = model.batch_size
    draft.training.max_seq_length = max_len
    draft.training.epochs = shape["epochs"]
    steps = plan(draft, dataset, model)
    total = steps.total_steps
    if shape["step_cap"] and total > shape["step_cap"]:
        total = shape["step_cap"]
        max_steps = total
    else:
        max_steps = 0
    evaluations = shape["evaluations"]
    eval_every = 0 if evaluations <= 1 else max(1, total // evaluations)
    overlay = {
        "preset": preset,
        "lora": {"target_modules": list(model.target_modules)},
        "training": {
            "epochs": shape["epochs"],
            "max_steps": max_steps,
            "learning_rate": learning_rate,
            "batch_size": model.batch_size,
            "max_seq_length": max_len,
            "eval_every": eval_every,
            "save_every": eval_every or max(1, total // 2),
            "keep_checkpoints": shape["checkpoints"],
            "early_stopping_patience": shape["patience"] if eval_every else 0,
        },
    }
    if preference:
        overlay["preference"] = {"beta": PREFERENCE_BETA}
    return overlay


def automatic_logging_steps(total_steps: int) -> int:
    """About 100 points on the loss chart, and never fewer than one per 50 steps."""
    return max(1, min(50, total_steps // 100))
