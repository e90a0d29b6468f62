from django.contrib import admin

from datasets_app.models import Dataset


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
    search_fields = ("name", "owner__username", "original_filename")
    readonly_fields = tuple(field.name for field in Dataset._meta.fields)
