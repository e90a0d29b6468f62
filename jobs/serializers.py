"""Shapes of /api/v1/models/ and /api/v1/jobs/.

Reading serializers only: a job's configuration is read and checked by
`jobs.config` (through `lifecycle.check_start_job`), so that the API, the
wizard and an uploaded YAML file report the same dotted fields with the same
sentences. The request body's shape and its reading live in `jobs.create_body`
(re-exported here).
"""

import dataclasses

from django.urls import NoReverseMatch, reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from jobs.models import CatalogModel, ExportStatus, FineTuneJob, JobStatus, MetricKind
from jobs.services import artifacts, catalog, organise
from quotas.services import Standings
from usage.serializers import JobUsageSerializer
from usage.services import job_usage

# --- the model catalog ---------------------------------------------------------------


class AvailabilitySerializer(serializers.Serializer):
    code = serializers.ChoiceField(choices=catalog.AVAILABILITY_CODES)
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
    message = serializers.CharField(
        help_text="A plain sentence: never an exception's text or a server path."
    )
    traceback = serializers.CharField(
        required=False, help_text="Staff only: the error itself and where it happened."
    )


class JobLinksSerializer(serializers.Serializer):
    self = serializers.URLField()
    metrics = serializers.URLField()
    events = serializers.URLField()
    checkpoints = serializers.URLField()
    adapter = serializers.URLField(allow_null=True, help_text="Null until the job has succeeded.")
    config_yaml = serializers.URLField()
    page = serializers.URLField(allow_null=True, help_text="The job's page in the studio.")


class JobQueueSerializer(serializers.Serializer):
    position = serializers.IntegerField(
        allow_null=True,
        help_text="1: the next to be sent to a worker (quotas and fair share decide); null once "
        "released to a worker.",
    )
    released = serializers.BooleanField(help_text="Sent to a training worker, which starts it.")
    reason = serializers.CharField(
        help_text="Why it waits, e.g. “you have 1 running job, your limit”."
    )
    message = serializers.CharField(help_text="What the pages say, e.g. “2nd in line; …”.")
    running_jobs = serializers.IntegerField(help_text="The owner's jobs holding a training slot.")
    running_limit = serializers.IntegerField(
        allow_null=True, help_text="The owner's running-jobs limit; null: unlimited."
    )


_TIME = serializers.DateTimeField()  # how the API writes a time
_STATUS_LABELS = dict(JobStatus.choices)


def _str_or_none(value) -> str | None:
    return None if value is None else str(value)


# Stands for a job's id while a link is reversed once per request.
_ANY_ID = "00000000-0000-4000-8000-000000000000"


class JobLinks:
    """A job's links, each URL reversed once per request rather than once per
    job (a page of 50 jobs would otherwise reverse 350 URLs): the pattern is
    reversed with a stand-in id, made absolute, then the job's id goes in."""

    def __init__(self, request):
        self.request = request
        self.patterns: dict[str, str | None] = {}

    def url(self, name: str, job_id) -> str | None:
        if name not in self.patterns:
            try:
                path = reverse(name, args=[_ANY_ID])
            except NoReverseMatch:
                path = None
            if path is not None and self.request is not None:
                path = self.request.build_absolute_uri(path)
            self.patterns[name] = path
        pattern = self.patterns[name]
        return None if pattern is None else pattern.replace(_ANY_ID, str(job_id))


