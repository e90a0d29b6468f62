"""The new-job wizard: what the form posts, read into a configuration document.

The form's inputs are named after the document's dotted fields
(`training.learning_rate`), so a `ConfigError` lands next to its input with
no mapping table. Each advanced input also carries the preset's value in a
hidden `default.<field>`: only values that differ from it are sent as
overrides, so switching the preset moves every field the user left alone.
"""

import dataclasses
from dataclasses import dataclass, field

from datasets_app.models import Dataset
from jobs import config as cfg
from jobs.services import catalog, lifecycle


@dataclass(frozen=True)
class AdvancedField:
    name: str  # dotted, as in the document and the form
    label: str
    kind: str  # int | float | choice | bool | list
    group: str
    choices: dict = field(default_factory=dict)

    @property
    def section(self) -> str:
        return self.name.split(".")[0]

    @property
    def key(self) -> str:
        return self.name.split(".")[1]

    @property
    def input_id(self) -> str:
        return "id_" + self.name.replace(".", "-")

    @property
    def help(self) -> str:
        fields = {f.name: f for f in dataclasses.fields(cfg.SECTIONS[self.section])}
        return fields[self.key].metadata.get("help", "")


ADVANCED_FIELDS = [
    AdvancedField("training.epochs", "Epochs", "float", "Schedule"),
    AdvancedField("training.max_steps", "Max steps", "int", "Schedule"),
    AdvancedField("training.learning_rate", "Learning rate", "float", "Schedule"),
    AdvancedField("training.scheduler", "Scheduler", "choice", "Schedule", cfg.SCHEDULERS),
    AdvancedField("training.warmup_ratio", "Warm-up ratio", "float", "Schedule"),
    AdvancedField("training.weight_decay", "Weight decay", "float", "Schedule"),
    AdvancedField("training.seed", "Seed", "int", "Schedule"),
    AdvancedField("training.batch_size", "Batch size", "int", "Batches"),
    AdvancedField("training.gradient_accumulation", "Gradient accumulation", "int", "Batches"),
    AdvancedField("training.max_seq_length", "Max sequence length", "int", "Batches"),
    AdvancedField("training.packing", "Pack rows into full sequences", "bool", "Batches"),
    AdvancedField("training.loss_on", "Loss on", "choice", "Batches", cfg.LOSS_ON),
    AdvancedField("lora.rank", "LoRA rank", "int", "LoRA adapter"),
    AdvancedField("lora.alpha", "LoRA alpha", "int", "LoRA adapter"),
    AdvancedField("lora.dropout", "LoRA dropout", "float", "LoRA adapter"),
    AdvancedField("lora.target_modules", "Target modules", "list", "LoRA adapter"),
    AdvancedField("training.eval_every", "Evaluate every N steps", "int", "Evaluation"),
    AdvancedField("training.save_every", "Save every N steps", "int", "Evaluation"),
    AdvancedField("training.keep_checkpoints", "Checkpoints kept", "int", "Evaluation"),
    AdvancedField(
        "training.early_stopping_patience", "Early-stopping patience", "int", "Evaluation"
    ),
]
ADVANCED_NAMES = {f.name for f in ADVANCED_FIELDS}
# Inputs outside the advanced section, by the dotted name an error carries.
MAIN_FIELDS = (
    "name",
    "preset",
    "data.dataset",
    "data.validation_dataset",
    "model.base_model",
    "model.method",
)


