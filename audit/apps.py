from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit log"

    def ready(self):
        # Logins, failed logins, logouts and lockouts come as signals (Django's
        # and django-axes's); everything else is recorded by the services.
        from audit import signals  # noqa: F401
