from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from studio.services.tokens import create_token


class Command(BaseCommand):
    help = "Create an API token for USERNAME and print it (it is shown only once)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="command line", help="What the token is for.")

    def handle(self, *args, username, name, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.")
        if not user.is_active:
            raise CommandError(f"User {username!r} is deactivated; activate them first.")
        new = create_token(user, name)
        # Only the secret on stdout, so that scripts can capture it.
        self.stdout.write(new.secret)
