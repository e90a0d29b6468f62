"""Sessions that end, and the live sockets that end with them.

A session ends when its user logs out, when their password changes (every
session of theirs: a browser that changed it on its own page is given a new
one), when they are deactivated, and when it expires
(TAILOR_SESSION_AGE_HOURS). Django already refuses an ended session at its
next request; here the rows go at once, server-side, and the websockets the
session opened are told to close (studio/sockets.py):

- `user_group(user_id)` is the channel-layer group every signed-in socket
  joins. A `session.ended` message on it names the session that ended, or
  none for all of the user's.
- `end_sessions(user, why=...)` deletes every session row of the user and,
  after commit, tells their sockets.
- The receivers (`connect_receivers`, from StudioConfig.ready): logging out
  ends that one session; a saved password change or deactivation ends all,
  whoever made it (the account page, the API, the admin, `manage.py
  changepassword`).
- `session_expiry(key, user_id)` is Django's own check of a session, for a
  socket that asks now and then whether its session still holds.

Sessions are rows of the database (settings.SESSION_ENGINE). Django does not
index them by user, so finding a user's reads every unexpired row: a
password change or a deactivation is rare enough for that.
"""

import logging
from datetime import datetime

from django.contrib.auth import SESSION_KEY, get_user, get_user_model
from django.contrib.auth.signals import user_logged_out
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.db import transaction
from django.db.models.signals import post_save
from django.http import HttpRequest
from django.utils import timezone

from studio.events import publish

logger = logging.getLogger(__name__)

SESSION_ENDED = "session.ended"


def user_group(user_id) -> str:
    return f"user-{user_id}"


def announce_end(user_id, session_key: str | None = None) -> None:
    """Tell the user's sockets, after commit, that `session_key` ended (None: all of them)."""
    message = {"type": SESSION_ENDED, "session_key": session_key}
    transaction.on_commit(lambda: publish(user_group(user_id), message))


def session_keys_of(user) -> list[str]:
    """The keys of the user's unexpired sessions (reads every unexpired row)."""
    wanted = str(user.pk)
    rows = Session.objects.filter(expire_date__gt=timezone.now()).iterator(chunk_size=500)
    return [row.session_key for row in rows if row.get_decoded().get(SESSION_KEY) == wanted]


def end_sessions(user, *, why: str) -> int:
    """Delete every session of `user`, and close their sockets after commit.

    Returns how many sessions ended, and logs them with `why`.
    """
    keys = session_keys_of(user)
    Session.objects.filter(session_key__in=keys).delete()
    announce_end(user.pk)
    if keys:
        logger.info("Ended %d session(s) of user %s: %s", len(keys), user.get_username(), why)
    return len(keys)


def session_expiry(session_key: str, user_id) -> datetime | None:
    """When the session expires, while it is still `user_id`'s; None once it has ended.

    Django's own check, the one every request passes: the row is there and
    unexpired, it names this user, who is active, and its password hash is
    the user's current one (a mismatched session is deleted, as Django does).
    """
    row = Session.objects.filter(session_key=session_key, expire_date__gt=timezone.now()).first()
    if row is None:
        return None
    request = HttpRequest()
    request.session = SessionStore(session_key)
    user = get_user(request)
    return row.expire_date if user.is_authenticated and user.pk == user_id else None


# --- what ends sessions ------------------------------------------------------------


def _logged_out(sender, request, user, **kwargs) -> None:
    # Django sends the request whose session ends (channels' logout sends none).
    if user is not None and request is not None:
        announce_end(user.pk, request.session.session_key)


def _user_saved(sender, instance, created, update_fields=None, **kwargs) -> None:
    if created:
        return
    # set_password() leaves the new password in `_password` until save()
    # returns: Django's own mark of a changed password (its password_changed
    # hook reads it), which a hash upgrade at login clears before saving.
    if instance._password is not None:
        end_sessions(instance, why="password changed")
    elif not instance.is_active and (update_fields is None or "is_active" in update_fields):
        end_sessions(instance, why="user deactivated")


def connect_receivers() -> None:
    user_logged_out.connect(_logged_out, dispatch_uid="studio-sessions-logged-out")
    post_save.connect(_user_saved, sender=get_user_model(), dispatch_uid="studio-sessions-user")