class FineTuneJobSerializer(serializers.ModelSerializer):
    status_label = serializers.CharField(source="get_status_display", read_only=True)
    tags = serializers.SerializerMethodField()
    progress_percent = serializers.IntegerField(read_only=True)
    error = serializers.SerializerMethodField()
    queue = serializers.SerializerMethodField()
    usage = serializers.SerializerMethodField()
    links = serializers.SerializerMethodField()

    class Meta:
        model = FineTuneJob
        fields = (
            "id", "name", "status", "status_label", "dataset", "validation_dataset",
            "base_model", "method", "preset", "task", "objective", "parent", "fine_tuned_model",
            "config", "plan", "estimate", "attempt", "current_step", "total_steps",
            "progress_percent", "epoch", "train_loss", "val_loss", "best_val_loss",
            "tokens_per_second", "trained_tokens", "eta_seconds", "final_metrics", "error",
            "retry_of", "metadata", "tags", "note", "starred", "created_at", "queued_at",
            "started_at", "finished_at", "queue", "usage", "links",
        )  # fmt: skip
        read_only_fields = fields

    # The fields DRF would copy as they are (plain values and JSON documents).
    PLAIN = (
        "name", "status", "method", "preset", "task", "objective", "fine_tuned_model", "config",
        "plan",
        "estimate", "attempt", "current_step", "total_steps", "progress_percent", "epoch",
        "train_loss", "val_loss", "best_val_loss", "tokens_per_second", "trained_tokens",
        "eta_seconds", "final_metrics", "metadata", "note", "starred",
    )  # fmt: skip
    TIMES = ("created_at", "queued_at", "started_at", "finished_at")

    def to_representation(self, job: FineTuneJob) -> dict:
        """What DRF's ModelSerializer would answer (a test holds the two
        equal), built directly: the per-field machinery cost most of a list's
        time (a page of 50 jobs, 2.5x slower)."""
        answer = {"id": str(job.pk)}
        for name in self.PLAIN:
            answer[name] = getattr(job, name)
        answer["status_label"] = _STATUS_LABELS.get(job.status, job.status)
        answer["dataset"] = _str_or_none(job.dataset_id)
        answer["validation_dataset"] = _str_or_none(job.validation_dataset_id)
        answer["base_model"] = job.base_model_id
        answer["retry_of"] = _str_or_none(job.retry_of_id)
        answer["parent"] = _str_or_none(job.parent_id)
        for name in self.TIMES:
            value = getattr(job, name)
            answer[name] = None if value is None else _TIME.to_representation(value)
        answer["tags"] = self.get_tags(job)
        answer["error"] = self.get_error(job)
        answer["queue"] = self.get_queue(job)
        answer["usage"] = self.get_usage(job)
        answer["links"] = self.get_links(job)
        return {name: answer[name] for name in self.Meta.fields}

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_tags(self, job: FineTuneJob) -> list[str]:
        """The owner's tags, alphabetically (a list prefetches them for its page)."""
        return organise.tag_names(job)

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

    def _page_of(self, job: FineTuneJob) -> list[FineTuneJob]:
        """The page `job` is serialized with (a list's), else the job alone."""
        page = getattr(self.parent, "instance", None) if self.parent is not None else None
        return page if isinstance(page, list | tuple) else [job]

    @extend_schema_field(JobQueueSerializer(allow_null=True))
    def get_queue(self, job: FineTuneJob) -> dict | None:
        """Where a queued job stands (null for any other status); looked up
        once for a whole page of jobs."""
        if job.status != JobStatus.QUEUED:
            return None
        standings = self.context.get("job_standings")
        if standings is None:
            request = self.context.get("request")
            standings = Standings(getattr(request, "user", None), self._page_of(job))
            self.context["job_standings"] = standings
        standing = standings.of(job)
        return None if standing is None else standing.as_dict()

    @extend_schema_field(JobUsageSerializer(allow_null=True))
    def get_usage(self, job: FineTuneJob) -> dict | None:
        """Device time and cost so far (null before it first ran); read once
        for a whole page of jobs."""
        known = self.context.get("job_usage")
        if known is None or job.pk not in known["asked"]:
            ids = [j.pk for j in self._page_of(job)]
            known = {"asked": {*ids, job.pk}, "found": job_usage.usage_of_jobs({*ids, job.pk})}
            self.context["job_usage"] = known
        usage = known["found"].get(job.pk)
        return None if usage is None else usage.as_dict()

    @extend_schema_field(JobLinksSerializer)
    def get_links(self, job: FineTuneJob) -> dict:
        # One JobLinks for the whole page of jobs (the list's context is shared).
        links = self.context.setdefault("job_links", JobLinks(self.context.get("request")))
        ready = artifacts.adapter_archive(job) is not None
        return {
            "self": links.url("api-job-detail", job.pk),
            "metrics": links.url("api-job-metrics", job.pk),
            "events": links.url("api-job-events", job.pk),
            "checkpoints": links.url("api-job-checkpoints", job.pk),
            "adapter": links.url("api-job-adapter", job.pk) if ready else None,
            "config_yaml": links.url("api-job-config", job.pk),
            # The job's page is named like the dataset pages (`dataset-detail`).
            "page": links.url("job-detail", job.pk),
        }


