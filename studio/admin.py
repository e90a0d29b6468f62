from django.contrib import admin

from studio.models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "user",
        "prefix",
        "created_at",
        "last_used_at",
        "expires_at",
        "rate_limit_per_minute",
    )
    list_filter = ("created_at",)
    search_fields = ("name", "user__username", "prefix")
    readonly_fields = ("prefix", "digest", "created_at", "last_used_at")
