from django import forms
from django.utils.text import capfirst

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
