"""Create, find and revoke personal API tokens."""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from audit.models import Action
from audit.services import record
from studio.models import ApiToken
from studio.services.access import one_or_404

TOKEN_PREFIX = "tlr_"
PREFIX_SHOWN = len(TOKEN_PREFIX) + 6
# Writing last_used_at on every request would turn each API read into a write;
# once a minute is precise enough for "last used".
LAST_USED_RESOLUTION = timedelta(minutes=1)
UNKNOWN_TOKEN_MESSAGE = "Invalid or revoked API token."

# Expiry offered on the Tokens page. A token that never expires outlives the
# script it was made for; 90 days (the default there and in the API) is long
# enough not to nag a nightly job, short enough that a forgotten or leaked
# token stops working by itself.
EXPIRY_CHOICES_DAYS = (7, 30, 90, 365)
DEFAULT_EXPIRY_DAYS = 90
# The furthest expiry the API and the command accept (ten years); "never" is None.
MAX_EXPIRY_DAYS = 3650


@dataclass(frozen=True)
class NewToken:
    token: ApiToken
    secret: str


def digest_of(secret: str) -> str:
    # Tokens carry 256 random bits, so a fast hash is enough: there is nothing
    # to brute-force, unlike a password.
    return hashlib.sha256(secret.encode()).hexdigest()


def expiry_after(days: int | None, *, made_with: ApiToken | None = None):
    """When a token created now for `days` days (None: never) expires.

    A token made with another token (the API's POST /tokens/) expires no later
    than that one: were a week-long token able to mint one that never
    expires, expiry would end nothing.
    """
    expires_at = None if days is None else timezone.now() + timedelta(days=days)
    limit = made_with.expires_at if made_with is not None else None
    if limit is not None and (expires_at is None or expires_at > limit):
        return limit
    return expires_at


class TooManyTokens(Exception):
    """The user holds TAILOR_MAX_TOKENS_PER_USER tokens already; `message` says what to do."""

    def __init__(self, limit: int):
        self.message = (
            f"You already have {limit:,} API tokens, the most one account may have: "
            "revoke one you no longer use, then create this one."
        )
        super().__init__(self.message)


def create_token(user, name: str, *, expires_at=None, rate_limit_per_minute=None) -> NewToken:
    """Create a token for `user`. The returned secret is never stored.

    `rate_limit_per_minute` None means the studio's TAILOR_API_RATE_LIMIT.
    Raises TooManyTokens when the user already holds
    TAILOR_MAX_TOKENS_PER_USER tokens (expired ones count until revoked).
    """
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        # Locks the user's row, so that two requests at once cannot both take
        # the last place (SQLite's IMMEDIATE transactions already queue them).
        get_user_model().objects.select_for_update().filter(pk=user.pk).first()
        limit = settings.TAILOR_MAX_TOKENS_PER_USER
        if ApiToken.objects.for_user(user).count() >= limit:
            raise TooManyTokens(limit)
        token = ApiToken.objects.create(
            user=user,
            name=name.strip() or "API token",
            prefix=secret[:PREFIX_SHOWN],
            digest=digest_of(secret),
            expires_at=expires_at,
            rate_limit_per_minute=rate_limit_per_minute,
        )
        record(Action.CREATE, token, owner=user)
    return NewToken(token=token, secret=secret)


class TokenRefused(Exception):
    """A secret that authenticates nobody; `message` is what the client is told."""

    def __init__(self, message: str):
        self.message = message
        super().__init__(message)


def authenticate_secret(secret: str):
    """Return (user, token) for a valid, unexpired secret of an active user.

    Raises TokenRefused. Only a token that exists, belongs to an active user
    and has expired is told so (with when): whoever sends it held the secret,
    and "expired" tells them to make a new one rather than hunt for a typo.
    Every other failure gets one sentence, so a guessed secret learns nothing.

    Side effect: updates the token's last_used_at at most once a minute.
    """
    token = (
        ApiToken.objects.select_related("user")
        .filter(digest=digest_of(secret), user__is_active=True)
        .first()
    )
    if token is None:
        raise TokenRefused(UNKNOWN_TOKEN_MESSAGE)
    if token.is_expired:
        raise TokenRefused(
            f"This API token expired on {token.expires_at.astimezone(UTC):%Y-%m-%d at %H:%M} UTC: "
            "create a new one on the Tokens page."
        )
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token.user, token


def access_token(user, token_id) -> ApiToken:
    """The user's token with this id; the same 404 for a foreign or missing one."""
    return one_or_404(ApiToken.objects.for_user(user), token_id, "No such token.")


def revoke_token(token: ApiToken) -> None:
    """Delete the token: requests carrying it fail from now on."""
    with transaction.atomic():
        record(Action.REVOKE, token)
        token.delete()


def revoke_all_tokens(user) -> int:
    """Delete every token of `user` (a password change may ask it); returns how many."""
    with transaction.atomic():
        _, deleted = ApiToken.objects.for_user(user).delete()
        count = deleted.get(ApiToken._meta.label, 0)
        if count:
            # One entry for them all: the kind of object, no one id.
            record(Action.REVOKE, target_type=ApiToken._meta.label_lower, owner=user,
                   target_name=f"all {count:,} API tokens", detail={"tokens": count})  # fmt: skip
    return count
