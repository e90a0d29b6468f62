import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Create the first admin user if the studio has none. The password is "
        "random and printed once; it is not stored anywhere in clear."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")

    def handle(self, *args, username, **options):
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            self.stdout.write("An admin user exists already.")
            return
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, email="", password=password)
        self.stdout.write(
            self.style.SUCCESS("Created the first admin user. Keep this; it is shown once:")
        )
        self.stdout.write(f"    username: {username}\n    password: {password}")
        self.stdout.write("Change it under Admin → Users, where you can also add analysts.")
