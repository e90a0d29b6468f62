"""The new-job wizard: what the form posts, read into a configuration document.

The form's inputs are named after the document's dotted fields
(`training.learning_rate`), so a `ConfigError` lands next to its input with
no mapping table; the page calls each field by its label from
`jobs.config.labels`. Each advanced input also carries the preset's value in
a hidden `default.<field>`: only values that differ from it are sent as
overrides, so switching the preset moves every field the user left alone.

A change redraws only what depends on it (`Redraw`): the control the user is
on stays in the page, and keeps its focus.
"""

import dataclasses
import functools
from dataclasses import dataclass, field

from datasets_app.models import Dataset
from jobs import config as cfg
from jobs.config.labels import field_label, for_people, in_words
from jobs.human import human_bytes, human_duration, human_parameters  # noqa: F401 (re-exported)
from jobs.services import catalog, estimates, lifecycle, lineage
from jobs.vocabulary import FEEDBACK, PREFERENCE, Adapter

PREFERENCE_GROUP = "Preference tuning"


@dataclass(frozen=True)
class AdvancedField:
    name: str  # dotted, as in the document and the form
    kind: str  # int | float | choice | bool | list | text
    group: str
    choices: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return field_label(self.name)

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
    AdvancedField("training.epochs", "float", "Schedule"),
    AdvancedField("training.max_steps", "int", "Schedule"),
    AdvancedField("training.learning_rate", "float", "Schedule"),
    AdvancedField("training.scheduler", "choice", "Schedule", cfg.SCHEDULERS),
    AdvancedField("training.warmup_ratio", "float", "Schedule"),
    AdvancedField("training.weight_decay", "float", "Schedule"),
    AdvancedField("training.seed", "int", "Schedule"),
    AdvancedField("training.batch_size", "int", "Batches"),
    AdvancedField("training.gradient_accumulation", "int", "Batches"),
    AdvancedField("training.devices", "int", "Batches"),
    AdvancedField("training.max_seq_length", "int", "Batches"),
    AdvancedField("training.packing", "bool", "Batches"),
    AdvancedField("training.loss_on", "choice", "Batches", cfg.LOSS_ON),
    AdvancedField("lora.rank", "int", "LoRA adapter"),
    AdvancedField("lora.alpha", "int", "LoRA adapter"),
    AdvancedField("lora.dropout", "float", "LoRA adapter"),
    AdvancedField("lora.target_modules", "list", "LoRA adapter"),
    AdvancedField("training.eval_every", "int", "Evaluation"),
    AdvancedField("training.save_every", "int", "Evaluation"),
    AdvancedField("training.keep_checkpoints", "int", "Evaluation"),
    AdvancedField("training.early_stopping_patience", "int", "Evaluation"),
    # Kept on clone and edit like every other field; the operator sets the
    # trackers' addresses and keys (README: trackers).
    AdvancedField("tracking.wandb_project", "text", "Experiment tracking"),
    AdvancedField("tracking.wandb_entity", "text", "Experiment tracking"),
    AdvancedField("tracking.wandb_name", "text", "Experiment tracking"),
    AdvancedField("tracking.wandb_tags", "list", "Experiment tracking"),
    AdvancedField("tracking.mlflow_experiment", "text", "Experiment tracking"),
    AdvancedField("tracking.mlflow_run_name", "text", "Experiment tracking"),
    # Shown for preference and feedback data only (JobWizard.advanced_groups).
    AdvancedField("preference.beta", "float", PREFERENCE_GROUP),
]
# Inputs outside the advanced section, by the dotted name an error carries.
MAIN_FIELDS = (
    "name",
    "preset",
    "data.dataset",
    "data.validation_dataset",
    "model.base_model",
    "model.method",
    "model.start_from",
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
    start_from: str = ""  # a succeeded job whose adapter trains on; empty: a new adapter
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
            start_from=last("model.start_from") or "",
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
            start_from=str(model.get("start_from") or ""),
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
        if self.start_from:
            document["model"]["start_from"] = self.start_from
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


@dataclass(frozen=True)
class Redraw:
    """What a preview draws again besides the estimate, the error summary,
    the fields' messages and Start (those follow every change).

    The method cards follow the model; the advanced inputs hold the preset's
    values for the dataset, model and method. A new dataset changes every
    choice after it, so the whole form is drawn again (htmx then puts the
    focus back on the dataset's select, by its id).
    """

    form: bool = False
    methods: bool = False
    advanced: bool = False

    @classmethod
    def after(cls, changed: set[str], *, steps_drawn: bool) -> "Redraw":
        """`changed`: the inputs changed since the last preview (none said:
        everything); `steps_drawn`: whether the page shows, and still needs,
        the steps after the model."""
        if not changed or "data.dataset" in changed or not steps_drawn:
            return cls(form=True)
        return cls(
            methods="model.base_model" in changed,
            advanced=bool(changed & {"model.base_model", "model.method", "preset"}),
        )


@dataclass(frozen=True)
class FieldMessage:
    """What the page says under one input: its error, else its help."""

    field: str  # dotted
    error: str = ""  # in words (labels, not paths)
    help: str = ""
    preset_value: str | None = None  # shown when the input differs from the preset

    @property
    def input_id(self) -> str:
        return "id_" + self.field.replace(".", "-")

    @property
    def slot_id(self) -> str:
        return "message-" + self.field.replace(".", "-")


@dataclass
class BoundField:
    spec: AdvancedField
    value: str
    default: str
    error: str = ""

    @property
    def message(self) -> FieldMessage:
        return FieldMessage(
            self.spec.name,
            error=in_words(self.error),
            help=self.spec.help,
            preset_value=None if self.value == self.default else (self.default or "—"),
        )


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
        return self.defaults.model.method if self.defaults else Adapter.QLORA

    def method_options(self) -> list[dict]:
        model, limit = self.model, catalog.full_finetune_limit()
        resolved = self.draft.config if self.draft else self.defaults
        options = []
        for value, label in cfg.METHODS.items():
            reason = ""
            if model is not None and value == Adapter.QLORA and not model.supports_4bit:
                reason = f"Not offered for this model: {model.quantization_note or 'no 4-bit'}."
            if model is not None and value == Adapter.FULL and model.parameters > limit:
                reason = (
                    f"Offered for models up to {human_parameters(limit)} parameters; "
                    f"this one has {human_parameters(model.parameters)}."
                )
            memory = ""
            if model is not None and resolved is not None and not reason:
                # The estimate's own function and batch: the checked card and
                # the estimate (and the job page) show one figure.
                memory = human_bytes(estimates.memory_bytes(model, value, resolved.training))
            options.append(
                {
                    "value": value,
                    "label": label,
                    "reason": reason,
                    "memory": memory,
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
            if spec.group == PREFERENCE_GROUP and not self.tunes_preferences:
                continue
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
    def tunes_preferences(self) -> bool:  # the job usually starts from an adapter
        return self.dataset is not None and self.dataset.task in (PREFERENCE, FEEDBACK)

    def start_choices(self):
        """The succeeded jobs whose adapter this job may train on."""
        return lineage.start_choices(self.user, self.model, self.method) if self.model else []

    @property
    def default_method(self) -> str:
        return self.defaults.model.method if self.defaults else ""

    @property
    def default_name(self) -> str:
        return self.defaults.name if self.defaults else ""

    @functools.cached_property
    def main_messages(self) -> dict[str, FieldMessage]:
        """The messages of the inputs outside the advanced groups (MAIN_FIELDS),
        by a name templates can use (`model_base_model`)."""
        messages = {}
        for name in MAIN_FIELDS:
            help_text = self.name_note() if name == "name" else ""
            error = in_words(self.errors.get(name, ""))
            messages[name.replace(".", "_")] = FieldMessage(name, error=error, help=help_text)
        return messages

    def advanced_messages(self) -> list[FieldMessage]:
        """Every advanced input's message, and the name's and validation data's
        (the inputs of the advanced section, for a preview that keeps them)."""
        main = self.main_messages
        bound = [b.message for _, fields in self.advanced_groups() for b in fields]
        return [main["name"], main["data_validation_dataset"], main["model_start_from"], *bound]

    def name_note(self) -> str:
        """What the job will be called, when another of the user's jobs has the name."""
        if self.draft is None:
            return ""
        wanted = self.draft.config.name
        name = lifecycle.unique_job_name(self.user, wanted)
        if name == wanted:
            return ""
        return f"You already have a job named “{wanted}”: this one will be “{name}”."

    def summary_errors(self) -> list[tuple[str, str]]:
        """Every error as (label, message in words)."""
        return [for_people(cfg.FieldError(name, message)) for name, message in self.errors.items()]

    def estimate(self) -> dict | None:
        if self.draft is None:
            return None
        plan, t = self.draft.plan, self.draft.config.training
        return {
            "tokens": plan.total_tokens,
            "steps": plan.total_steps,
            "steps_per_epoch": plan.steps_per_epoch,
            "epochs": display_value(float(t.epochs)),
            "capped": bool(t.max_steps),
            "rows_per_step": plan.rows_per_step,
            "rows": plan.rows,
            "tokens_per_row": plan.tokens_per_row,
            **estimates.in_words(self.draft.estimate, self.draft.config.model.method),
        }
