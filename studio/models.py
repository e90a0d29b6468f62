"""Accounts: Django's users (staff are operators, the rest analysts) and API tokens."""

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class ApiTokenQuerySet(models.QuerySet):
    def for_user(self, user):
        return self.filter(user=user)


class ApiToken(models.Model):
    """A personal API token. Only its SHA-256 digest is stored; the secret is
    shown once, when it is created."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(
        max_length=100, help_text="What the token is for, e.g. 'nightly pipeline'."
    )
    # The first characters of the secret, enough for a person to tell tokens apart.
    prefix = models.CharField(max_length=16)
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    rate_limit_per_minute = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Requests a minute this token may make; empty: the studio's "
        "TAILOR_API_RATE_LIMIT; 0: unlimited.",
    )

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()


class LeasedWork(models.Model):
    """The ledger fields of a kind of background work (studio/services/leases.py):
    the claim's fencing token, the lease, who holds it, and the message sent."""

    # Bumped by every claim; a run's writes carry its attempt.
    attempt = models.IntegerField(default=0)
    # The database's clock, never a worker's.
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    # Null while the row waits for a message (the broker was down): the dispatcher sends it.
    dispatched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
