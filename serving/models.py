"""Generations (playground runs and API completions), votes and evaluations.

A model is named as users and OpenAI clients name it: a catalog id for a
base ("tailor-tiny") or a job's fine-tuned model name ("ft:tailor-tiny:…").
"""

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from studio.models import LeasedWork


class GenerationSource(models.TextChoices):
    PLAYGROUND = "playground", "Playground"
    API = "api", "API"


class GenerationStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class GenerationQuerySet(models.QuerySet):
    def for_user(self, user):
        """The user's own generations; staff see everyone's."""
        return self if user.is_staff else self.filter(owner=user)


class Generation(LeasedWork):
    """One prompt sent to one or more models (panes), run by the inference worker."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="generations"
    )
    source = models.CharField(max_length=16, choices=GenerationSource.choices)
    base_model = models.ForeignKey(
        "jobs.CatalogModel", on_delete=models.PROTECT, related_name="generations"
    )
    task = models.CharField(max_length=32)
    # [{"model": name, "label": shown name, "job": uuid or null}], in pane order.
    panes = models.JSONField()
    # Chat generations keep their messages; classification and raw completions a text.
    messages = models.JSONField(default=list, blank=True)
    text = models.TextField(blank=True)
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=16, choices=GenerationStatus.choices, default=GenerationStatus.QUEUED
    )
    # One engine PaneResult (as a dict) per pane, in pane order.
    results = models.JSONField(default=list, blank=True)
    # The panes' tokens summed (the worker writes them with the results): what
    # usage/ reports and the tokens-per-day quota counts.
    prompt_tokens = models.PositiveIntegerField(default=0, help_text="Tokens read, all panes.")
    completion_tokens = models.PositiveIntegerField(
        default=0, help_text="Tokens generated, all panes."
    )
    # A plain sentence for everyone (serving/errors.py); the exception behind
    # it, whose text may name a server path, is for staff only.
    error = models.TextField(blank=True)
    error_detail = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = GenerationQuerySet.as_manager()

    class Meta:
        ordering = ("-created_at",)
        indexes = (
            models.Index(fields=["owner", "source", "-created_at"]),
            # A user's tokens of a day or a month (usage/, quotas).
            models.Index(fields=["owner", "finished_at"]),
        )

    def __str__(self) -> str:
        return f"{self.get_source_display()} generation {self.id}"

    @property
    def model_names(self) -> list[str]:
        return [pane["model"] for pane in self.panes]

    @property
    def prompt_preview(self) -> str:
        if self.text:
            return self.text
        users = [m.get("content", "") for m in self.messages if m.get("role") == "user"]
        return users[-1] if users else ""

    @property
    def system_prompt(self) -> str:
        systems = [m.get("content", "") for m in self.messages if m.get("role") == "system"]
        return systems[0] if systems else ""


class VoteChoice(models.TextChoices):
    A = "a", "A is better"
    B = "b", "B is better"
    TIE = "tie", "Tie"


class Vote(models.Model):
    """Which of two answers to one prompt a user preferred.

    The pair is stored in name order (model_a < model_b) so that tallies group
    the same pair whichever pane it was shown in.
    """

    generation = models.ForeignKey(Generation, on_delete=models.CASCADE, related_name="votes")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="votes"
    )
    model_a = models.CharField(max_length=300)
    model_b = models.CharField(max_length=300)
    winner = models.CharField(max_length=8, choices=VoteChoice.choices)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("-created_at",)
        constraints = (
            models.UniqueConstraint(
                fields=["generation", "model_a", "model_b"], name="one_vote_per_pair_and_prompt"
            ),
        )

    def __str__(self) -> str:
        return f"{self.model_a} vs {self.model_b}: {self.winner}"


class EvaluationStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class EvaluationTrigger(models.TextChoices):
    AUTOMATIC = "automatic", "When the job succeeded"
    MANUAL = "manual", "On demand"


class Evaluation(LeasedWork):
    """Base vs fine-tuned on a job's held-out validation rows."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    job = models.ForeignKey(
        "jobs.FineTuneJob", on_delete=models.CASCADE, related_name="evaluations"
    )
    trigger = models.CharField(max_length=16, choices=EvaluationTrigger.choices)
    sample_size = models.PositiveIntegerField()
    status = models.CharField(
        max_length=16, choices=EvaluationStatus.choices, default=EvaluationStatus.QUEUED
    )
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    # The engine's result: {"base": {...}, "fine_tuned": {...}, "samples": [...], ...}
    results = models.JSONField(default=dict, blank=True)
    # As a generation's: `error` for everyone, `error_detail` for staff only.
    error = models.TextField(blank=True)
    error_detail = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"Evaluation of {self.job_id} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in (EvaluationStatus.QUEUED, EvaluationStatus.RUNNING)

    @property
    def progress_percent(self) -> int:
        if self.status == EvaluationStatus.SUCCEEDED:
            return 100
        return int(100 * self.done / self.total) if self.total else 0
