from django.contrib import admin

from datasets_app import services
from datasets_app.models import Dataset
from studio.admin_actions import Outcome, Plan, confirm_then_apply, without_bulk_delete


def dataset_label(dataset: Dataset) -> str:
    return f"Dataset “{dataset.name}” of {dataset.owner.get_username()}"


def _delete_sentence(dataset: Dataset) -> str:
    jobs = dataset.jobs.count() + dataset.validation_jobs.count()
    if jobs == 1:
        kept = " The job that used it keeps its own copy of the data."
    elif jobs:
        kept = f" The {jobs:,} jobs that used it keep their own copies of the data."
    else:
        kept = ""
    return f"hidden from its owner for good and its files removed.{kept}"


def _delete_plan(dataset: Dataset) -> Plan:
    if dataset.deleted_at is not None:
        return Plan("was deleted already; left as it is.", acts=False)
    return Plan(_delete_sentence(dataset))


def _delete(dataset: Dataset) -> Outcome:
    if dataset.deleted_at is not None:
        return Outcome.unchanged(f"{dataset_label(dataset)} was deleted already.")
    services.delete_dataset(dataset)
    return Outcome(f"{dataset_label(dataset)} was deleted: its owner no longer sees it, "
                   "and its files are removed.")  # fmt: skip


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "owner",
        "status",
        "format",
        "num_rows",
        "size_bytes",
        "created_at",
        "deleted_at",
    )
    list_filter = ("status", "format", "task")
    list_select_related = ("owner",)
    search_fields = ("name", "owner__username", "original_filename")
    readonly_fields = tuple(field.name for field in Dataset._meta.fields)
    actions = ("delete_datasets",)

    def get_actions(self, request):
        return without_bulk_delete(super().get_actions(request))

    @admin.action(description="Delete the selected datasets (hidden from their owners, files "
                  "removed; jobs keep their copies)", permissions=["delete"])  # fmt: skip
    def delete_datasets(self, request, queryset):
        return confirm_then_apply(
            self, request, queryset.select_related("owner"),
            title="Delete datasets", button="Yes, delete them",
            intro="Deleting cannot be undone: each dataset below, and what will happen to it.",
            plan=_delete_plan, apply=_delete, label=dataset_label,
        )  # fmt: skip

    # The change form's Delete goes through the service too: a dataset is never
    # a hard delete (its jobs name it), only hidden, with its files removed.

    def get_deleted_objects(self, objs, request):
        to_delete = [f"{dataset_label(d)}: {_delete_sentence(d)}" for d in objs]
        return to_delete, {Dataset._meta.verbose_name_plural: len(to_delete)}, set(), []

    def delete_model(self, request, obj):
        if obj.deleted_at is None:
            services.delete_dataset(obj)

    def delete_queryset(self, request, queryset):
        for dataset in queryset.select_related("owner"):
            outcome = _delete(dataset)
            self.message_user(request, outcome.text, outcome.level)
