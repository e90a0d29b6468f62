"""Checking a job's configuration: from a (partial) document, the user's
datasets and the catalog to a `JobDraft` ready to become a job. Writes
nothing; errors are `jobs.config.ConfigError`, naming every bad field."""

import dataclasses
import uuid
from dataclasses import dataclass

import yaml
from django.http import Http404

from datasets_app.models import Dataset, DatasetStatus
from jobs import config as cfg
from jobs import vocabulary
from jobs.models import FineTuneJob
from jobs.services import catalog, lineage
from jobs.services.estimates import estimate
from jobs.vocabulary import Adapter

MAX_CONFIG_BYTES = 64 * 1024


@dataclass
class JobDraft:
    """A checked configuration, ready to become a job."""

    config: cfg.JobConfig
    model: object  # CatalogModel
    dataset: Dataset
    validation_dataset: Dataset | None
    plan: cfg.Plan
    estimate: dict
    # The succeeded job whose adapter this one starts from (model.start_from;
    # a merge's first source), None for a new adapter.
    parent: FineTuneJob | None = None

    @property
    def document(self) -> dict:
        return self.config.to_document()

    def as_dict(self) -> dict:
        """The draft as the API's dry run answers it."""
        return {
            "config": self.document,
            "plan": dataclasses.asdict(self.plan),
            "estimate": self.estimate,
        }


def dataset_facts(dataset: Dataset) -> cfg.DatasetFacts:
    length = (dataset.stats or {}).get("length", {})
    return cfg.DatasetFacts(
        rows=dataset.num_train_rows or dataset.num_rows,
        validation_rows=dataset.num_validation_rows,
        mean_characters=float(length.get("mean", 200)),
        p95_characters=float(length.get("p95", length.get("max", 400))),
        task=dataset.task,
    )


def _ready_dataset(user, dataset_id, field: str) -> Dataset:
    try:
        uuid.UUID(str(dataset_id))
        dataset = Dataset.objects.for_user(user).filter(pk=dataset_id).first()
    except ValueError:
        dataset = None
    if dataset is None:
        raise cfg.ConfigError([cfg.FieldError(field, "no such dataset.")])
    if dataset.status != DatasetStatus.READY:
        raise cfg.ConfigError(
            [
                cfg.FieldError(
                    field,
                    f"dataset “{dataset.name}” is {dataset.get_status_display().lower()}, "
                    "not ready: only validated datasets can be trained on.",
                )
            ]
        )
    return dataset


def _usable_model(model_id: str, dataset: Dataset):
    """The catalog entry `model_id`, when it can learn `dataset`'s task here."""
    try:
        model = catalog.get_model(model_id)
    except Http404:
        raise cfg.ConfigError(
            [cfg.FieldError("model.base_model", "is not in the model catalog.")]
        ) from None
    wanted_task = vocabulary.MODEL_TASK_FOR_DATASET_TASK.get(dataset.task)
    if model.task != wanted_task:
        raise cfg.ConfigError(
            [
                cfg.FieldError(
                    "model.base_model",
                    f"{model.display_name} is a {model.get_task_display().lower()} model; "
                    f"“{dataset.name}” needs a {vocabulary.MODEL_TASK_LABELS[wanted_task]} model.",
                )
            ]
        )
    available = catalog.availability(model)
    if not available.usable:
        raise cfg.ConfigError([cfg.FieldError("model.base_model", available.detail)])

    return model


