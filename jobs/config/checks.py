"""Checking a read configuration: ranges, and fields that do not go together
(with each other or with the chosen model). Raises `ConfigError` naming every
bad field at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from jobs.numbers import NumberError, read_number
from jobs.vocabulary import SEQUENCE_CLASSIFICATION, Adapter

from .schema import (
    LOSS_ON,
    MERGE_COMBINATIONS,
    METHODS,
    PRESETS,
    SCHEDULERS,
    ConfigError,
    FieldError,
    JobConfig,
)


@dataclass(frozen=True)
class Range:
    lowest: int | float
    highest: int | float
    lowest_open: bool = False  # the lowest value itself is refused


# The checked fields, in the order a job file writes them (errors come in
# that order): a Range, whose sentences are jobs/numbers.py's as for every
# number Tailor reads, or the choices a word must be one of.
FIELD_RULES: dict[str, Range | tuple[str, ...]] = {
    "training.epochs": Range(0, 100, lowest_open=True),
    "training.max_steps": Range(0, 1_000_000),
    "training.learning_rate": Range(0, 0.1, lowest_open=True),
    "training.scheduler": tuple(SCHEDULERS),
    "training.warmup_ratio": Range(0, 0.5),
    "training.batch_size": Range(1, 1024),
    "training.gradient_accumulation": Range(1, 1024),
    "training.devices": Range(1, 8),
    "training.max_seq_length": Range(16, 32768),
    "training.weight_decay": Range(0, 1),
    "training.seed": Range(0, 2**32 - 1),
    "training.eval_every": Range(0, 1_000_000),
    "training.save_every": Range(0, 1_000_000),
    "training.keep_checkpoints": Range(1, 20),
    "training.early_stopping_patience": Range(0, 100),
    "training.loss_on": tuple(LOSS_ON),
    "training.logging_steps": Range(0, 10_000),
    "lora.rank": Range(1, 256),
    "lora.alpha": Range(1, 1024),
    "lora.dropout": Range(0, 0.5),
    "preference.beta": Range(0, 10, lowest_open=True),
    "merge.combination": tuple(MERGE_COMBINATIONS),
    "merge.density": Range(0, 1, lowest_open=True),
}


def _rule_error(rule: Range | tuple[str, ...], value) -> str | None:
    if not isinstance(rule, Range):
        return None if value in rule else f"must be one of {', '.join(rule)}."
    try:
        read_number(
            value, whole=isinstance(value, int), lowest=rule.lowest, highest=rule.highest,
            lowest_open=rule.lowest_open,
        )  # fmt: skip
    except NumberError as error:
        return error.message
    return None


def check_config(config: JobConfig, *, full_finetune_limit: int, model) -> None:
    """Ranges and combinations; raises ConfigError naming every bad field.

    `model` is the catalog entry (anything with `task`, `parameters`,
    `supports_4bit` and `display_name`).
    """
    errors: list[FieldError] = []
    lora = config.lora

    def need(ok: bool, name: str, message: str) -> None:
        if not ok:
            errors.append(FieldError(name, message))

    need(len(config.name) <= 200, "name", "must be at most 200 characters.")
    need(config.preset in PRESETS, "preset", f"must be one of {', '.join(PRESETS)}.")
    need(config.model.method in METHODS, "model.method", f"must be one of {', '.join(METHODS)}.")
    for name, rule in FIELD_RULES.items():
        section, field = name.split(".")
        message = _rule_error(rule, getattr(getattr(config, section), field))
        if message is not None:
            errors.append(FieldError(name, message))
    need(bool(lora.target_modules), "lora.target_modules", "must name at least one module.")

    errors.extend(_tracking_errors(config.tracking))
    errors.extend(_combination_errors(config, model, full_finetune_limit))
    if errors:
        raise ConfigError(errors)


def _combination_errors(config: JobConfig, model, full_finetune_limit: int) -> list[FieldError]:
    """Fields that are fine alone but not together, or not with this model."""
    errors: list[FieldError] = []
    t = config.training
    method = config.model.method
    if model is not None and method in METHODS:
        if method == Adapter.QLORA and not model.supports_4bit:
            errors.append(
                FieldError(
                    "model.method",
                    f"{model.display_name} cannot be loaded in 4 bits here "
                    f"({model.quantization_note or 'bitsandbytes does not support it'}); "
                    "choose LoRA.",
                )
            )
        if method == Adapter.FULL and model.parameters > full_finetune_limit:
            errors.append(
                FieldError(
                    "model.method",
                    f"a full fine-tune is offered for models up to "
                    f"{full_finetune_limit / 1e9:g}B parameters; {model.display_name} has "
                    f"{model.parameters / 1e9:.1f}B. Choose QLoRA or LoRA.",
                )
            )
        if model.task == SEQUENCE_CLASSIFICATION:
            if t.packing:
                errors.append(
                    FieldError("training.packing", "applies to text generation models only.")
                )
            if t.loss_on != "completions":
                errors.append(
                    FieldError("training.loss_on", "applies to text generation models only.")
                )
    if t.early_stopping_patience and not t.eval_every:
        errors.append(
            FieldError(
                "training.early_stopping_patience",
                "needs evaluations during training: set training.eval_every.",
            )
        )
    if t.packing and t.loss_on == "completions":
        # TRL packs without the assistant mask only in its padding-free mode;
        # mixing rows in one sequence would also train on prompts.
        errors.append(
            FieldError(
                "training.packing",
                "cannot be combined with loss on completions only; "
                "set training.loss_on to sequence, or turn packing off.",
            )
        )
    return errors


# W&B's own limits: a project or entity name is at most 128 characters
# without these, a tag at most 64 characters.
WANDB_NAME_FORBIDS = "/\\#?%:"
MAX_TRACKER_NAME = 128
MAX_TAG = 64
MAX_TAGS = 20


def _tracking_errors(tracking) -> list[FieldError]:
    """Names a tracker accepts, and no tracker setting without its tracker."""
    errors: list[FieldError] = []
    for name in ("wandb_project", "wandb_entity"):
        value = getattr(tracking, name)
        if value and (len(value) > MAX_TRACKER_NAME or set(value) & set(WANDB_NAME_FORBIDS)):
            errors.append(
                FieldError(
                    f"tracking.{name}",
                    f"must be at most {MAX_TRACKER_NAME} characters and use none of "
                    f"{' '.join(WANDB_NAME_FORBIDS[:-1])} or {WANDB_NAME_FORBIDS[-1]} "
                    "(W&B's rule).",
                )
            )
    for name in ("wandb_name", "mlflow_experiment", "mlflow_run_name"):
        value = getattr(tracking, name)
        if value and len(value) > MAX_TRACKER_NAME:
            errors.append(
                FieldError(f"tracking.{name}", f"must be at most {MAX_TRACKER_NAME} characters.")
            )
    tags = tracking.wandb_tags
    if len(tags) > MAX_TAGS or any(len(tag) > MAX_TAG for tag in tags):
        errors.append(
            FieldError(
                "tracking.wandb_tags",
                f"must be at most {MAX_TAGS} tags of at most {MAX_TAG} characters each.",
            )
        )
    needs = {"wandb_project": ("wandb_entity", "wandb_name", "wandb_tags"),
             "mlflow_experiment": ("mlflow_run_name",)}  # fmt: skip
    named = {error.field for error in errors}  # one sentence a field
    for tracker, settings in needs.items():
        if not getattr(tracking, tracker):
            for name in settings:
                if getattr(tracking, name) and f"tracking.{name}" not in named:
                    errors.append(
                        FieldError(f"tracking.{name}", f"needs tracking.{tracker}: set it too.")
                    )
    return errors
