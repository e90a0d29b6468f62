"""The configuration document's shape: its sections as dataclasses, the words
each field accepts, and the error that names bad fields.

Plain Python (no Django, no torch, no YAML). Every field has help text and a
default whose reason is commented; `JobConfig.to_document()` is the stored,
complete document.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from jobs.vocabulary import ADAPTER_LABELS, OBJECTIVE_LABELS, Adapter

CONFIG_VERSION = 1

# `model.method` is the adapter kind (jobs/vocabulary.py), not the objective.
METHODS = ADAPTER_LABELS
PRESETS = {
    "quick": "Quick",
    "balanced": "Balanced",
    "thorough": "Thorough",
}
SCHEDULERS = {
    "linear": "Linear decay",
    "cosine": "Cosine",
    "constant": "Constant",
    "constant_with_warmup": "Constant after warm-up",
}
# The experiment trackers a job can report to (tracking.*), in pages' words.
TRACKERS = {"wandb": "Weights & Biases", "mlflow": "MLflow"}
# What a run optimises (jobs/vocabulary.py); the dataset's task decides it.
OBJECTIVES = OBJECTIVE_LABELS
# PEFT's weighted-adapter methods a merge offers (add_weighted_adapter's
# combination_type), in pages' words.
MERGE_COMBINATIONS = {
    "linear": "Linear (weighted average; adapters of one rank)",
    "ties": "TIES (keep the strongest, agreeing changes)",
    "dare_linear": "DARE (drop and rescale, then average)",
    "dare_ties": "DARE + TIES",
}
LOSS_ON = {
    "completions": "Completions only (assistant turns)",
    "sequence": "Whole sequence",
}


@dataclass
class DataConfig:
    dataset: str = field(default="", metadata={"help": "The training dataset's id."})
    validation_dataset: str | None = field(
        default=None,
        metadata={"help": "Another ready dataset to validate on; empty uses the dataset's split."},
    )


@dataclass
class ModelConfig:
    base_model: str = field(default="", metadata={"help": "A model catalog id."})
    # QLoRA by default: it fits the largest base in the least memory, and the
    # adapter is as good as LoRA's for the few-thousand-row jobs Tailor is for.
    method: str = field(default=Adapter.QLORA, metadata={"help": "qlora, lora or full."})
    # Empty: a new adapter on the base. A job id: training goes on from that
    # succeeded job's adapter (same base, same method family), on new data.
    start_from: str | None = field(
        default=None,
        metadata={"help": "A succeeded job of the same base whose adapter training continues."},
    )


@dataclass
class LoraConfig:
    # r 16 / alpha 32 on every linear layer is the QLoRA paper's finding:
    # adapting all linear layers matters more than the rank.
    rank: int = field(default=16, metadata={"help": "LoRA rank r (1-256)."})
    alpha: int = field(default=32, metadata={"help": "LoRA alpha (scale = alpha / r)."})
    dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA input (0-0.5)."})
    target_modules: list[str] = field(
        default_factory=lambda: ["all-linear"],
        metadata={"help": "Module names to adapt, or all-linear."},
    )


@dataclass
class TrainingConfig:
    epochs: float = field(default=1.0, metadata={"help": "Passes over the training rows."})
    max_steps: int = field(
        default=0, metadata={"help": "Stop after this many optimizer steps (0: from epochs)."}
    )
    learning_rate: float = field(default=2e-4, metadata={"help": "Peak learning rate."})
    scheduler: str = field(default="linear", metadata={"help": "Learning-rate schedule."})
    warmup_ratio: float = field(
        default=0.03, metadata={"help": "Fraction of steps spent warming up (0-0.5)."}
    )
    batch_size: int = field(default=16, metadata={"help": "Rows per device step."})
    gradient_accumulation: int = field(
        default=1, metadata={"help": "Device steps per optimizer step."}
    )
    # One device by default: a LoRA job of a few thousand rows rarely gains
    # from more, and a multi-device job needs a worker that has them.
    devices: int = field(
        default=1,
        metadata={
            "help": "GPUs of one machine that train at once, each on its share of every "
            "batch (1-8)."
        },
    )
    max_seq_length: int = field(default=512, metadata={"help": "Tokens per row (longer: cut)."})
    # Off by default: packing gives fewer, fuller steps, which on small sets
    # means too few updates (FINDINGS.md: 3.76 loss vs learning the task).
    packing: bool = field(default=False, metadata={"help": "Pack rows into full sequences."})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay (0-1)."})
    seed: int = field(default=42, metadata={"help": "Seed for shuffling and initialisation."})
    eval_every: int = field(
        default=0, metadata={"help": "Evaluate every N steps (0: at the end only)."}
    )
    save_every: int = field(
        default=0, metadata={"help": "Save a checkpoint every N steps (0: at the end only)."}
    )
    keep_checkpoints: int = field(default=2, metadata={"help": "Newest checkpoints kept (1-20)."})
    early_stopping_patience: int = field(
        default=0,
        metadata={"help": "Stop after N evaluations without a better validation loss (0: off)."},
    )
    loss_on: str = field(
        default="completions", metadata={"help": "completions (default) or sequence."}
    )
    logging_steps: int = field(default=0, metadata={"help": "Log every N steps (0: automatic)."})


@dataclass
class PreferenceConfig:
    # 0.1 is DPO's paper value and TRL's default: the policy may move from
    # its starting model, but not so far that its answers stop being fluent.
    beta: float = field(
        default=0.1,
        metadata={
            "help": "How far preference tuning may move from its starting model "
            "(0.01-1; lower moves further)."
        },
    )


@dataclass
class MergeConfig:
    # A merge trains nothing: it combines adapters of one base into one.
    sources: list[str] = field(
        default_factory=list,
        metadata={"help": "The succeeded jobs whose adapters merge.", "items": "ids"},
    )
    weights: list[float] = field(
        default_factory=list,
        metadata={"help": "One weight per source (empty: equal weights).", "items": "floats"},
    )
    combination: str = field(
        default="linear", metadata={"help": "linear, ties, dare_linear or dare_ties."}
    )
    # TIES and DARE keep this share of each adapter's changes (PEFT's density).
    density: float = field(
        default=0.5, metadata={"help": "Share of each adapter's weights TIES/DARE keep (0-1)."}
    )


@dataclass
class TrackingConfig:
    # Off unless named: a tracker is the team's, and the operator sets its
    # address and credentials (README: trackers), never the job document.
    wandb_project: str | None = field(
        default=None, metadata={"help": "Weights & Biases project to log the run to."}
    )
    wandb_entity: str | None = field(
        default=None, metadata={"help": "W&B team or user (empty: the key's default)."}
    )
    wandb_name: str | None = field(
        default=None, metadata={"help": "The W&B run's name (empty: the job's name)."}
    )
    wandb_tags: list[str] = field(
        default_factory=list, metadata={"help": "Tags of the W&B run.", "items": "tags"}
    )
    mlflow_experiment: str | None = field(
        default=None, metadata={"help": "MLflow experiment to log the run to."}
    )
    mlflow_run_name: str | None = field(
        default=None, metadata={"help": "The MLflow run's name (empty: the job's name)."}
    )

    @property
    def trackers(self) -> list[str]:
        """The trackers this job reports to, by TRACKERS' words."""
        return [
            name
            for name, chosen in (("wandb", self.wandb_project), ("mlflow", self.mlflow_experiment))
            if chosen
        ]


@dataclass
class JobConfig:
    name: str = ""
    preset: str = "quick"
    # Empty until the draft resolves it from the dataset's task (or a merge).
    objective: str = ""
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    preference: PreferenceConfig = field(default_factory=PreferenceConfig)
    merge: MergeConfig = field(default_factory=MergeConfig)

    def to_document(self) -> dict:
        return {"tailor_config": CONFIG_VERSION, **dataclasses.asdict(self)}


SECTIONS = {
    "data": DataConfig,
    "model": ModelConfig,
    "lora": LoraConfig,
    "training": TrainingConfig,
    "tracking": TrackingConfig,
    "preference": PreferenceConfig,
    "merge": MergeConfig,
}


# --- errors -------------------------------------------------------------------


@dataclass(frozen=True)
class FieldError:
    field: str  # dotted: "training.learning_rate"
    message: str


class ConfigError(ValueError):
    """A configuration that cannot run; `errors` names every bad field."""

    def __init__(self, errors: list[FieldError]):
        self.errors = errors
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))

    def as_dict(self) -> dict[str, str]:
        return {e.field: e.message for e in self.errors}