class JobOrganisationSerializer(serializers.Serializer):
    """What PATCH changes of a job: the owner's own organisation of it (the
    schema's shape; `jobs.services.organise` reads and checks it)."""

    tags = serializers.ListField(
        child=serializers.CharField(max_length=organise.MAX_TAG_CHARACTERS),
        max_length=organise.MAX_TAGS,
        required=False,
        help_text="Replaces the job's tags: each 1 to 40 letters, digits, spaces, hyphens, "
        "underscores or full stops; a text of tags separated by commas is read too.",
    )
    note = serializers.CharField(
        max_length=organise.MAX_NOTE_CHARACTERS, allow_blank=True, required=False
    )
    starred = serializers.BooleanField(required=False)


class CheckpointSerializer(serializers.Serializer):
    step = serializers.IntegerField()
    attempt = serializers.IntegerField()
    train_loss = serializers.FloatField(allow_null=True)
    val_loss = serializers.FloatField(allow_null=True)
    created_at = serializers.DateTimeField()


class MetricPointSerializer(serializers.Serializer):
    """`live.MetricPayload`: the same shape the job page's websocket sends."""

    step = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=MetricKind.values)
    epoch = serializers.FloatField()
    train_loss = serializers.FloatField(allow_null=True)
    val_loss = serializers.FloatField(allow_null=True)
    accuracy = serializers.FloatField(allow_null=True)
    reward_margin = serializers.FloatField(
        allow_null=True, help_text="Preference jobs: chosen answers' reward minus rejected ones'."
    )
    preference_accuracy = serializers.FloatField(
        allow_null=True, help_text="Preference jobs: the share of pairs whose chosen answer wins."
    )
    learning_rate = serializers.FloatField(allow_null=True)
    grad_norm = serializers.FloatField(allow_null=True)
    tokens_per_second = serializers.FloatField(allow_null=True)
    tokens = serializers.IntegerField()
    elapsed = serializers.FloatField(help_text="Seconds since the run started.")
    eta = serializers.FloatField(allow_null=True, help_text="Seconds left, estimated.")
    total_steps = serializers.IntegerField()


class AttemptMetricPointSerializer(MetricPointSerializer):
    attempt = serializers.IntegerField(help_text="The run (claim) of the job that logged it.")


class AttemptMetricPageSerializer(serializers.Serializer):
    results = AttemptMetricPointSerializer(many=True)
    next = serializers.URLField(allow_null=True, help_text="The following points, if any.")
    rewind_to = serializers.IntegerField(
        allow_null=True,
        help_text="Set when `attempt` was given and a later attempt replaced points past this "
        "step: drop the points of attempts up to `attempt` after it.",
    )


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
    status = serializers.ChoiceField(choices=ExportStatus.values)
    error = serializers.CharField(allow_blank=True)


class DraftSerializer(serializers.Serializer):
    """What a configuration would run, before anything is created."""

    config = serializers.DictField(help_text="The whole configuration document, resolved.")
    plan = serializers.DictField(help_text="Rows, tokens and steps.")
    estimate = serializers.DictField(
        help_text="Tokens, steps, seconds, memory_bytes; device, price_per_device_hour, cost "
        "(null when a device-hour is free) and currency."
    )


from jobs.create_body import (  # noqa: E402  (re-exported: the body's shape and reading)
    JobCreateSerializer,
    JobDocumentSerializer,
    JobUploadSerializer,
    job_document,
)

__all__ = ["JobCreateSerializer", "JobDocumentSerializer", "JobUploadSerializer", "job_document"]
