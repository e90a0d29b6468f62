"""Datasets: an uploaded file, what validation found in it, and its split."""

import uuid
from datetime import date
from pathlib import Path

from django.conf import settings
from django.db import models
from django.utils import timezone

from datasets_app.engine.split import DEFAULT_SPLIT_SEED, DEFAULT_VALIDATION_FRACTION
from studio.models import LeasedWork


class DatasetStatus(models.TextChoices):
    UPLOADED = "uploaded", "Uploaded"
    VALIDATING = "validating", "Validating"
    READY = "ready", "Ready"
    INVALID = "invalid", "Invalid"


class SplitMode(models.TextChoices):
    HOLDOUT = "holdout", "Hold out a fraction"
    FILE = "file", "Separate validation file"


class DatasetQuerySet(models.QuerySet):
    def for_user(self, user):
        """The user's own datasets, never deleted ones. Staff see everyone's."""
        visible = self.filter(deleted_at__isnull=True)
        return visible if user.is_staff else visible.filter(owner=user)

    def ready(self):
        return self.filter(status=DatasetStatus.READY)


def _upload_to(instance, filename):
    return f"datasets/{instance.id}/source/{filename}"


def _validation_upload_to(instance, filename):
    return f"datasets/{instance.id}/validation-source/{filename}"


def _day(moment: date, *, year: bool) -> str:
    return f"{moment.day} {moment:%b}" + (f" {moment.year}" if year else "")


def _days(first: date, last: date) -> str:
    """30 Nov–2 Dec 2026; 2 Dec 2026 for one day."""
    if first == last:
        return _day(first, year=True)
    return f"{_day(first, year=first.year != last.year)}–{_day(last, year=True)}"


def describe_provenance(provenance: dict) -> str:
    """A dataset's provenance (Dataset.provenance) in a sentence; "" when it has none."""
    if not provenance or provenance.get("kind") != "votes":
        return ""
    votes = len(provenance.get("votes") or [])
    models = provenance.get("models") or []
    on = " vs ".join(models) if len(models) == 2 else f"{len(models)} models"
    sentence = f"Made from {votes:,} vote{'s' if votes != 1 else ''} on {on}"
    if provenance.get("first_vote") and provenance.get("last_vote"):
        first = date.fromisoformat(provenance["first_vote"])
        last = date.fromisoformat(provenance["last_vote"])
        sentence += f", {_days(first, last)}"
    voters = provenance.get("voters") or 0
    if voters > 1:
        sentence += f", by {voters} voters"
    ties = provenance.get("ties_left_out") or 0
    if ties:
        sentence += f"; {ties:,} tie{'s' if ties != 1 else ''} left out"
    return sentence + "."


class Dataset(LeasedWork):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="datasets"
    )
    name = models.CharField(max_length=200)
    source = models.FileField(upload_to=_upload_to, max_length=500)
    original_filename = models.CharField(max_length=255)
    size_bytes = models.BigIntegerField(default=0)

    # What the user asked for; empty means "detect".
    requested_format = models.CharField(max_length=32, blank=True)
    column_mapping = models.JSONField(default=dict, blank=True)
    skip_invalid_rows = models.BooleanField(
        default=False,
        help_text="Rows with problems of their own are left out instead of failing the file "
        "(problems with the file as a whole still fail it).",
    )

    status = models.CharField(
        max_length=16, choices=DatasetStatus.choices, default=DatasetStatus.UPLOADED
    )
    file_type = models.CharField(max_length=16, blank=True)
    format = models.CharField(max_length=32, blank=True)
    task = models.CharField(max_length=32, blank=True)
    columns = models.JSONField(default=list, blank=True)
    rows_checked = models.BigIntegerField(default=0)
    bytes_checked = models.BigIntegerField(default=0)
    num_rows = models.BigIntegerField(default=0)
    error_count = models.IntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    warnings = models.JSONField(default=list, blank=True)
    invalid_rows = models.BigIntegerField(
        default=0, help_text="Rows with problems of their own, found by the last check."
    )
    skippable = models.BooleanField(
        default=False,
        help_text="Invalid only because of such rows, and some rows are fine: skipping them "
        "(skip_invalid_rows) would leave a dataset.",
    )
    skipped_rows = models.BigIntegerField(
        default=0, help_text="Ready with skip_invalid_rows: the rows left out."
    )
    # Their problems, as `errors` (the first 100).
    skipped_errors = models.JSONField(default=list, blank=True)
    stats = models.JSONField(default=dict, blank=True)
    # Where the rows came from when Tailor made the file (empty for an upload):
    # {"kind": "votes", "votes": [ids], "models": [names], "filters": {...},
    #  "voters": n, "pairs": n, "ties_left_out": n, "first_vote": date, "last_vote": date}
    # (serving/services/preference_data.py).
    provenance = models.JSONField(default=dict, blank=True)

    split_mode = models.CharField(
        max_length=16, choices=SplitMode.choices, default=SplitMode.HOLDOUT
    )
    validation_fraction = models.FloatField(default=DEFAULT_VALIDATION_FRACTION)
    split_seed = models.IntegerField(default=DEFAULT_SPLIT_SEED)
    validation_source = models.FileField(
        upload_to=_validation_upload_to, max_length=500, blank=True
    )
    validation_filename = models.CharField(max_length=255, blank=True)
    num_train_rows = models.BigIntegerField(default=0)
    num_validation_rows = models.BigIntegerField(default=0)

    # Bumped whenever the file or its settings change: a validation run writes
    # its results only while the revision it started with is current, and into
    # a folder of its own, so a superseded run can never overwrite a newer one.
    revision = models.IntegerField(default=1)
    # Validation attempts made for earlier revisions: each revision gets
    # TAILOR_JOB_MAX_ATTEMPTS of its own (`attempt` never goes down: it fences).
    attempt_base = models.IntegerField(default=0)

    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    validated_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects = DatasetQuerySet.as_manager()

    class Meta:
        ordering = ("-created_at",)
        indexes = (models.Index(fields=("owner", "deleted_at", "-created_at")),)

    def __str__(self) -> str:
        return self.name

    @property
    def folder(self) -> Path:
        return Path(settings.MEDIA_ROOT) / "datasets" / str(self.id)

    def output_folder(self, revision: int | None = None):
        return self.folder / f"r{revision or self.revision}"

    @property
    def records_path(self):
        return self.output_folder() / "records.jsonl"

    @property
    def train_path(self):
        return self.output_folder() / "train.jsonl"

    @property
    def validation_path(self):
        return self.output_folder() / "validation.jsonl"

    @property
    def max_attempts(self) -> int:
        return self.attempt_base + settings.TAILOR_JOB_MAX_ATTEMPTS

    @property
    def format_label(self) -> str:
        from datasets_app.engine import FORMAT_LABELS

        return FORMAT_LABELS.get(self.format, self.format)

    @property
    def provenance_sentence(self) -> str:
        """Where a dataset Tailor made came from, in a sentence; "" for an upload."""
        return describe_provenance(self.provenance)

    @property
    def is_finished(self) -> bool:
        return self.status in (DatasetStatus.READY, DatasetStatus.INVALID)

    @property
    def progress_percent(self) -> int:
        if not self.size_bytes:
            return 0
        return min(100, int(100 * self.bytes_checked / self.size_bytes))
