"""One row per state change: who, what, when, from where, through which door.

Written by `audit.services.record` in the same transaction as the change it
describes, so a change that rolled back leaves no entry. Names are copied
(`actor_name`, `owner_name`, `target_name`) so that an entry still reads
rightly after its user or object is gone; the foreign keys are for filtering.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone


class Action(models.TextChoices):
    """What was done: one verb, whatever the object (its kind is `target_type`)."""

    CREATE = "create", "create"
    UPDATE = "update", "update"
    DELETE = "delete", "delete"
    START = "start", "start"
    CANCEL = "cancel", "cancel"
    RETRY = "retry", "retry"
    RESUME = "resume", "resume"
    EXPORT = "export", "export"
    VOTE = "vote", "vote"
    REVOKE = "revoke", "revoke"
    LOGIN = "login", "log in"
    LOGIN_FAILED = "login_failed", "failed login"
    LOCKOUT = "lockout", "lockout"
    LOGOUT = "logout", "log out"
    PASSWORD_CHANGE = "password_change", "password change"


class Door(models.TextChoices):
    """How the change came in: the request's path decides (audit.context.door_of)."""

    PAGE = "page", "page"
    API = "api", "native API"
    OPENAI = "v1", "OpenAI-compatible API"
    ADMIN = "admin", "admin"
    # No request: a worker, beat or a manage.py command.
    SYSTEM = "system", "system"


class AuditEntry(models.Model):
    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )  # fmt: skip
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=20, choices=Action.choices)
    door = models.CharField(max_length=8, choices=Door.choices)
    ip = models.GenericIPAddressField(null=True, blank=True)
    # The object, as "app_label.model" ("jobs.finetunejob"), its id and its name then.
    target_type = models.CharField(max_length=100)
    target_id = models.CharField(max_length=64, blank=True)
    target_name = models.CharField(max_length=200, blank=True)
    # Whose object it is; an actor who is not its owner acted on another's object.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )  # fmt: skip
    owner_name = models.CharField(max_length=150, blank=True)
    # A few facts that say what changed (a new name, the winner of a vote).
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ("-id",)
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.actor_name or 'system'} {self.action} {self.target_type} {self.target_id}"

    @property
    def on_anothers_object(self) -> bool:
        """An operator's action on someone else's object."""
        return (
            self.actor_id is not None
            and self.owner_id is not None
            and self.actor_id != self.owner_id
        )