def check_start_job(user, document: dict) -> JobDraft:
    """Resolve and check a (partial) configuration document for `user`.

    Fields missing from `document` come from its preset, sized from the
    dataset and the model. Raises cfg.ConfigError naming every bad field;
    writes nothing.
    """
    requested = cfg.read_document(document)
    errors: list[cfg.FieldError] = []
    if not requested.data.dataset:
        errors.append(cfg.FieldError("data.dataset", "choose a dataset."))
    if not requested.model.base_model:
        errors.append(cfg.FieldError("model.base_model", "choose a base model."))
    if requested.preset not in cfg.PRESETS:
        errors.append(cfg.FieldError("preset", f"must be one of {', '.join(cfg.PRESETS)}."))
    if requested.model.method not in cfg.METHODS:
        errors.append(cfg.FieldError("model.method", f"must be one of {', '.join(cfg.METHODS)}."))
    if errors:
        raise cfg.ConfigError(errors)

    dataset = _ready_dataset(user, requested.data.dataset, "data.dataset")
    validation = None
    if requested.data.validation_dataset:
        validation = _ready_dataset(
            user, requested.data.validation_dataset, "data.validation_dataset"
        )
        if validation.task != dataset.task:
            raise cfg.ConfigError(
                [
                    cfg.FieldError(
                        "data.validation_dataset",
                        f"is a {validation.task} dataset; the training set is {dataset.task}.",
                    )
                ]
            )
    model = _usable_model(requested.model.base_model, dataset)
    method_given = "method" in ((document.get("model") or {}) if isinstance(document, dict) else {})
    inherited = None if method_given else lineage.method_of(user, requested.model.start_from)
    if inherited:
        # Training on from an adapter: its kind, unless the document says otherwise.
        document = {**document, "model": {**(document.get("model") or {}), "method": inherited}}
        requested.model.method = inherited
    elif not method_given and not model.supports_4bit:
        # QLoRA is the default, but this model cannot be loaded in 4 bits here.
        document = {**document, "model": {**(document.get("model") or {}), "method": Adapter.LORA}}
        requested.model.method = Adapter.LORA
    facts = dataset_facts(dataset)
    mfacts = catalog.model_facts(model)
    overlay = cfg.preset_overlay(requested.preset, facts, mfacts, requested.model.method)
    base = cfg.read_document(overlay)
    config = cfg.read_document(document, base=base)
    config.model.base_model = model.id
    config.objective = lineage.objective_for(config, dataset)
    parent = lineage.start_from(user, config, model)
    config.data.dataset = str(dataset.id)
    config.data.validation_dataset = str(validation.id) if validation else None
    if not config.name:
        config.name = f"{dataset.name} · {model.id} · {cfg.PRESETS[config.preset].lower()}"
    cfg.check_config(config, full_finetune_limit=catalog.full_finetune_limit(), model=model)
    validation_rows = validation.num_rows if validation else dataset.num_validation_rows
    if (config.training.eval_every or config.training.early_stopping_patience) and not (
        validation_rows
    ):
        raise cfg.ConfigError(
            [
                cfg.FieldError(
                    "training.eval_every",
                    "needs validation rows: the dataset has none held out "
                    "(change its split or choose a validation dataset).",
                )
            ]
        )
    steps = cfg.plan(config, facts, mfacts)
    if not config.training.logging_steps:
        config.training.logging_steps = cfg.automatic_logging_steps(steps.total_steps)
    return JobDraft(
        config=config,
        model=model,
        dataset=dataset,
        validation_dataset=validation,
        plan=steps,
        estimate=estimate(model, config, steps),
        parent=parent,
    )


def parse_config_upload(upload) -> dict:
    """The document in an uploaded YAML (or JSON) file; ConfigError when unreadable."""
    if upload.size > MAX_CONFIG_BYTES:
        raise cfg.ConfigError(
            [cfg.FieldError("config_file", "is larger than 64 KB; is it a Tailor job file?")]
        )
    document = cfg.load_job_file(upload.read())
    if not isinstance(document, dict):
        raise cfg.ConfigError(
            [cfg.FieldError("config_file", "must hold a mapping with data, model and training.")]
        )
    return document


def config_yaml(job: FineTuneJob) -> str:
    header = (
        f"# Tailor job configuration (version {cfg.CONFIG_VERSION}).\n"
        f"# Job {job.id}: {job.name}\n"
        "# Upload this file on the New job page, or POST it to /api/v1/jobs/, to run it again.\n"
    )
    return header + yaml.safe_dump(job.config, sort_keys=False, allow_unicode=True)
