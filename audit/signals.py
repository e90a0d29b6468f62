"""Logins, failed logins, logouts and lockouts, from Django's and django-axes's
signals, whichever door they came through (/login/, /admin/login/, a
password checked by the account page or the API)."""

from axes.signals import user_locked_out
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from audit.models import Action
from audit.services import record, type_of


@receiver(user_logged_in, dispatch_uid="audit-login")
def logged_in(sender, request, user, **kwargs):
    record(Action.LOGIN, user, actor=user, request=request)


@receiver(user_logged_out, dispatch_uid="audit-logout")
def logged_out(sender, request, user, **kwargs):
    if user is not None:
        record(Action.LOGOUT, user, actor=user, request=request)


def _tried(username) -> dict:
    """Nobody is signed in: the entry names the account tried, which may not exist."""
    User = get_user_model()
    name = str(username or "")[:150]
    account = User.objects.filter(**{User.USERNAME_FIELD: name}).first() if name else None
    if account is not None:
        return {"target": account, "owner": account}
    return {"target_type": type_of(User), "target_name": name, "owner_name": name}


@receiver(user_login_failed, dispatch_uid="audit-login-failed")
def login_failed(sender, credentials, request=None, **kwargs):
    username = credentials.get(get_user_model().USERNAME_FIELD) or credentials.get("username")
    record(Action.LOGIN_FAILED, request=request, **_tried(username))


@receiver(user_locked_out, dispatch_uid="audit-lockout")
def locked_out(sender, request, username, ip_address, **kwargs):
    record(Action.LOCKOUT, request=request, **_tried(username))
