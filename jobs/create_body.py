"""The body of POST /api/v1/jobs/: its shape for the schema (the request
serializers) and `job_document`, which reads it (the flat shape and
`hyperparameters` folded into a document) before `check_start_job` checks it.
`jobs.serializers` re-exports these names."""

import dataclasses
import json

from rest_framework import serializers

from jobs import config as cfg

# --- describing the create body for the schema -----------------------------------------


def _schema_field(dc_field: dataclasses.Field) -> serializers.Field:
    options = {"required": False, "help_text": dc_field.metadata.get("help", "")}
    kinds = {
        "bool": serializers.BooleanField,
        "int": serializers.IntegerField,
        "float": serializers.FloatField,
    }
    if dc_field.type == "list[str]":
        return serializers.ListField(child=serializers.CharField(), **options)
    if dc_field.type == "str | None":
        return serializers.CharField(allow_null=True, **options)
    return kinds.get(dc_field.type, serializers.CharField)(**options)


def _section_serializer(name: str, section_class) -> serializers.Serializer:
    fields = {f.name: _schema_field(f) for f in dataclasses.fields(section_class)}
    serializer_class = type(f"Job{name.title()}Section", (serializers.Serializer,), fields)
    return serializer_class(required=False)


class JobDocumentSerializer(serializers.Serializer):
    """A configuration document (`jobs/config/`); the preset fills what is left out."""

    tailor_config = serializers.IntegerField(required=False, help_text="Version; 1.")
    name = serializers.CharField(required=False, allow_blank=True)
    preset = serializers.ChoiceField(choices=list(cfg.PRESETS), required=False)
    data = _section_serializer("data", cfg.DataConfig)
    model = _section_serializer("model", cfg.ModelConfig)
    lora = _section_serializer("lora", cfg.LoraConfig)
    training = _section_serializer("training", cfg.TrainingConfig)
    tracking = _section_serializer("tracking", cfg.TrackingConfig)
    # The flat shape, mapped onto the document's sections.
    dataset = serializers.CharField(required=False, help_text="Same as data.dataset.")
    validation_dataset = serializers.CharField(
        required=False, allow_null=True, help_text="Same as data.validation_dataset."
    )
    base_model = serializers.CharField(required=False, help_text="Same as model.base_model.")
    method = serializers.ChoiceField(
        choices=list(cfg.METHODS), required=False, help_text="Same as model.method."
    )
    hyperparameters = serializers.DictField(
        required=False, help_text="Any training or lora field by its name, e.g. learning_rate."
    )


class JobCreateSerializer(JobDocumentSerializer):
    start = serializers.BooleanField(
        default=True, help_text="Queue the job at once; false leaves it created."
    )


class JobUploadSerializer(serializers.Serializer):
    config_file = serializers.FileField(help_text="A YAML job file, as GET …/config/ gives.")
    start = serializers.BooleanField(default=True)
    dataset = serializers.CharField(required=False, help_text="Train on this dataset instead.")
    validation_dataset = serializers.CharField(required=False)
    base_model = serializers.CharField(required=False)
    method = serializers.ChoiceField(choices=list(cfg.METHODS), required=False)
    preset = serializers.ChoiceField(choices=list(cfg.PRESETS), required=False)
    name = serializers.CharField(required=False)


# --- reading a create body ----------------------------------------------------------------

# The flat shape's keys and where they go in the document.
FLAT_FIELDS = {
    "dataset": ("data", "dataset"),
    "validation_dataset": ("data", "validation_dataset"),
    "base_model": ("model", "base_model"),
    "method": ("model", "method"),
}
HYPERPARAMETER_SECTIONS = {
    name: {f.name for f in dataclasses.fields(cfg.SECTIONS[name])} for name in ("training", "lora")
}


def _start_flag(value) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "false", "1", "0", "on", "off"}:
        return value.lower() in {"true", "1", "on"}
    raise cfg.ConfigError([cfg.FieldError("start", "must be true or false.")])


def job_document(body: dict, base: dict | None = None) -> tuple[dict, bool]:
    """The configuration document of a create or estimate body, and its `start` flag.

    `body` is a document, the flat shape (dataset, validation_dataset,
    base_model, method, hyperparameters) or a mix; flat keys win over the
    document's. `base` is an uploaded document that `body` overrides. Shape
    and ranges are left to `check_start_job`; raises cfg.ConfigError for what
    only this shape can get wrong.
    """
    body = dict(body)
    start = _start_flag(body.pop("start", True))
    flat = {key: body.pop(key) for key in FLAT_FIELDS if key in body}
    hyperparameters = body.pop("hyperparameters", None)
    document = {**(base or {}), **body}
    errors: list[cfg.FieldError] = []

    def put(section: str, name: str, value) -> None:
        current = document.get(section) or {}
        # A section that is not a mapping is reported by read_document.
        if isinstance(current, dict):
            document[section] = {**current, name: value}

    for key, value in flat.items():
        put(*FLAT_FIELDS[key], value)
    if isinstance(hyperparameters, str):  # a multipart form sends it as JSON text
        try:
            hyperparameters = json.loads(hyperparameters or "{}")
        except (ValueError, RecursionError):  # json recurses once per level: "[[[[…"
            hyperparameters = None
            errors.append(cfg.FieldError("hyperparameters", "is not valid JSON."))
    if hyperparameters is not None and not isinstance(hyperparameters, dict):
        errors.append(
            cfg.FieldError("hyperparameters", "must be a mapping of training or lora fields.")
        )
    elif hyperparameters:
        for name, value in hyperparameters.items():
            section = next(
                (s for s, names in HYPERPARAMETER_SECTIONS.items() if name in names), None
            )
            if section is None:
                errors.append(
                    cfg.FieldError(
                        # The name is the client's: quoted clipped, like read_document's.
                        f"hyperparameters.{cfg.clipped(name)}",
                        "is not a training or lora field.",
                    )
                )
            else:
                put(section, name, value)
    if errors:
        raise cfg.ConfigError(errors)
    return document, start
