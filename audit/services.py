"""Writing the audit log (`record`), copying the admin's own log into it, and
forgetting entries past the retention.

`record` is called by the services that change state (jobs, datasets,
tokens, generations, votes, evaluations, passwords), inside their
transaction, and by the login signals (audit/signals.py). It costs one
INSERT; a second query only when the object's owner is not the actor and
the owner's name is not at hand (an operator acting on another's object,
or a worker).
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import models
from django.utils import timezone

from audit import context
from audit.models import Action, AuditEntry, Door

logger = logging.getLogger(__name__)

# Where a kind of object keeps its owner, for objects without an `owner` or a
# `user` of their own (the admin's log names only the object's type and id).
OWNER_PATHS = ("owner", "user", "job__owner", "generation__owner")


def type_of(obj_or_model) -> str:
    return obj_or_model._meta.label_lower


def _owner_id(target) -> int | None:
    if isinstance(target, get_user_model()):
        return target.pk
    for attribute in ("owner_id", "user_id"):
        if getattr(target, attribute, None) is not None:
            return getattr(target, attribute)
    for parent in ("job", "generation"):
        related = getattr(target, parent, None)
        if isinstance(related, models.Model):
            return _owner_id(related)
    return None


def _name_of(user_id: int | None, target, actor) -> str:
    """The owner's username, from what is loaded when it can be."""
    if user_id is None:
        return ""
    if actor is not None and actor.pk == user_id:
        return actor.get_username()
    if isinstance(target, get_user_model()):
        return target.get_username()
    for relation in ("owner", "user"):
        # A relation already fetched costs nothing; otherwise one query below.
        cached = target._state.fields_cache.get(relation) if target is not None else None
        if cached is not None:
            return cached.get_username()
    username = get_user_model().USERNAME_FIELD
    found = get_user_model().objects.filter(pk=user_id).values_list(username, flat=True)
    return found.first() or ""


def record(
    action: str,
    target=None,
    *,
    target_type: str = "",
    target_id: str = "",
    target_name: str = "",
    owner=None,
    owner_name: str = "",
    detail: dict | None = None,
    actor=None,
    request=None,
) -> AuditEntry:
    """Write one entry for a change to `target` (a model instance), as the
    current request's user, address and door (audit.context), or as the
    system when there is no request.

    Call it inside the transaction that makes the change: the entry then
    exists exactly when the change does. `target_type`, `target_id` and
    `target_name` name an object that is not at hand (a username tried at
    the login); `owner`, `owner_name` and `actor` override what the target and the
    context say; `request` stands for the context (the login signals).
    """
    acting = context.for_request(request) if request is not None else context.current()
    actor = actor if actor is not None else (acting.actor if acting else None)
    if target is not None:
        target_type = target_type or type_of(target)
        target_id = target_id or ("" if target.pk is None else str(target.pk))
        target_name = target_name or str(target)
    if acting is not None and target_id:
        acting.recorded.add((target_type, target_id))
    owner_id = owner.pk if owner is not None else (_owner_id(target) if target else None)
    return AuditEntry.objects.create(
        actor=actor,
        actor_name=actor.get_username() if actor is not None else "",
        action=action,
        door=acting.door if acting else Door.SYSTEM,
        ip=acting.ip if acting else None,
        target_type=target_type,
        target_id=target_id,
        target_name=target_name[:200],
        owner_id=owner_id,
        owner_name=owner_name
        or (owner.get_username() if owner is not None else _name_of(owner_id, target, actor)),
        detail=detail or {},
    )


# --- the admin's own log ----------------------------------------------------------------

ADMIN_ACTIONS = {1: Action.CREATE, 2: Action.UPDATE, 3: Action.DELETE}  # LogEntry's flags


def _owner_of_stored(model, object_id: str) -> tuple[int | None, str]:
    """(id, username) of the owner of a stored object, found by its OWNER_PATHS."""
    if model is None:
        return None, ""
    if model is get_user_model():
        path = ""
    else:
        names = {f.name for f in model._meta.get_fields()}
        path = next((p for p in OWNER_PATHS if p.split("__")[0] in names), None)
        if path is None:
            return None, ""
    prefix = f"{path}__" if path else ""
    username = get_user_model().USERNAME_FIELD
    try:
        found = (
            model._default_manager.filter(pk=object_id)
            .values_list(f"{prefix}pk", f"{prefix}{username}")
            .first()
        )
    except (ValueError, TypeError):  # an id the model's key cannot hold
        found = None
    return found or (None, "")


def record_admin_log(user, since) -> int:
    """Copy the admin's log entries that `user` wrote since `since` (this
    request) into the audit log, skipping objects a service recorded
    already. Called inside the request's transaction (audit.middleware)."""
    from django.contrib.admin.models import LogEntry

    written = 0
    acting = context.current()
    logged = LogEntry.objects.filter(user_id=user.pk, action_time__gte=since)
    for entry in logged.select_related("content_type").order_by("pk"):
        model = entry.content_type.model_class() if entry.content_type else None
        target_type = f"{entry.content_type.app_label}.{entry.content_type.model}"
        if acting is not None and (target_type, entry.object_id) in acting.recorded:
            continue  # a service of the admin's action recorded it, in its own words
        owner_id, owner_name = _owner_of_stored(model, entry.object_id)
        # An unsaved stand-in: its id and name are all `record` reads.
        User = get_user_model()
        owner = User(pk=owner_id, **{User.USERNAME_FIELD: owner_name}) if owner_id else None
        record(
            ADMIN_ACTIONS.get(entry.action_flag, Action.UPDATE),
            target_type=target_type,
            target_id=entry.object_id or "",
            target_name=entry.object_repr,
            owner=owner,
            detail={"change": entry.get_change_message()} if entry.change_message else None,
        )
        written += 1
    return written


# --- retention --------------------------------------------------------------------------


def forget_old_entries(now=None) -> int:
    """Delete entries older than TAILOR_AUDIT_RETENTION_DAYS (0 keeps them all);
    returns how many. Run by the maintenance round (studio/services/reaper.py)."""
    days = settings.TAILOR_AUDIT_RETENTION_DAYS
    if not days:
        return 0
    cutoff = (now or timezone.now()) - timedelta(days=days)
    old = AuditEntry.objects.filter(at__lt=cutoff)
    # A read first: the round runs every few seconds, and a DELETE takes
    # SQLite's write lock even when it matches nothing.
    if not old.exists():
        return 0
    deleted, _ = old.delete()
    if deleted:
        logger.info("Forgot %d audit entries older than %d days", deleted, days)
    return deleted
