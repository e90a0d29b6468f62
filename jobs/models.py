"""Jobs: the model catalog, fine-tuning jobs, their events, metrics and checkpoints."""

import uuid
from pathlib import Path

from django.conf import settings
from django.db import models
from django.utils import timezone
from taggit.managers import TaggableManager
from taggit.models import TaggedItemBase

from jobs import vocabulary


class ModelTask(models.TextChoices):
    CAUSAL_LM = vocabulary.CAUSAL_LM, "Text generation (causal LM)"
    SEQUENCE_CLASSIFICATION = vocabulary.SEQUENCE_CLASSIFICATION, "Text classification"


class ModelSource(models.TextChoices):
    BUNDLED = "bundled", "Bundled with Tailor"
    HUGGING_FACE = "hf", "Hugging Face id"
    LOCAL = "local", "Local folder"


class CatalogModel(models.Model):
    """A base model users can fine-tune. Operators add more in the admin."""

    id = models.SlugField(primary_key=True, max_length=100, help_text="Short id, e.g. qwen2.5-0.5b")
    display_name = models.CharField(max_length=200)
    family = models.CharField(max_length=100, blank=True)
    parameters = models.BigIntegerField(help_text="Parameter count of the base model.")
    task = models.CharField(max_length=32, choices=ModelTask.choices, default=ModelTask.CAUSAL_LM)
    source_kind = models.CharField(max_length=16, choices=ModelSource.choices)
    source = models.CharField(
        max_length=500,
        help_text="Hugging Face id (org/name), an absolute folder, or a bundled model's name.",
    )
    context_length = models.IntegerField(default=2048)
    # Measured on each tokenizer over English text; sizes the token estimates.
    characters_per_token = models.FloatField(default=4.0)
    learning_rate = models.FloatField(
        default=2e-4, help_text="LoRA/QLoRA learning rate of the presets (full: a tenth)."
    )
    batch_size = models.IntegerField(default=8, help_text="Rows per step of the presets.")
    target_modules = models.JSONField(
        default=list, blank=True, help_text='LoRA targets; empty means ["all-linear"].'
    )
    supports_4bit = models.BooleanField(default=True)
    quantization_note = models.CharField(
        max_length=300, blank=True, help_text="Why 4-bit is not offered, shown in the wizard."
    )
    description = models.TextField(blank=True)
    enabled = models.BooleanField(default=True)
    sort_order = models.IntegerField(default=100)

    class Meta:
        ordering = ("sort_order", "parameters", "id")

    def __str__(self) -> str:
        return self.display_name

    @property
    def lora_targets(self) -> list[str]:
        return list(self.target_modules) or ["all-linear"]


class JobStatus(models.TextChoices):
    CREATED = "created", "Created"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    CANCELLING = "cancelling", "Cancelling"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class ExportStatus(models.TextChoices):
    """A merged export's state; blank until one is asked for."""

    NONE = "", "Not asked"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


# An export being made: one at a time, and the job is not deleted under it.
EXPORTING = (ExportStatus.QUEUED, ExportStatus.RUNNING)
ACTIVE_STATUSES = (JobStatus.CREATED, JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.CANCELLING)
FINISHED_STATUSES = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class FineTuneJobQuerySet(models.QuerySet):
    def for_user(self, user):
        """The user's own jobs; staff see everyone's."""
        return self if user.is_staff else self.filter(owner=user)


class TaggedJob(TaggedItemBase):
    """A tag on a job: a plain foreign key (jobs' keys are UUIDs, which
    taggit's generic integer-keyed table cannot hold)."""

    content_object = models.ForeignKey("FineTuneJob", on_delete=models.CASCADE)


