"""Operators, and the users they stop.

- `make_operator(user)`: staff status and the "Operators" group, whose
  permissions a migration sets (studio/migrations/0003_operators_group.py,
  README's Operators section): view on everything in the admin, and the
  change and delete that the admin's actions need, no more.
- `deactivation_plan(user)` and `deactivate_user(user)`: a deactivated user
  can do nothing from the moment it commits: their API tokens are revoked
  (authentication already refuses an inactive user's), their sessions end
  (studio/services/sessions.py, on the save), and their queued and running
  jobs are cancelled through the lifecycle, so each owner's page and the
  workers learn it as from any cancel.
"""

from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from studio.models import ApiToken
from studio.operator_permissions import OPERATORS_GROUP
from studio.services.tokens import revoke_all_tokens

# The one permission an operator holds on users: they may stop one, not edit
# one (a change permission on users would let them make themselves superuser).
DEACTIVATE_PERMISSION = "auth.deactivate_user"


class OperatorError(Exception):
    """`message` says what to do."""

    def __init__(self, message: str):
        self.message = message
        super().__init__(message)


def make_operator(user) -> bool:
    """Give `user` staff status and the Operators group; False when they had both already.

    Raises OperatorError when the group is missing (made by `manage.py migrate`)."""
    group = Group.objects.filter(name=OPERATORS_GROUP).first()
    if group is None:
        raise OperatorError(
            f"There is no “{OPERATORS_GROUP}” group: `manage.py migrate` makes it. If it was "
            "deleted, add it again in the admin with the permissions README.md lists."
        )
    had = user.is_staff and user.groups.filter(pk=group.pk).exists()
    if not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    user.groups.add(group)
    return not had


# --- deactivation --------------------------------------------------------------------


def _busy_jobs(user):
    from jobs.models import FineTuneJob, JobStatus

    return FineTuneJob.objects.filter(
        owner=user, status__in=(JobStatus.QUEUED, JobStatus.RUNNING)
    ).order_by("created_at")


@dataclass
class Deactivation:
    """What deactivating a user does (a plan) or did (a report)."""

    jobs: list = field(default_factory=list)  # their queued and running jobs
    tokens: list = field(default_factory=list)  # their API tokens


def deactivation_plan(user) -> Deactivation:
    return Deactivation(jobs=list(_busy_jobs(user)), tokens=list(ApiToken.objects.for_user(user)))


def check_deactivate(actor, user) -> None:
    """Raise OperatorError when `actor` may not deactivate `user`."""
    if user.pk == actor.pk:
        raise OperatorError("You cannot deactivate yourself.")
    if user.is_superuser and not actor.is_superuser:
        raise OperatorError("Only a superuser may deactivate a superuser.")


def deactivate_user(user) -> Deactivation:
    """Deactivate `user` and stop their work at once; what it stopped.

    One transaction: the user row is locked and marked inactive (which ends
    their sessions), every token of theirs revoked, and each queued or
    running job cancelled by lifecycle.cancel_job (a running one stops at its
    next step). A job that finished meanwhile is left as it is.
    """
    from jobs.services import lifecycle

    done = Deactivation()
    with transaction.atomic():
        locked = get_user_model().objects.select_for_update().get(pk=user.pk)
        done.tokens = list(ApiToken.objects.for_user(locked))
        revoke_all_tokens(locked)
        if locked.is_active:
            locked.is_active = False
            locked.save(update_fields=["is_active"])
        for job in _busy_jobs(locked):
            try:
                done.jobs.append(lifecycle.cancel_job(job))
            except lifecycle.JobStateError:
                continue
    user.refresh_from_db()
    return done
