"""Shapes of /api/v1/models/ and /api/v1/jobs/.

Reading serializers only: a job's configuration is read and checked by
`jobs.config` (through `lifecycle.check_start_job`), so that the API, the
wizard and an uploaded YAML file report the same dotted fields with the same
sentences. The request serializers below describe that body for the schema.
"""

import dataclasses

from django.urls import NoReverseMatch, reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from jobs import config as cfg
from jobs.models import CatalogModel, FineTuneJob
from jobs.services import artifacts, catalog

# --- the model catalog ---------------------------------------------------------------


class AvailabilitySerializer(serializers.Serializer):
    code = serializers.ChoiceField(choices=["ready", "download", "missing"])
    label = serializers.CharField()
    detail = serializers.CharField()


class RecommendedSerializer(serializers.Serializer):
    learning_rate = serializers.FloatField(
        help_text="For LoRA and QLoRA; a full fine-tune uses a tenth."
    )
    batch_size = serializers.IntegerField()
    target_modules = serializers.ListField(child=serializers.CharField())


class CatalogModelSerializer(serializers.ModelSerializer):
    availability = serializers.SerializerMethodField()
    memory_estimate_bytes = serializers.SerializerMethodField(
        help_text="Approximate peak training memory per method offered for this model."
    )
    recommended = serializers.SerializerMethodField()

    class Meta:
        model = CatalogModel
        fields = (
            "id", "display_name", "family", "parameters", "task", "source_kind", "source",
            "context_length", "supports_4bit", "quantization_note", "availability",
            "memory_estimate_bytes", "recommended",
        )  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(AvailabilitySerializer)
    def get_availability(self, entry: CatalogModel) -> dict:
        return dataclasses.asdict(catalog.availability(entry))

    @extend_schema_field(serializers.DictField(child=serializers.IntegerField()))
    def get_memory_estimate_bytes(self, entry: CatalogModel) -> dict:
        return catalog.memory_by_method(entry)

    @extend_schema_field(RecommendedSerializer)
    def get_recommended(self, entry: CatalogModel) -> dict:
        return {
            "learning_rate": entry.learning_rate,
            "batch_size": entry.batch_size,
            "target_modules": entry.lora_targets,
        }


# --- jobs -------------------------------------------------------------------------------


class JobErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    traceback = serializers.CharField(required=False, help_text="Staff only.")


class JobLinksSerializer(serializers.Serializer):
    self = serializers.URLField()
    metrics = serializers.URLField()
    events = serializers.URLField()
    checkpoints = serializers.URLField()
    adapter = serializers.URLField(allow_null=True, help_text="Null until the job has succeeded.")
    config_yaml = serializers.URLField()
    page = serializers.URLField(allow_null=True, help_text="The job's page in the studio.")


def _url(request, name: str, job_id) -> str | None:
    try:
        path = reverse(name, args=[job_id])
    except NoReverseMatch:
        return None
    return request.build_absolute_uri(path) if request is not None else path


class FineTuneJobSerializer(serializers.ModelSerializer):
    status_label = serializers.CharField(source="get_status_display", read_only=True)
    progress_percent = serializers.IntegerField(read_only=True)
    error = serializers.SerializerMethodField()
    links = serializers.SerializerMethodField()

    class Meta:
        model = FineTuneJob
        fields = (
            "id", "name", "status", "status_label", "dataset", "validation_dataset",
            "base_model", "method", "preset", "task", "fine_tuned_model", "config", "plan",
            "estimate", "attempt", "current_step", "total_steps", "progress_percent", "epoch",
            "train_loss", "val_loss", "best_val_loss", "tokens_per_second", "trained_tokens",
            "eta_seconds", "final_metrics", "error", "retry_of", "metadata", "created_at",
            "queued_at", "started_at", "finished_at", "links",
        )  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(JobErrorSerializer(allow_null=True))
    def get_error(self, job: FineTuneJob) -> dict | None:
        if not (job.error_code or job.error_message):
            return None
        error = {"code": job.error_code, "message": job.error_message}
        request = self.context.get("request")
        # Tracebacks name paths and code of the server: operators only.
        if request is not None and request.user.is_staff:
            error["traceback"] = job.error_traceback
        return error

    @extend_schema_field(JobLinksSerializer)
    def get_links(self, job: FineTuneJob) -> dict:
        request = self.context.get("request")
        ready = artifacts.adapter_archive(job) is not None
        return {
            "self": _url(request, "api-job-detail", job.pk),
            "metrics": _url(request, "api-job-metrics", job.pk),
            "events": _url(request, "api-job-events", job.pk),
            "checkpoints": _url(request, "api-job-checkpoints", job.pk),
            "adapter": _url(request, "api-job-adapter", job.pk) if ready else None,
            "config_yaml": _url(request, "api-job-config", job.pk),
            # The job's page is named like the dataset pages (`dataset-detail`).
            "page": _url(request, "job-detail", job.pk),
        }


class CheckpointSerializer(serializers.Serializer):
    step = serializers.IntegerField()
    attempt = serializers.IntegerField()
    train_loss = serializers.FloatField(allow_null=True)
    val_loss = serializers.FloatField(allow_null=True)
    created_at = serializers.DateTimeField()


class MetricPointSerializer(serializers.Serializer):
    """`live.MetricPayload`: the same shape the job page's websocket sends."""

    step = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=["train", "eval"])
    epoch = serializers.FloatField()
    train_loss = serializers.FloatField(allow_null=True)
    val_loss = serializers.FloatField(allow_null=True)
    accuracy = serializers.FloatField(allow_null=True)
    learning_rate = serializers.FloatField(allow_null=True)
    grad_norm = serializers.FloatField(allow_null=True)
    tokens_per_second = serializers.FloatField(allow_null=True)
    tokens = serializers.IntegerField()
    elapsed = serializers.FloatField(help_text="Seconds since the run started.")
    eta = serializers.FloatField(allow_null=True, help_text="Seconds left, estimated.")
    total_steps = serializers.IntegerField()


class MetricPageSerializer(serializers.Serializer):
    results = MetricPointSerializer(many=True)
    next = serializers.URLField(allow_null=True, help_text="The following points, if any.")


class JobEventSerializer(serializers.Serializer):
    """`live.EventPayload`."""

    id = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    kind = serializers.CharField(help_text="status, log, checkpoint or metric.")
    level = serializers.ChoiceField(choices=["info", "warning", "error"])
    message = serializers.CharField()
    to_status = serializers.CharField(allow_blank=True)


class JobEventPageSerializer(serializers.Serializer):
    results = JobEventSerializer(many=True)
    next = serializers.URLField(allow_null=True, help_text="The following events, if any.")


class ExportSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["", "queued", "running", "ready", "failed"])
    error = serializers.CharField(allow_blank=True)


class DraftSerializer(serializers.Serializer):
    """What a configuration would run, before anything is created."""

    config = serializers.DictField(help_text="The whole configuration document, resolved.")
    plan = serializers.DictField(help_text="Rows, tokens and steps.")
    estimate = serializers.DictField(help_text="Tokens, steps, seconds and memory_bytes.")


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
    """A configuration document (`jobs/config.py`); the preset fills what is left out."""

    tailor_config = serializers.IntegerField(required=False, help_text="Version; 1.")
    name = serializers.CharField(required=False, allow_blank=True)
    preset = serializers.ChoiceField(choices=list(cfg.PRESETS), required=False)
    data = _section_serializer("data", cfg.DataConfig)
    model = _section_serializer("model", cfg.ModelConfig)
    lora = _section_serializer("lora", cfg.LoraConfig)
    training = _section_serializer("training", cfg.TrainingConfig)
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