class FineTuneJob(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="jobs"
    )
    name = models.CharField(max_length=200)
    # PROTECT: a job's record names its data; deleting a dataset only hides it.
    dataset = models.ForeignKey("datasets.Dataset", on_delete=models.PROTECT, related_name="jobs")
    validation_dataset = models.ForeignKey(
        "datasets.Dataset",
        on_delete=models.PROTECT,
        related_name="validation_jobs",
        null=True,
        blank=True,
    )
    base_model = models.ForeignKey(CatalogModel, on_delete=models.PROTECT, related_name="jobs")
    method = models.CharField(max_length=16)
    preset = models.CharField(max_length=16)
    task = models.CharField(max_length=32, choices=ModelTask.choices)
    # What the run optimises (jobs.vocabulary.ObjectiveName): the dataset's
    # task decides it; a merge trains nothing.
    objective = models.CharField(max_length=16, default="supervised")
    # The succeeded job whose adapter this one starts from (model.start_from,
    # or a merge's first source): the lineage the job page walks up.
    parent = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="children"
    )
    config = models.JSONField(help_text="The whole configuration document, resolved.")
    plan = models.JSONField(default=dict, blank=True)
    estimate = models.JSONField(default=dict, blank=True)
    retry_of = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="retries"
    )
    fine_tuned_model = models.CharField(max_length=300, unique=True)
    # Up to 16 short key-value pairs a script attaches (OpenAI's `metadata`).
    metadata = models.JSONField(default=dict, blank=True)
    # The revision of `dataset` whose rows were linked in at creation (None: before it was kept).
    dataset_revision = models.IntegerField(null=True, blank=True)
    # The owner's own organisation of their runs: free tags, a note, a star.
    tags = TaggableManager(
        blank=True, through="TaggedJob", help_text="Short labels to find and group runs by."
    )
    note = models.TextField(blank=True, max_length=2000)
    starred = models.BooleanField(default=False)

    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.CREATED)
    # Fencing token: bumped by every claim; a run's writes carry its attempt.
    attempt = models.IntegerField(default=0)
    max_attempts = models.IntegerField(default=3)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)

    current_step = models.IntegerField(default=0)
    total_steps = models.IntegerField(default=0)
    epoch = models.FloatField(default=0)
    train_loss = models.FloatField(null=True, blank=True)
    val_loss = models.FloatField(null=True, blank=True)
    best_val_loss = models.FloatField(null=True, blank=True)
    tokens_per_second = models.FloatField(null=True, blank=True)
    trained_tokens = models.BigIntegerField(default=0)
    eta_seconds = models.FloatField(null=True, blank=True)
    final_metrics = models.JSONField(default=dict, blank=True)

    error_code = models.CharField(max_length=32, blank=True)
    error_message = models.TextField(blank=True)
    error_traceback = models.TextField(blank=True)

    # Written by the fenced final write of the attempt that trained it.
    adapter_path = models.CharField(max_length=500, blank=True)
    adapter_bytes = models.BigIntegerField(default=0)
    # A merged export is leased work of its own (jobs/work.py): its ledger
    # fields live here, beside the job it merges.
    export_status = models.CharField(max_length=16, blank=True, choices=ExportStatus.choices)
    export_path = models.CharField(max_length=500, blank=True)
    export_error = models.TextField(blank=True)
    export_attempt = models.IntegerField(default=0)
    export_lease_expires_at = models.DateTimeField(null=True, blank=True)
    export_worker = models.CharField(max_length=200, blank=True)
    export_task_id = models.CharField(max_length=64, blank=True)
    export_dispatched_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = FineTuneJobQuerySet.as_manager()

    class Meta:
        ordering = ("-created_at",)
        indexes = (
            models.Index(fields=("owner", "-created_at")),
            # Each owner's last turn in the fair-share line (fair_share._last_turns).
            models.Index(fields=("owner", "started_at")),
            models.Index(fields=("owner", "dispatched_at")),
            models.Index(fields=("status", "lease_expires_at")),
            # The fair-share line and /ops/'s queues read waiting jobs in order.
            models.Index(fields=("status", "created_at")),
            models.Index(fields=("status", "queued_at")),
            # Exports waiting or running, for the reaper, /ops/ and /metrics.
            models.Index(fields=("export_status",)),
            # Estimates read the newest succeeded runs of a model and method
            # (estimates.measured_speed): a few rows, however many jobs ran.
            models.Index(
                fields=("base_model", "method", "-finished_at"),
                condition=models.Q(status=JobStatus.SUCCEEDED),
                name="jobs_succeeded_runs",
            ),
        )

    def __str__(self) -> str:
        return self.name

    @property
    def objective_label(self) -> str:
        """What the run optimises, as pages say it ("Preference tuning (DPO)")."""
        return vocabulary.OBJECTIVE_LABELS.get(self.objective, self.objective)

    @property
    def method_label(self) -> str:
        """The adapter's short name, as lists and pages show it ("QLoRA")."""
        return vocabulary.ADAPTER_NAMES.get(self.method, self.method)

    @property
    def folder(self) -> Path:
        return Path(settings.MEDIA_ROOT) / "jobs" / str(self.id)

    def attempt_folder(self, attempt: int) -> Path:
        """Where one attempt writes its checkpoints and adapter: a run that
        lost its lease can never touch another attempt's files."""
        return self.folder / f"attempt-{attempt}"

    def export_folder(self, attempt: int) -> Path:
        return self.folder / f"export-{attempt}"

    @property
    def data_folder(self) -> Path:
        return self.folder / "data"

    @property
    def train_file(self) -> Path:
        return self.data_folder / "train.jsonl"

    @property
    def validation_file(self) -> Path:
        return self.data_folder / "validation.jsonl"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    @property
    def took_seconds(self) -> float | None:
        """A finished job's wall time, from its first claim to its end (None if it never ran)."""
        if not self.is_finished or self.started_at is None or self.finished_at is None:
            return None
        return max(0.0, (self.finished_at - self.started_at).total_seconds())

    @property
    def progress_percent(self) -> int:
        if self.status == JobStatus.SUCCEEDED:
            return 100
        if not self.total_steps:
            return 0
        return min(100, int(100 * self.current_step / self.total_steps))


