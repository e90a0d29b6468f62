"""What training used and what a device-hour costs (usage/README.md: the contract).

`DeviceUse` is written by the training worker only (usage/services/device_time.py),
fenced on the job's attempt like every other write of a run. `DevicePrice`
is set by operators in the admin.
"""

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower


class DeviceUse(models.Model):
    """One training attempt's hold on a device: from its claim to its end (or,
    for a run whose worker died, to the last lease renewal it made)."""

    # The owner is kept when the job is deleted: a month's use does not
    # shrink because its jobs were tidied away (nor do its limits).
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="device_uses"
    )
    job = models.ForeignKey(
        "jobs.FineTuneJob", on_delete=models.SET_NULL, null=True, blank=True,
        related_name="device_uses",
    )  # fmt: skip
    job_name = models.CharField(max_length=200, help_text="The job's name when it ran.")
    attempt = models.PositiveIntegerField()
    worker = models.CharField(max_length=200, help_text="The Celery worker that ran it.")
    device = models.CharField(
        max_length=200, help_text='"cpu", or the CUDA device\'s name as torch reports it.'
    )
    # The price in force when the attempt began: a later change of price does
    # not rewrite what past months cost.
    price_per_hour = models.DecimalField(max_digits=12, decimal_places=4, default=0)
    started_at = models.DateTimeField()
    last_seen_at = models.DateTimeField(help_text="The run's last lease renewal (or its end).")
    ended_at = models.DateTimeField(
        null=True, blank=True, help_text="Empty while the attempt runs."
    )
    seconds = models.FloatField(default=0, help_text="From started_at to last_seen_at.")

    class Meta:
        verbose_name = "device use"
        constraints = (
            models.UniqueConstraint(
                fields=("job", "attempt"), condition=Q(job__isnull=False),
                name="one_device_use_per_attempt",
            ),
        )  # fmt: skip
        indexes = (models.Index(fields=["owner", "started_at"]),)

    def __str__(self) -> str:
        return f"{self.job_name} · attempt {self.attempt} · {self.device}"


class DevicePrice(models.Model):
    """What an hour of one kind of device costs; a kind without a row costs
    TAILOR_PRICE_PER_DEVICE_HOUR, in TAILOR_CURRENCY."""

    device = models.CharField(
        max_length=200,
        help_text='"cpu", or the GPU\'s name as /ops/ shows it (e.g. "NVIDIA H200"); '
        "matched ignoring case.",
    )  # fmt: skip
    price_per_hour = models.DecimalField(
        max_digits=12, decimal_places=4, validators=[MinValueValidator(0)],
        help_text="Per device-hour, in the studio's currency (TAILOR_CURRENCY). 0: free.",
    )  # fmt: skip
    note = models.CharField(max_length=300, blank=True, help_text="Why, for the next operator.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "device price"
        ordering = ("device",)
        constraints = (
            models.UniqueConstraint(
                Lower("device"), name="one_price_per_device",
                violation_error_message="This device already has a price: change that one.",
            ),
        )  # fmt: skip

    def __str__(self) -> str:
        return f"Price of {self.device}"
