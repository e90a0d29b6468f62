"""Operators set quota overrides here (quotas/services/limits.py: which applies)."""

from django.contrib import admin

from quotas.models import QuotaOverride


@admin.register(QuotaOverride)
class QuotaOverrideAdmin(admin.ModelAdmin):
    list_display = ("__str__", "running_jobs", "queued_jobs", "storage_bytes", "steps_per_job",
                    "device_hours_per_month", "tokens_per_day", "updated_at")  # fmt: skip
    list_filter = ("group",)
    search_fields = ("user__username", "user__email", "group__name", "note")
    raw_id_fields = ("user",)
    fieldsets = (
        ("Whose", {"fields": ("user", "group"),
                   "description": "One user or one group. A user's own override wins, else the "
                   "most generous of their groups', else the settings' default."}),
        ("Limits", {"fields": ("running_jobs", "queued_jobs", "storage_bytes", "steps_per_job",
                               "device_hours_per_month", "tokens_per_day")}),
        (None, {"fields": ("note",)}),
    )  # fmt: skip
