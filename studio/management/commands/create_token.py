from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from jobs.numbers import NumberError, read_number
from studio.services.rate_limits import MAX_RATE_LIMIT
from studio.services.tokens import MAX_EXPIRY_DAYS, TooManyTokens, create_token, expiry_after


def whole_number(flag: str, raw: str, lowest: int, highest: int) -> int:
    try:
        return read_number(raw, whole=True, lowest=lowest, highest=highest)
    except NumberError as refused:
        raise CommandError(f"{flag} {refused.message.removesuffix('.')}, not {raw!r}.") from None


class Command(BaseCommand):
    help = "Create an API token for USERNAME and print it (it is shown only once)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="command line", help="What the token is for.")
        parser.add_argument(
            "--expires-in-days",
            metavar="N",
            help=f"The token stops working after N days (1 to {MAX_EXPIRY_DAYS}). "
            "Default: it never expires.",
        )
        parser.add_argument(
            "--rate-limit",
            metavar="N",
            help="Requests a minute this token may make; 0 is unlimited. "
            "Default: the studio's TAILOR_API_RATE_LIMIT.",
        )

    def handle(self, *args, username, name, expires_in_days, rate_limit, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.")
        if not user.is_active:
            raise CommandError(f"User {username!r} is deactivated; activate them first.")
        days = limit = None
        if expires_in_days is not None:
            days = whole_number("--expires-in-days", expires_in_days, 1, MAX_EXPIRY_DAYS)
        if rate_limit is not None:
            limit = whole_number("--rate-limit", rate_limit, 0, MAX_RATE_LIMIT)
        try:
            new = create_token(
                user, name, expires_at=expiry_after(days), rate_limit_per_minute=limit
            )
        except TooManyTokens as exc:
            raise CommandError(exc.message) from None
        # Only the secret on stdout, so that scripts can capture it.
        self.stdout.write(new.secret)
