from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.utils import timezone
from django.utils.timesince import timesince

from studio.admin_actions import Outcome, Plan, confirm_then_apply, without_bulk_delete
from studio.models import ApiToken
from studio.services import operators
from studio.services.tokens import revoke_all_tokens, revoke_token


def token_label(token: ApiToken) -> str:
    return f"Token “{token.name}” ({token.prefix}…) of {token.user.get_username()}"


def _last_used(token: ApiToken) -> str:
    if token.last_used_at is None:
        return "never used"
    return f"last used {timesince(token.last_used_at, timezone.now())} ago"


def _revoke_plan(token: ApiToken) -> Plan:
    return Plan(f"{_last_used(token)}; every request carrying it is refused from now on.")


def _revoke(token: ApiToken) -> Outcome:
    label = token_label(token)
    revoke_token(token)
    return Outcome(f"{label} was revoked.")


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
    list_select_related = ("user",)
    search_fields = ("name", "user__username", "prefix")
    # Who a token belongs to and which secret it answers to are fixed when it
    # is made: were `user` editable, a staff member could hand their own token
    # to a superuser and act as them.
    readonly_fields = ("user", "prefix", "digest", "created_at", "last_used_at")
    actions = ("revoke_tokens",)

    def has_add_permission(self, request):
        # Tokens are made on the Tokens page or by `manage.py create_token`,
        # which show the secret once; a form here could only store a digest.
        return False

    def get_actions(self, request):
        return without_bulk_delete(super().get_actions(request))

    @admin.action(description="Revoke the selected tokens (refused from the next request on)",
                  permissions=["delete"])  # fmt: skip
    def revoke_tokens(self, request, queryset):
        return confirm_then_apply(
            self, request, queryset.select_related("user"),
            title="Revoke tokens", button="Yes, revoke them",
            intro="A revoked token cannot be restored; its owner makes a new one on the Tokens "
            "page. The scripts that use these tokens stop working:",
            plan=_revoke_plan, apply=_revoke, label=token_label,
        )  # fmt: skip

    def delete_model(self, request, obj):
        revoke_token(obj)


# --- users: deactivating one stops their work ---------------------------------------------


def _deactivate_plan(actor):
    def plan(user) -> Plan:
        try:
            operators.check_deactivate(actor, user)
        except operators.OperatorError as refusal:
            return Plan(f"{refusal.message} Left as they are.", acts=False)
        found = operators.deactivation_plan(user)
        details = [
            f"Job “{job.name}” ({job.get_status_display().lower()}): cancelled"
            + (", stopping at its next step" if job.status == "running" else "")
            for job in found.jobs
        ] + [f"API token “{t.name}” ({t.prefix}…, {_last_used(t)}): revoked" for t in found.tokens]
        state = "deactivated" if user.is_active else "inactive already"
        jobs, tokens = len(found.jobs), len(found.tokens)
        return Plan(
            f"{state}; they cannot log in, their sessions end, {jobs:,} queued or running "
            f"job{'s' if jobs != 1 else ''} cancelled and {tokens:,} "
            f"token{'s' if tokens != 1 else ''} revoked.",
            details,
        )

    return plan


def _deactivate(actor):
    def apply(user) -> Outcome:
        try:
            operators.check_deactivate(actor, user)
        except operators.OperatorError as refusal:
            return Outcome.refused(
                f"User {user.get_username()} was not deactivated: {refusal.message}"
            )
        done = operators.deactivate_user(user)
        jobs, tokens = len(done.jobs), len(done.tokens)
        return Outcome(
            f"User {user.get_username()} was deactivated: {jobs:,} job{'s' if jobs != 1 else ''} "
            f"cancelled, {tokens:,} token{'s' if tokens != 1 else ''} revoked."
        )

    return apply


User = get_user_model()
admin.site.unregister(User)


@admin.register(User)
class StudioUserAdmin(UserAdmin):
    actions = ("deactivate_users",)
    list_display = (*UserAdmin.list_display, "is_active")

    def has_deactivate_permission(self, request):
        return request.user.has_perm(operators.DEACTIVATE_PERMISSION)

    @admin.action(description="Deactivate and cancel their work", permissions=["deactivate"])
    def deactivate_users(self, request, queryset):
        return confirm_then_apply(
            self, request, queryset,
            title="Deactivate users", button="Yes, deactivate them and cancel their work",
            intro="Each user below is deactivated at once: they cannot log in, their sessions "
            "and API tokens stop, and their queued and running jobs are cancelled.",
            plan=_deactivate_plan(request.user), apply=_deactivate(request.user),
            label=lambda user: user.get_username(),
        )  # fmt: skip

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change and "is_active" in form.changed_data and not obj.is_active:
            # Authentication refuses an inactive user's tokens already; revoked,
            # they stay stopped should the user be activated again.
            revoked = revoke_all_tokens(obj)
            busy = len(operators.deactivation_plan(obj).jobs)
            note = (
                f" Their work goes on ({busy:,} queued or running "
                f"job{'s' if busy != 1 else ''}): “Deactivate and cancel their work” in the "
                "users list cancels it."
                if busy
                else ""
            )
            self.message_user(
                request,
                f"User {obj.get_username()} is inactive: {revoked:,} API "
                f"token{'s' if revoked != 1 else ''} revoked.{note}",
                messages.WARNING if busy else messages.SUCCESS,
            )


# --- django-axes's locked logins ---------------------------------------------------------

from axes.admin import AccessAttemptAdmin  # noqa: E402  (axes registers its admin first)
from axes.models import AccessAttempt  # noqa: E402


class LockedLoginsAdmin(AccessAttemptAdmin):
    """axes's own page, with its "Clean up expired attempts" action working:
    axes 8.3.1 reads `request.axes_attempt_time`, which only its login path
    sets, so the action answered 500 in the admin."""

    @admin.action(description="Clean up expired attempts")
    def cleanup_expired_attempts(self, request, queryset):
        request.axes_attempt_time = timezone.now()
        return super().cleanup_expired_attempts(request, queryset)


if admin.site.is_registered(AccessAttempt):
    admin.site.unregister(AccessAttempt)
admin.site.register(AccessAttempt, LockedLoginsAdmin)
