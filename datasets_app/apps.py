from django.apps import AppConfig


class DatasetsConfig(AppConfig):
    name = "datasets_app"
    label = "datasets"
    verbose_name = "Datasets"

    def ready(self):
        from datasets_app import work

        work.register()
