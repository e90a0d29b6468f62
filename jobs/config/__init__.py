"""A fine-tuning job's configuration: one versioned document, split by concern.

Plain Python (no Django, no torch): the web process validates and plans with
it, the training worker runs from it, and a user can download it as YAML and
upload it again to create the same job.

A document looks like this (every field is optional on input; what is missing
comes from the preset, and the stored document is always complete):

    tailor_config: 1
    name: support-routing on tailor-tiny
    preset: quick
    data: {dataset: <uuid>, validation_dataset: null}
    model: {base_model: tailor-tiny, method: qlora}
    lora: {rank: 16, alpha: 32, dropout: 0.05, target_modules: [all-linear]}
    training: {epochs: 1, learning_rate: 0.003, ...}
    tracking: {wandb_project: null, mlflow_experiment: null, ...}   # optional trackers

The package's modules follow the document's life: `schema` (the sections and
`ConfigError`), `reading` (a job file and a document in), `checks` (ranges and
combinations), `planning` (presets and the step plan). Callers use the names
re-exported here: `from jobs import config as cfg; cfg.read_document(...)`.
"""

from .checks import check_config
from .planning import (
    PRESET_SHAPES,
    DatasetFacts,
    ModelFacts,
    Plan,
    automatic_logging_steps,
    plan,
    preset_description,
    preset_learning_rate,
    preset_overlay,
    tokens_per_row,
)
from .reading import MAX_FILE_DEPTH, QUOTED_CHARACTERS, clipped, load_job_file, read_document
from .schema import (
    CONFIG_VERSION,
    LOSS_ON,
    MERGE_COMBINATIONS,
    METHODS,
    OBJECTIVES,
    PRESETS,
    SCHEDULERS,
    SECTIONS,
    TRACKERS,
    ConfigError,
    DataConfig,
    FieldError,
    JobConfig,
    LoraConfig,
    MergeConfig,
    ModelConfig,
    PreferenceConfig,
    TrackingConfig,
    TrainingConfig,
)

__all__ = [
    "CONFIG_VERSION",
    "LOSS_ON",
    "MAX_FILE_DEPTH",
    "MERGE_COMBINATIONS",
    "METHODS",
    "OBJECTIVES",
    "PRESETS",
    "PRESET_SHAPES",
    "QUOTED_CHARACTERS",
    "SCHEDULERS",
    "SECTIONS",
    "TRACKERS",
    "ConfigError",
    "DataConfig",
    "DatasetFacts",
    "FieldError",
    "JobConfig",
    "LoraConfig",
    "MergeConfig",
    "ModelConfig",
    "ModelFacts",
    "Plan",
    "PreferenceConfig",
    "TrackingConfig",
    "TrainingConfig",
    "automatic_logging_steps",
    "check_config",
    "clipped",
    "load_job_file",
    "plan",
    "preset_description",
    "preset_learning_rate",
    "preset_overlay",
    "read_document",
    "tokens_per_row",
]