class EventLevel(models.TextChoices):
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    ERROR = "error", "Error"


class EventKind(models.TextChoices):
    STATUS = "status", "Status"
    LOG = "log", "Log"
    CHECKPOINT = "checkpoint", "Checkpoint"
    METRIC = "metric", "Metric"


class JobEvent(models.Model):
    """Something that happened to a job: a status change, a log line, a checkpoint."""

    job = models.ForeignKey(FineTuneJob, on_delete=models.CASCADE, related_name="events")
    created_at = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=16, choices=EventKind.choices)
    level = models.CharField(max_length=8, choices=EventLevel.choices, default=EventLevel.INFO)
    message = models.TextField()
    from_status = models.CharField(max_length=16, blank=True)
    to_status = models.CharField(max_length=16, blank=True)
    attempt = models.IntegerField(default=0)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ("created_at", "id")
        indexes = (models.Index(fields=("job", "id")),)

    def __str__(self) -> str:
        return self.message


class MetricKind(models.TextChoices):
    TRAIN = "train", "Training"
    EVAL = "eval", "Evaluation"


class MetricPoint(models.Model):
    """One logging step of a run; the loss chart is drawn from these."""

    job = models.ForeignKey(FineTuneJob, on_delete=models.CASCADE, related_name="metrics")
    attempt = models.IntegerField()
    step = models.IntegerField()
    kind = models.CharField(max_length=8, choices=MetricKind.choices, default=MetricKind.TRAIN)
    epoch = models.FloatField(default=0)
    train_loss = models.FloatField(null=True, blank=True)
    val_loss = models.FloatField(null=True, blank=True)
    accuracy = models.FloatField(null=True, blank=True)
    # Preference objectives (DPO, KTO): the chosen answers' reward minus the
    # rejected ones', and the share of pairs whose chosen answer wins.
    reward_margin = models.FloatField(null=True, blank=True)
    preference_accuracy = models.FloatField(null=True, blank=True)
    learning_rate = models.FloatField(null=True, blank=True)
    grad_norm = models.FloatField(null=True, blank=True)
    tokens_per_second = models.FloatField(null=True, blank=True)
    tokens = models.BigIntegerField(default=0)
    elapsed = models.FloatField(default=0)
    eta = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("step", "id")
        constraints = (
            # A train log and an evaluation may share a step: one row each.
            models.UniqueConstraint(
                fields=("job", "attempt", "step", "kind"), name="one_metric_per_step"
            ),
        )

    def __str__(self) -> str:
        return f"step {self.step} ({self.kind})"


class Checkpoint(models.Model):
    job = models.ForeignKey(FineTuneJob, on_delete=models.CASCADE, related_name="checkpoints")
    attempt = models.IntegerField()
    step = models.IntegerField()
    path = models.CharField(max_length=500)
    train_loss = models.FloatField(null=True, blank=True)
    val_loss = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("step",)
        constraints = (
            models.UniqueConstraint(fields=("job", "step"), name="one_checkpoint_per_step"),
        )

    def __str__(self) -> str:
        return f"checkpoint-{self.step}"


# Sweeps and their trials live in a module of their own (jobs/sweep_models.py).
from jobs.sweep_models import Sweep, SweepTrial  # noqa: E402, F401
