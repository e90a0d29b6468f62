from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from studio.services.operators import OPERATORS_GROUP, OperatorError, make_operator


class Command(BaseCommand):
    help = (
        f"Make USERNAME an operator: staff status and the {OPERATORS_GROUP} group, which may "
        "see everything in the admin and cancel, retry or delete others' work there."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, username, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(
                f"No user named {username!r}: create them first (Admin → Users, as a "
                "superuser), then run this again."
            )
        if not user.is_active:
            raise CommandError(f"User {username!r} is deactivated; activate them first.")
        try:
            changed = make_operator(user)
        except OperatorError as error:
            raise CommandError(error.message) from None
        if changed:
            self.stdout.write(
                self.style.SUCCESS(
                    f"{username} is an operator: they log in at /admin/ with their own password."
                )
            )
        else:
            self.stdout.write(f"{username} is an operator already.")
