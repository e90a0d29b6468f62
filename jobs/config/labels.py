"""What pages call each field of the configuration document.

Errors name fields by their dotted path (`training.learning_rate`), which is
what the API returns and what a job file holds. Pages speak in labels
instead ("Learning rate: must be more than 0 and at most 0.1."); this is the
one table of those labels, in the document's order, used by the wizard's
inputs and by every page that shows a `ConfigError`.
"""

from __future__ import annotations

import re

from .schema import FieldError

FIELD_LABELS: dict[str, str] = {
    "name": "Job name",
    "preset": "Preset",
    "objective": "Objective",
    "data.dataset": "Training data",
    "data.validation_dataset": "Validation data",
    "model.base_model": "Base model",
    "model.method": "Method",
    "model.start_from": "Start from job",
    "lora.rank": "LoRA rank",
    "lora.alpha": "LoRA alpha",
    "lora.dropout": "LoRA dropout",
    "lora.target_modules": "Target modules",
    "training.epochs": "Epochs",
    "training.max_steps": "Max steps",
    "training.learning_rate": "Learning rate",
    "training.scheduler": "Scheduler",
    "training.warmup_ratio": "Warm-up ratio",
    "training.batch_size": "Batch size",
    "training.gradient_accumulation": "Gradient accumulation",
    "training.devices": "Devices",
    "training.max_seq_length": "Max sequence length",
    "training.packing": "Pack rows into full sequences",
    "training.weight_decay": "Weight decay",
    "training.seed": "Seed",
    "training.eval_every": "Evaluate every N steps",
    "training.save_every": "Save every N steps",
    "training.keep_checkpoints": "Checkpoints kept",
    "training.early_stopping_patience": "Early-stopping patience",
    "training.loss_on": "Loss on",
    "training.logging_steps": "Log every N steps",
    "tracking.wandb_project": "W&B project",
    "tracking.wandb_entity": "W&B entity",
    "tracking.wandb_name": "W&B run name",
    "tracking.wandb_tags": "W&B tags",
    "tracking.mlflow_experiment": "MLflow experiment",
    "tracking.mlflow_run_name": "MLflow run name",
    "preference.beta": "Beta (β)",
    "merge.sources": "Adapters to merge",
    "merge.weights": "Weights",
    "merge.combination": "Combination",
    "merge.density": "Density",
    # Not fields of a section: the document as a whole, and the uploaded file.
    "tailor_config": "Configuration version",
    "config": "Configuration",
    "config_file": "Configuration file",
}

# A dotted path inside a sentence ("set training.eval_every"); the lookbehind
# keeps file names and numbers ("tailor-job.yaml", "0.003") out.
_SECTIONS = "data|model|lora|training|tracking|preference|merge"
_PATH_IN_TEXT = re.compile(rf"(?<![\w.])(?:{_SECTIONS})\.[a-z_]+\b")


def field_label(path: str) -> str:
    """The label of a dotted field; a path the table does not know (a field a
    job file invented, say) stays as written, being the file's own words."""
    return FIELD_LABELS.get(path, path)


def in_words(message: str) -> str:
    """`message` with the field paths it mentions written as their labels."""

    def label(match: re.Match) -> str:
        path = match.group(0)
        return f"“{FIELD_LABELS[path]}”" if path in FIELD_LABELS else path

    return _PATH_IN_TEXT.sub(label, message)


def for_people(error: FieldError) -> tuple[str, str]:
    """An error as a page shows it: (label, message in words)."""
    return field_label(error.field), in_words(error.message)
