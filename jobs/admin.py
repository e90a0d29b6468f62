from django.contrib import admin

from jobs.models import CatalogModel, Checkpoint, FineTuneJob, JobEvent


@admin.register(CatalogModel)
class CatalogModelAdmin(admin.ModelAdmin):
    list_display = ("id", "display_name", "task", "parameters", "source_kind", "source", "enabled")
    list_filter = ("task", "source_kind", "enabled")
    search_fields = ("id", "display_name", "source")


class JobEventInline(admin.TabularInline):
    model = JobEvent
    extra = 0
    fields = ("created_at", "kind", "level", "message", "attempt")
    readonly_fields = fields
    can_delete = False


@admin.register(FineTuneJob)
class FineTuneJobAdmin(admin.ModelAdmin):
    list_display = ("name", "owner", "status", "base_model", "method", "current_step",
                    "total_steps", "attempt", "created_at")  # fmt: skip
    list_filter = ("status", "method", "base_model")
    search_fields = ("name", "owner__username", "id", "fine_tuned_model")
    # Everything but the name is the ledger's: status and lease change only
    # through their services (a race-safe update and a JobEvent), and the
    # paths are where the download views and the inference worker read
    # files, so a path typed here could serve the secret key.
    readonly_fields = tuple(
        field.name for field in FineTuneJob._meta.fields if field.name != "name"
    )
    inlines = (JobEventInline,)

    def has_add_permission(self, request):
        # A job is made from a validated configuration (the New job page, the API).
        return False


@admin.register(Checkpoint)
class CheckpointAdmin(admin.ModelAdmin):
    list_display = ("job", "step", "attempt", "train_loss", "val_loss", "created_at")
    # A checkpoint's path is where a resumed run loads its weights from.
    readonly_fields = tuple(field.name for field in Checkpoint._meta.fields)

    def has_add_permission(self, request):
        return False
