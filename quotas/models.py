"""Operators' overrides of the per-user limits (quotas/services/limits.py says
which one applies to a user)."""

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q

BLANK_MEANS = "Blank: not set here (the next rule decides). 0: unlimited."


class QuotaOverride(models.Model):
    """Limits for one user or for one group: each blank field falls through
    to the next rule, 0 lifts the limit, a number sets it."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True,
        related_name="quota_override",
    )  # fmt: skip
    group = models.OneToOneField(
        Group, on_delete=models.CASCADE, null=True, blank=True, related_name="quota_override"
    )
    running_jobs = models.PositiveIntegerField(
        null=True, blank=True, help_text=f"Training jobs running at once. {BLANK_MEANS}"
    )
    queued_jobs = models.PositiveIntegerField(
        null=True, blank=True, help_text=f"Training jobs waiting at once. {BLANK_MEANS}"
    )
    storage_bytes = models.PositiveBigIntegerField(
        null=True, blank=True,
        help_text=f"Bytes of uploaded datasets and trained adapters. {BLANK_MEANS}",
    )  # fmt: skip
    steps_per_job = models.PositiveIntegerField(
        null=True, blank=True, help_text=f"Training steps of one job. {BLANK_MEANS}"
    )
    device_hours_per_month = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0)],
        help_text=f"Hours of training device time per calendar month (UTC). {BLANK_MEANS}",
    )  # fmt: skip
    tokens_per_day = models.PositiveBigIntegerField(
        null=True, blank=True,
        help_text="Prompt plus completion tokens served (playground and APIs) per UTC day. "
        f"{BLANK_MEANS}",
    )  # fmt: skip
    note = models.CharField(max_length=300, blank=True, help_text="Why, for the next operator.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = (
            models.CheckConstraint(
                condition=Q(user__isnull=False, group__isnull=True)
                | Q(user__isnull=True, group__isnull=False),
                name="quota_for_one_user_or_one_group",
                violation_error_message="Choose one user or one group (not both, not neither).",
            ),
        )

    def __str__(self) -> str:
        return f"Quota of {self.user or self.group}"
