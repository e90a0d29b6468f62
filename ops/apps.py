from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "ops"
    verbose_name = "Operations"

    def ready(self) -> None:
        # Connects the worker's heartbeat to Celery's signals. Light: the
        # module imports neither torch nor the serving engine.
        from ops import heartbeat  # noqa: F401
