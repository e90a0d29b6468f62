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
    # Who a token belongs to and which secret it answers to are fixed when it
    # is made: were `user` editable, a staff member could hand their own token
    # to a superuser and act as them.
    readonly_fields = ("user", "prefix", "digest", "created_at", "last_used_at")

    def has_add_permission(self, request):
        # Tokens are made on the Tokens page or by `manage.py create_token`,
        # which show the secret once; a form here could only store a digest.
        return False
