"""A user's own account: their password, checked and changed.

`check_current_password` is the one check of a signed-in user's current
password (the account page and `POST /api/v1/me/password/`). A wrong one
counts as a failed login (django-axes), so guessing it here locks the
username as guessing at /login/ does, and a locked username is refused even
the right one until the lock ends.

`change_password` sets the new password. Saving it ends every session of
the user and closes their sockets (studio/services/sessions.py); the
browser that asked is given a new session, so it stays signed in. On
request it also revokes all of the user's API tokens. Both are logged.
"""

import logging
from dataclasses import dataclass

from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.contrib.auth import SESSION_KEY, authenticate, update_session_auth_hash
from django.db import transaction

from audit.models import Action
from audit.services import record
from studio.services.tokens import revoke_all_tokens

logger = logging.getLogger(__name__)

INCORRECT_PASSWORD = "That is not your current password: type it again."


def lockout_message() -> str:
    """What a locked-out login is told, from axes's own setting, so that it
    says what is enforced."""
    minutes = round(settings.AXES_COOLOFF_TIME.total_seconds() / 60)
    wait = "1 minute" if minutes == 1 else f"{minutes:,} minutes"
    return (
        "Too many failed logins for this username or from this address. "
        f"Wait {wait}, then log in again: each attempt before then restarts the wait. "
        "An operator can lift the lock sooner."
    )


class PasswordRefused(Exception):
    """The current password was wrong, or the username is locked out; `message` says which."""

    def __init__(self, code: str, message: str):
        self.code = code
        self.message = message
        super().__init__(message)


def check_current_password(request, user, password: str) -> None:
    """Raise PasswordRefused unless `password` is `user`'s current password.

    `request` is Django's HttpRequest (axes reads the client's address from
    it). Side effect: a wrong password is recorded as a failed login.
    """
    username = user.get_username()
    if AxesProxyHandler.is_locked(request, {"username": username}):
        raise PasswordRefused("locked_out", lockout_message())
    if authenticate(request, username=username, password=password) is None:
        locked = bool(getattr(request, "axes_locked_out", False))
        # This answer says so itself, in the page's form or the API's error;
        # axes's middleware would otherwise put the login page in its place.
        request.axes_locked_out = False
        if locked:
            raise PasswordRefused("locked_out", lockout_message())
        raise PasswordRefused("password_incorrect", INCORRECT_PASSWORD)


@dataclass(frozen=True)
class PasswordChanged:
    tokens_revoked: int


def change_password(request, user, new_password: str, *, revoke_tokens: bool) -> PasswordChanged:
    """Set `user`'s password to `new_password`, already checked (the current
    password and the password validators).

    Every session of the user ends and their sockets close; when `request`
    (Django's HttpRequest) came through the user's signed-in session, that
    session continues under a new key. With `revoke_tokens`, every API
    token of the user is revoked too.
    """
    # Asked before the save ends the session (a request made with an API token keeps none).
    session = getattr(request, "session", None)
    keep_session = session is not None and session.get(SESSION_KEY) == str(user.pk)
    with transaction.atomic():
        user.set_password(new_password)
        user.save()
        revoked = revoke_all_tokens(user) if revoke_tokens else 0
        record(Action.PASSWORD_CHANGE, user, detail={"tokens_revoked": revoked})
    if keep_session:
        update_session_auth_hash(request, user)
    logger.info(
        "User %s changed their password; %d API token(s) revoked",
        user.get_username(),
        revoked,
    )
    return PasswordChanged(tokens_revoked=revoked)
