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
    readonly_fields = ("id", "config", "plan", "estimate", "error_traceback", "attempt",
                       "lease_expires_at", "worker", "task_id")  # fmt: skip
    inlines = (JobEventInline,)


@admin.register(Checkpoint)
class CheckpointAdmin(admin.ModelAdmin):
    list_display = ("job", "step", "attempt", "train_loss", "val_loss", "created_at")