def display_value(value) -> str:
    """A configuration value as an input shows it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(value)
    if isinstance(value, float):
        text = repr(value)
        return text[:-2] if text.endswith(".0") else text
    return "" if value is None else str(value)


def _same(a: str, b: str) -> bool:
    """Whether two typed values mean the same (so `0.0030` is not an override of `0.003`)."""
    a, b = a.strip(), b.strip()
    try:
        return float(a) == float(b)
    except ValueError:
        return [p.strip() for p in a.split(",")] == [p.strip() for p in b.split(",")]


@dataclass
class WizardInput:
    """What the user chose so far; everything else comes from the preset."""

    name: str = ""
    dataset: str = ""
    validation_dataset: str = ""
    base_model: str = ""
    method: str = ""  # empty: the model's default (QLoRA, or LoRA without 4-bit)
    preset: str = "quick"
    overrides: dict[str, str] = field(default_factory=dict)  # dotted field → typed value

    @classmethod
    def from_post(cls, data) -> "WizardInput":
        def last(name: str) -> str | None:
            # A checkbox follows a hidden "false": the last value wins.
            values = data.getlist(name)
            return values[-1].strip() if values else None

        def changed(name: str) -> str | None:
            value = last(name)
            default = data.get(f"default.{name}")
            if value is None or (default is not None and _same(value, default)):
                return None
            return value

        return cls(
            name=last("name") or "",
            dataset=last("data.dataset") or "",
            validation_dataset=last("data.validation_dataset") or "",
            base_model=last("model.base_model") or "",
            method=changed("model.method") or "",
            preset=last("preset") or "quick",
            overrides={
                name: value
                for name in (f.name for f in ADVANCED_FIELDS)
                if (value := changed(name)) is not None
            },
        )

    @classmethod
    def from_document(cls, document: dict) -> "WizardInput":
        """The wizard prefilled from a stored job's configuration (clone and edit)."""
        data, model = document.get("data") or {}, document.get("model") or {}
        overrides = {}
        for spec in ADVANCED_FIELDS:
            section = document.get(spec.section) or {}
            if spec.key in section:
                overrides[spec.name] = display_value(section[spec.key])
        return cls(
            name=document.get("name") or "",
            dataset=str(data.get("dataset") or ""),
            validation_dataset=str(data.get("validation_dataset") or ""),
            base_model=model.get("base_model") or "",
            method=model.get("method") or "",
            preset=document.get("preset") or "quick",
            overrides=overrides,
        )

    def base_document(self, *, with_method: bool = True) -> dict:
        document = {
            "preset": self.preset,
            "data": {"dataset": self.dataset, "validation_dataset": self.validation_dataset},
            "model": {"base_model": self.base_model},
        }
        if self.method and with_method:
            document["model"]["method"] = self.method
        return document

    def document(self) -> dict:
        """The document `check_start_job` resolves: choices plus overrides."""
        document = self.base_document()
        if self.name:
            document["name"] = self.name
        for name, value in self.overrides.items():
            section, key = name.split(".")
            document.setdefault(section, {})[key] = value
        return document


@dataclass
class BoundField:
    spec: AdvancedField
    value: str
    default: str
    error: str = ""


