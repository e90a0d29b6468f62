from django.apps import AppConfig


class ServingConfig(AppConfig):
    name = "serving"
    verbose_name = "Serving and playground"

    def ready(self):
        from jobs.signals import job_succeeded
        from serving import work
        from serving.services.evaluations import evaluate_after_success

        work.register()
        job_succeeded.connect(evaluate_after_success, dispatch_uid="serving-evaluate-after-success")
