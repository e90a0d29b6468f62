from django import forms
from django.contrib.auth.forms import PasswordChangeForm
from django.utils.text import capfirst
from django.views.decorators.debug import sensitive_variables

from studio.services.accounts import PasswordRefused, check_current_password
from studio.services.rate_limits import personal_limit_problem
from studio.services.tokens import DEFAULT_EXPIRY_DAYS, EXPIRY_CHOICES_DAYS

NEVER = "never"


def _days_label(days: int) -> str:
    return "1 year" if days == 365 else f"{days} days"


class NewTokenForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        help_text="What the token is for, so you can tell tokens apart later.",
        widget=forms.TextInput(attrs={"placeholder": "e.g. nightly pipeline"}),
    )
    expires_in = forms.ChoiceField(
        label="Expires",
        choices=[(NEVER, "Never")] + [(str(d), _days_label(d)) for d in EXPIRY_CHOICES_DAYS],
        initial=str(DEFAULT_EXPIRY_DAYS),
    )
    rate_limit_per_minute = forms.IntegerField(
        label="Requests a minute",
        required=False,
        min_value=1,
        help_text="Empty: the studio's limit.",
    )

    def clean_expires_in(self) -> int | None:
        """Days until the token expires; None for never."""
        value = self.cleaned_data["expires_in"]
        return None if value == NEVER else int(value)

    def clean_rate_limit_per_minute(self) -> int | None:
        limit = self.cleaned_data["rate_limit_per_minute"]
        if limit is not None and (problem := personal_limit_problem(limit)):
            raise forms.ValidationError(capfirst(problem))
        return limit


class ChangePasswordForm(PasswordChangeForm):
    """Django's password change, with the current password checked as a login
    is (a wrong one counts towards the lockout) and the choice to revoke
    every API token too."""

    revoke_tokens = forms.BooleanField(
        label="Also revoke all my API tokens",
        required=False,
        help_text="Scripts that use them stop working until you give them new ones.",
    )

    def __init__(self, request, *args, **kwargs):
        self.request = request
        super().__init__(request.user, *args, **kwargs)
        self.fields["old_password"].label = "Current password"
        self.fields["new_password2"].label = "New password, again"

    @sensitive_variables("password")
    def clean_old_password(self) -> str:
        password = self.cleaned_data["old_password"]
        try:
            check_current_password(self.request, self.user, password)
        except PasswordRefused as refused:
            raise forms.ValidationError(refused.message, code=refused.code) from None
        return password

    @property
    def locked_out(self) -> bool:
        return any(e.code == "locked_out" for e in self.errors.as_data().get("old_password", []))
