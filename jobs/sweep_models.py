"""Sweeps: a search over a few hyperparameters, run as a family of jobs.

A sweep keeps the configuration its jobs start from, the space searched and
how (an Optuna study stored in the studio's own database: jobs/services/
sweeps.py); each `SweepTrial` is one point of that space and, once it could
be queued, the job that trains it.
"""

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class SweepStatus(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Finished"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class SweepMetric(models.TextChoices):
    VAL_LOSS = "val_loss", "Validation loss"
    ACCURACY = "accuracy", "Accuracy (evaluation)"
    EXACT_MATCH = "exact_match", "Exact match (evaluation)"


class SweepSampler(models.TextChoices):
    GRID = "grid", "Grid: every combination"
    RANDOM = "random", "Random"
    TPE = "tpe", "Smart (Optuna's TPE)"


class SweepPruner(models.TextChoices):
    NONE = "none", "Never stop runs early"
    MEDIAN = "median", "Median: stop a run behind the median at the same step"
    SUCCESSIVE_HALVING = "successive_halving", "Successive halving"


class TrialState(models.TextChoices):
    WAITING = "waiting", "Waiting for room in your quota"
    RUNNING = "running", "Training"
    COMPLETE = "complete", "Finished"
    PRUNED = "pruned", "Stopped early"
    FAILED = "failed", "Failed"


class SweepQuerySet(models.QuerySet):
    def for_user(self, user):
        """The user's own sweeps; staff see everyone's."""
        return self if user.is_staff else self.filter(owner=user)


class Sweep(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sweeps"
    )
    name = models.CharField(max_length=200)
    base_config = models.JSONField(help_text="The resolved job document every run starts from.")
    # {"learning_rate": {"values": [...]} | {"low": x, "high": y, "log": bool}, ...}
    space = models.JSONField(help_text="The parameters searched and their values or ranges.")
    budget = models.PositiveIntegerField(help_text="How many runs at most.")
    parallel = models.PositiveIntegerField(default=2, help_text="Runs queued at once at most.")
    metric = models.CharField(max_length=16, choices=SweepMetric.choices)
    sampler = models.CharField(max_length=16, choices=SweepSampler.choices)
    pruner = models.CharField(max_length=24, choices=SweepPruner.choices)
    seed = models.IntegerField(default=0)
    status = models.CharField(
        max_length=16, choices=SweepStatus.choices, default=SweepStatus.RUNNING
    )
    # Why no run is queued now (a quota), in the owner's words; blank otherwise.
    waiting_reason = models.TextField(blank=True)
    study_name = models.CharField(max_length=100, unique=True)
    winner = models.ForeignKey(
        "jobs.FineTuneJob", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # One advance at a time: taken by a conditional UPDATE (the database's
    # clock), so a process that died while advancing blocks nobody for long.
    advance_lease_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = SweepQuerySet.as_manager()

    class Meta:
        ordering = ("-created_at",)
        indexes = (
            models.Index(fields=("owner", "-created_at")),
            models.Index(fields=("status",)),
        )

    def __str__(self) -> str:
        return self.name

    @property
    def is_running(self) -> bool:
        return self.status == SweepStatus.RUNNING

    @property
    def lower_is_better(self) -> bool:
        return self.metric == SweepMetric.VAL_LOSS


class SweepTrial(models.Model):
    """One point of the sweep's space: Optuna's trial and the job that trains it."""

    sweep = models.ForeignKey(Sweep, on_delete=models.CASCADE, related_name="trials")
    number = models.IntegerField(help_text="Optuna's trial number, from 0.")
    optuna_trial_id = models.IntegerField()
    params = models.JSONField(help_text="The values this run tries, by parameter.")
    job = models.OneToOneField(
        "jobs.FineTuneJob",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="sweep_trial",
    )
    state = models.CharField(max_length=16, choices=TrialState.choices, default=TrialState.WAITING)
    value = models.FloatField(null=True, blank=True, help_text="The metric, once told.")
    note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("number",)
        constraints = (
            models.UniqueConstraint(fields=("sweep", "number"), name="one_trial_per_number"),
        )

    def __str__(self) -> str:
        return f"trial {self.number} of {self.sweep_id}"