class JobWizard:
    """The wizard's state for one request: choices, options, draft and errors.

    Reading it runs `check_start_job` (which writes nothing) for the estimate.
    """

    def __init__(self, user, wizard: WizardInput, *, errors: dict | None = None):
        self.user = user
        self.input = wizard
        self.datasets = list(Dataset.objects.for_user(user).ready().order_by("-created_at"))
        self.dataset = next((d for d in self.datasets if str(d.pk) == wizard.dataset), None)
        self.models = []
        self.model = None
        if self.dataset is not None:
            self.models = [
                {
                    "entry": entry,
                    "availability": catalog.availability(entry),
                    "parameters": human_parameters(entry.parameters),
                }
                for entry in catalog.models_for_dataset_task(self.dataset.task)
            ]
            self.model = next(
                (m["entry"] for m in self.models if m["entry"].id == wizard.base_model), None
            )
        self.defaults: cfg.JobConfig | None = None
        self.draft: lifecycle.JobDraft | None = None
        self.errors: dict[str, str] = dict(errors or {})
        if self.ready_to_check:
            self._check()

    @property
    def ready_to_check(self) -> bool:
        return self.dataset is not None and self.model is not None

    def _check(self) -> None:
        for with_method in (True, False):
            try:
                base = self.input.base_document(with_method=with_method)
                self.defaults = lifecycle.check_start_job(self.user, base).config
                break
            except cfg.ConfigError:
                continue
        try:
            self.draft = lifecycle.check_start_job(self.user, self.input.document())
        except cfg.ConfigError as error:
            for field_error in error.errors:
                self.errors.setdefault(field_error.field, field_error.message)

    # --- what the template shows ----------------------------------------------------

    @property
    def method(self) -> str:
        if self.draft is not None:
            return self.draft.config.model.method
        if self.input.method:
            return self.input.method
        return self.defaults.model.method if self.defaults else "qlora"

    def method_options(self) -> list[dict]:
        model, limit = self.model, catalog.full_finetune_limit()
        memory = catalog.memory_by_method(model) if model else {}
        options = []
        for value, label in cfg.METHODS.items():
            reason = ""
            if model is not None and value == "qlora" and not model.supports_4bit:
                reason = f"Not offered for this model: {model.quantization_note or 'no 4-bit'}."
            if model is not None and value == "full" and model.parameters > limit:
                reason = (
                    f"Offered for models up to {human_parameters(limit)} parameters; "
                    f"this one has {human_parameters(model.parameters)}."
                )
            options.append(
                {
                    "value": value,
                    "label": label,
                    "reason": reason,
                    "memory": human_bytes(memory[value]) if value in memory else "",
                    "checked": value == self.method,
                }
            )
        return options

    def preset_options(self) -> list[dict]:
        return [
            {"value": v, "label": label, "description": cfg.preset_description(v)}
            for v, label in cfg.PRESETS.items()
        ]

    def validation_choices(self) -> list[Dataset]:
        if self.dataset is None:
            return []
        return [d for d in self.datasets if d.task == self.dataset.task and d != self.dataset]

    def advanced_groups(self) -> list[tuple[str, list[BoundField]]]:
        if self.defaults is None:
            return []
        groups: dict[str, list[BoundField]] = {}
        for spec in ADVANCED_FIELDS:
            default = display_value(getattr(getattr(self.defaults, spec.section), spec.key))
            groups.setdefault(spec.group, []).append(
                BoundField(
                    spec=spec,
                    value=self.input.overrides.get(spec.name, default),
                    default=default,
                    error=self.errors.get(spec.name, ""),
                )
            )
        return list(groups.items())

    @property
    def default_method(self) -> str:
        return self.defaults.model.method if self.defaults else ""

    @property
    def default_name(self) -> str:
        return self.defaults.name if self.defaults else ""

    @property
    def main_errors(self) -> dict[str, str]:
        """Errors of the inputs outside the advanced section, by a name templates can use."""
        errors = self.errors
        return {name.replace(".", "_"): errors[name] for name in MAIN_FIELDS if name in errors}

    def summary_errors(self) -> list[tuple[str, str]]:
        return list(self.errors.items())

    def other_errors(self) -> list[tuple[str, str]]:
        """Errors with no input of their own (shown only in the summary)."""
        return [
            (name, message)
            for name, message in self.errors.items()
            if name not in ADVANCED_NAMES and name not in MAIN_FIELDS
        ]

    def estimate(self) -> dict | None:
        if self.draft is None:
            return None
        plan, estimate, t = self.draft.plan, self.draft.estimate, self.draft.config.training
        return {
            "tokens": plan.total_tokens,
            "steps": plan.total_steps,
            "steps_per_epoch": plan.steps_per_epoch,
            "epochs": display_value(float(t.epochs)),
            "capped": bool(t.max_steps),
            "rows_per_step": plan.rows_per_step,
            "rows": plan.rows,
            "tokens_per_row": plan.tokens_per_row,
            "duration": human_duration(estimate["seconds"]),
            "memory": human_bytes(estimate["memory_bytes"]),
        }


# --- numbers for people -------------------------------------------------------------


def human_parameters(count: int) -> str:
    """3,572,992 → 3.6M; 1,235,814,400 → 1.2B."""
    for size, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if count >= size:
            return f"{count / size:.1f}".removesuffix(".0") + suffix
    return str(count)


def human_bytes(count: int | float) -> str:
    gib, mib = 1024**3, 1024**2
    if count >= gib:
        return f"{count / gib:.1f} GiB"
    if count >= mib:
        return f"{count / mib:.0f} MiB"
    return f"{count / 1024:.0f} KiB"


def human_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s" if minutes < 10 else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
