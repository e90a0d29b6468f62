"""Create, find and revoke personal API tokens."""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.http import Http404
from django.utils import timezone

from studio.models import ApiToken

TOKEN_PREFIX = "tlr_"
PREFIX_SHOWN = len(TOKEN_PREFIX) + 6
# Writing last_used_at on every request would turn each API read into a write;
# once a minute is precise enough for "last used".
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class NewToken:
    token: ApiToken
    secret: str


def digest_of(secret: str) -> str:
    # Tokens carry 256 random bits, so a fast hash is enough: there is nothing
    # to brute-force, unlike a password.
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(user, name: str, *, expires_at=None) -> NewToken:
    """Create a token for `user`. The returned secret is never stored."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=name.strip() or "API token",
        prefix=secret[:PREFIX_SHOWN],
        digest=digest_of(secret),
        expires_at=expires_at,
    )
    return NewToken(token=token, secret=secret)


def user_for_secret(secret: str):
    """Return (user, token) for a valid, unexpired secret of an active user, or None.

    Side effect: updates the token's last_used_at at most once a minute.
    """
    token = (
        ApiToken.objects.usable()
        .select_related("user")
        .filter(digest=digest_of(secret), user__is_active=True)
        .first()
    )
    if token is None:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token.user, token


def access_token(user, token_id) -> ApiToken:
    """The user's token with this id; the same 404 for a foreign or missing one."""
    token = ApiToken.objects.for_user(user).filter(pk=token_id).first()
    if token is None:
        raise Http404("No such token.")
    return token


def revoke_token(token: ApiToken) -> None:
    """Delete the token: requests carrying it fail from now on."""
    token.delete()
