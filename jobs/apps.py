from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = "Fine-tuning jobs"

    def ready(self):
        from jobs import work

        work.register()
