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
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import yaml

CONFIG_VERSION = 1

METHODS = {
    "qlora": "QLoRA (4-bit base + LoRA adapter)",
    "lora": "LoRA (adapter on the full-precision base)",
    "full": "Full fine-tune (every weight; small models only)",
}
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
LOSS_ON = {
    "completions": "Completions only (assistant turns)",
    "sequence": "Whole sequence",
}
TASKS = ("causal-lm", "sequence-classification")
TASKS_LABELS = {"causal-lm": "text generation", "sequence-classification": "text classification"}
# A dataset's task (datasets_app) and the model task that can learn it.
MODEL_TASK_FOR_DATASET_TASK = {
    "generation": "causal-lm",
    "classification": "sequence-classification",
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
    method: str = field(default="qlora", metadata={"help": "qlora, lora or full."})


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
class JobConfig:
    name: str = ""
    preset: str = "quick"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)

    def to_document(self) -> dict:
        return {"tailor_config": CONFIG_VERSION, **dataclasses.asdict(self)}


SECTIONS = {
    "data": DataConfig,
    "model": ModelConfig,
    "lora": LoraConfig,
    "training": TrainingConfig,
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


# --- reading a job file -------------------------------------------------------

# A job file nests four deep (document, section, field, a list's item); a few
# more levels let a misplaced field reach read_document and its own message,
# and the cap keeps PyYAML's recursive composer far from Python's stack limit.
MAX_FILE_DEPTH = 10
# How much of an untrusted text an error sentence quotes.
QUOTED_CHARACTERS = 40


class _JobFileRefused(Exception):
    def __init__(self, message: str):
        self.message = message


class _JobFileLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases and deep nesting.

    An alias makes a node shared, not copied, so a few hundred bytes of
    nested aliases stand for billions of values: harmless until something
    walks or prints them. No job file Tailor writes has one.
    """

    def __init__(self, stream):
        super().__init__(stream)
        self.depth = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise _JobFileRefused(
                f"uses a YAML alias (*{clipped(event.anchor)}) on line "
                f"{event.start_mark.line + 1}; a Tailor job file has none: write the value out."
            )
        self.depth += 1
        try:
            if self.depth > MAX_FILE_DEPTH:
                line = self.peek_event().start_mark.line + 1
                raise _JobFileRefused(
                    f"nests deeper than a Tailor job file does (more than {MAX_FILE_DEPTH} "
                    f"levels, on line {line})."
                )
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def load_job_file(raw: bytes):
    """The document in a job file's bytes (YAML, or JSON, which is YAML too).

    Raises ConfigError, on `config_file`, for text that is not UTF-8 YAML or
    uses what a job file never does (aliases, deep nesting). Checks no fields.
    """
    try:
        return yaml.load(raw.decode("utf-8"), Loader=_JobFileLoader)  # noqa: S506 (a SafeLoader)
    except _JobFileRefused as refused:
        message = refused.message
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        message = f"is not valid YAML (line {where.line + 1})." if where else "is not valid YAML."
    except UnicodeDecodeError:
        message = "is not valid YAML (it is not UTF-8 text)."
    except ValueError:
        # PyYAML builds ints and dates itself: a number of thousands of digits
        # or a 30 February gets past the parser and fails here.
        message = "is not valid YAML: a number or date in it cannot be read."
    raise ConfigError([FieldError("config_file", message)])


def clipped(text: str) -> str:
    """`text` cut to what an error sentence quotes."""
    if len(text) <= QUOTED_CHARACTERS:
        return text
    return text[: QUOTED_CHARACTERS - 1] + "…"


def _field_name(key) -> str:
    # Keys come from the user's file or body: a sentence names them, clipped.
    return clipped(key if isinstance(key, str) else f"{type(key).__name__} key")


# --- reading a document -------------------------------------------------------

_NUMBER = (int, float)


def _as_bool(value):
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "false", "on", "off", "1", "0"}:
        return value.lower() in {"true", "on", "1"}
    raise ValueError("must be true or false.")


def _as_int(value):
    if isinstance(value, str):
        value = value.strip()
        # ASCII and short: int() reads other digits ("٣") and refuses more than
        # 4,300 of them with its own sentence, which is not ours to show.
        if value.isascii() and len(value) <= 20:
            try:
                return int(value)
            except ValueError:
                pass
    elif isinstance(value, float) and value.is_integer():
        return int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ValueError("must be a whole number.")


def _as_float(value):
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ValueError("must be a number.") from None
    if isinstance(value, _NUMBER) and not isinstance(value, bool):
        try:
            value = float(value)
        except OverflowError:  # an int of hundreds of digits, from a JSON body
            raise ValueError("must be a finite number.") from None
        if math.isfinite(value):
            return value
    raise ValueError("must be a finite number.")


def _as_list(value):
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value):
        return [v.strip() for v in value]
    raise ValueError("must be a list of module names.")


def _as_optional_str(value):
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value.strip()
    raise ValueError("must be text.")


def _as_str(value):
    if isinstance(value, str):
        return value.strip()
    # A name YAML reads as a number (`name: 2024`); a longer number is no name.
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 10**20:
        return str(value)
    raise ValueError("must be text.")


_COERCERS = {
    bool: _as_bool,
    int: _as_int,
    float: _as_float,
    "list": _as_list,
    "optional_str": _as_optional_str,
    str: _as_str,
}


def _coerce(name: str, value, kind, errors: list[FieldError]):
    """`value` as `kind`, or None after recording an error."""
    try:
        return _COERCERS[kind](value)
    except ValueError as exc:
        errors.append(FieldError(name, str(exc)))
        return None


def _kind_of(dc_field: dataclasses.Field):
    annotation = dc_field.type
    if annotation in ("bool", bool):
        return bool
    if annotation in ("int", int):
        return int
    if annotation in ("float", float):
        return float
    if annotation == "list[str]":
        return "list"
    if annotation == "str | None":
        return "optional_str"
    return str


def _read_section(section, key: str, value: dict, errors: list[FieldError]) -> None:
    fields = {f.name: f for f in dataclasses.fields(section)}
    for name, raw in value.items():
        dotted = f"{key}.{_field_name(name)}"
        if name not in fields:
            errors.append(FieldError(dotted, "is not a known field."))
            continue
        kind = _kind_of(fields[name])
        coerced = _coerce(dotted, raw, kind, errors)
        if coerced is not None or kind == "optional_str":
            setattr(section, name, coerced)


def read_document(document, *, base: JobConfig | None = None) -> JobConfig:
    """A JobConfig from a (possibly partial) document, on top of `base`.

    Checks shape and types only (unknown keys, numbers that are not numbers);
    `check_config` checks ranges and combinations. Raises ConfigError.
    """
    errors: list[FieldError] = []
    if not isinstance(document, dict):
        raise ConfigError([FieldError("config", "must be a mapping of sections.")])
    config = base or JobConfig()
    config = JobConfig(  # a deep copy: `base` stays as it was
        name=config.name,
        preset=config.preset,
        data=dataclasses.replace(config.data),
        model=dataclasses.replace(config.model),
        lora=dataclasses.replace(config.lora, target_modules=list(config.lora.target_modules)),
        training=dataclasses.replace(config.training),
    )
    version = document.get("tailor_config", CONFIG_VERSION)
    if type(version) is not int:
        errors.append(FieldError("tailor_config", f"must be the version number {CONFIG_VERSION}."))
    elif version != CONFIG_VERSION:
        errors.append(
            FieldError(
                "tailor_config",
                f"version {clipped(str(version))} is not supported (this is {CONFIG_VERSION}).",
            )
        )
    for key, value in document.items():
        if key == "tailor_config":
            continue
        if key in ("name", "preset"):
            text = _coerce(key, value, str, errors)
            if text is not None:
                setattr(config, key, text)
            continue
        section_class = SECTIONS.get(key) if isinstance(key, str) else None
        if section_class is None:
            errors.append(FieldError(_field_name(key), "is not a configuration section."))
            continue
        if value is None:
            continue
        if not isinstance(value, dict):
            errors.append(FieldError(key, "must be a mapping of fields."))
            continue
        _read_section(getattr(config, key), key, value, errors)
    if errors:
        raise ConfigError(errors)
    return config


def check_config(config: JobConfig, *, full_finetune_limit: int, model) -> None:
    """Ranges and combinations; raises ConfigError naming every bad field.

    `model` is the catalog entry (anything with `task`, `parameters`,
    `supports_4bit` and `display_name`).
    """
    errors: list[FieldError] = []
    t, lora = config.training, config.lora

    def need(ok: bool, name: str, message: str) -> None:
        if not ok:
            errors.append(FieldError(name, message))

    need(len(config.name) <= 200, "name", "must be at most 200 characters.")
    need(config.preset in PRESETS, "preset", f"must be one of {', '.join(PRESETS)}.")
    need(config.model.method in METHODS, "model.method", f"must be one of {', '.join(METHODS)}.")
    need(0 < t.epochs <= 100, "training.epochs", "must be more than 0 and at most 100.")
    need(0 <= t.max_steps <= 1_000_000, "training.max_steps", "must be between 0 and 1,000,000.")
    need(
        0 < t.learning_rate <= 0.1, "training.learning_rate", "must be more than 0 and at most 0.1."
    )
    need(
        t.scheduler in SCHEDULERS, "training.scheduler", f"must be one of {', '.join(SCHEDULERS)}."
    )
    need(0 <= t.warmup_ratio <= 0.5, "training.warmup_ratio", "must be between 0 and 0.5.")
    need(1 <= t.batch_size <= 1024, "training.batch_size", "must be between 1 and 1,024.")
    need(
        1 <= t.gradient_accumulation <= 1024,
        "training.gradient_accumulation",
        "must be between 1 and 1,024.",
    )
    need(
        16 <= t.max_seq_length <= 32768, "training.max_seq_length", "must be between 16 and 32,768."
    )
    need(0 <= t.weight_decay <= 1, "training.weight_decay", "must be between 0 and 1.")
    need(0 <= t.seed <= 2**32 - 1, "training.seed", "must be between 0 and 4,294,967,295.")
    need(0 <= t.eval_every <= 1_000_000, "training.eval_every", "must be between 0 and 1,000,000.")
    need(0 <= t.save_every <= 1_000_000, "training.save_every", "must be between 0 and 1,000,000.")
    need(1 <= t.keep_checkpoints <= 20, "training.keep_checkpoints", "must be between 1 and 20.")
    need(
        0 <= t.early_stopping_patience <= 100,
        "training.early_stopping_patience",
        "must be between 0 and 100.",
    )
    need(t.loss_on in LOSS_ON, "training.loss_on", f"must be one of {', '.join(LOSS_ON)}.")
    need(0 <= t.logging_steps <= 10_000, "training.logging_steps", "must be between 0 and 10,000.")
    need(1 <= lora.rank <= 256, "lora.rank", "must be between 1 and 256.")
    need(1 <= lora.alpha <= 1024, "lora.alpha", "must be between 1 and 1,024.")
    need(0 <= lora.dropout <= 0.5, "lora.dropout", "must be between 0 and 0.5.")
    need(bool(lora.target_modules), "lora.target_modules", "must name at least one module.")

    errors.extend(_combination_errors(config, model, full_finetune_limit))
    if errors:
        raise ConfigError(errors)


def _combination_errors(config: JobConfig, model, full_finetune_limit: int) -> list[FieldError]:
    """Fields that are fine alone but not together, or not with this model."""
    errors: list[FieldError] = []
    t = config.training
    method = config.model.method
    if model is not None and method in METHODS:
        if method == "qlora" and not model.supports_4bit:
            errors.append(
                FieldError(
                    "model.method",
                    f"{model.display_name} cannot be loaded in 4 bits here "
                    f"({model.quantization_note or 'bitsandbytes does not support it'}); "
                    "choose LoRA.",
                )
            )
        if method == "full" and model.parameters > full_finetune_limit:
            errors.append(
                FieldError(
                    "model.method",
                    f"a full fine-tune is offered for models up to "
                    f"{full_finetune_limit / 1e9:g}B parameters; {model.display_name} has "
                    f"{model.parameters / 1e9:.1f}B. Choose QLoRA or LoRA.",
                )
            )
        if model.task == "sequence-classification":
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


# --- planning: presets sized in steps -------------------------------------------


@dataclass(frozen=True)
class DatasetFacts:
    """What planning needs to know of the training data."""

    rows: int
    validation_rows: int
    mean_characters: float
    p95_characters: float
    task: str  # "generation" | "classification"


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
    # chat template's role markers (about 4 tokens per turn, 3 turns).
    overhead = 12 if dataset.task == "generation" else 2
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
    rows_per_step = t.batch_size * t.gradient_accumulation
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
    return model.learning_rate if method != "full" else model.learning_rate / 10


def preset_overlay(preset: str, dataset: DatasetFacts, model: ModelFacts, method: str) -> dict:
    """The fields `preset` sets, as a partial document, sized from the dataset."""
    shape = PRESET_SHAPES[preset]
    learning_rate = preset_learning_rate(model, method)
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
    return {
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


def automatic_logging_steps(total_steps: int) -> int:
    """About 100 points on the loss chart, and never fewer than one per 50 steps."""
    return max(1, min(50, total_steps // 100))
