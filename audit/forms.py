"""The audit page's filters: who, what, which door, which kind of object, whose, when."""

from datetime import datetime, time, timedelta

from django import forms
from django.apps import apps
from django.contrib.auth import get_user_model
from django.db.models import F, Q
from django.utils import timezone

from audit.models import Action, Door

# Bookkeeping of the studio's machinery, never the object of an action.
NOT_OBJECTS = {"admin", "audit", "contenttypes", "sessions"}


def kind_choices() -> list[tuple[str, str]]:
    """Every kind of object an entry can name, by the name people know it by."""
    kinds = [
        (model._meta.label_lower, str(model._meta.verbose_name))
        for model in apps.get_models()
        if model._meta.app_label not in NOT_OBJECTS
    ]
    return sorted(kinds, key=lambda kind: kind[1])


def kind_label(target_type: str) -> str:
    try:
        return str(apps.get_model(target_type)._meta.verbose_name)
    except (LookupError, ValueError):
        return target_type


def _by_user(field: str, username: str) -> dict:
    """Entries of this user by their key (indexed); by the copied name once
    the user is gone (or never was: a failed login's unknown username)."""
    User = get_user_model()
    user_id = User.objects.filter(**{User.USERNAME_FIELD: username}).values_list("pk", flat=True)
    found = user_id.first()
    return {f"{field}_id": found} if found is not None else {f"{field}_name": username}


class AuditFilterForm(forms.Form):
    actor = forms.CharField(required=False, label="Who", help_text="A username.")
    action = forms.ChoiceField(required=False, label="Action")
    door = forms.ChoiceField(required=False, label="Door")
    kind = forms.ChoiceField(required=False, label="Kind of object")
    owner = forms.CharField(required=False, label="Whose", help_text="The owner's username.")
    since = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        required=False, label="To", widget=forms.DateInput(attrs={"type": "date"})
    )
    others = forms.BooleanField(required=False, label="Only actions on someone else's object")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        anything = [("", "Any")]
        self.fields["action"].choices = anything + list(Action.choices)
        self.fields["door"].choices = anything + list(Door.choices)
        self.fields["kind"].choices = anything + kind_choices()

    def clean(self):
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            self.add_error("until", "Pick a day on or after the first one.")
        return data

    def filter(self, entries):
        """`entries` narrowed to what the valid form asks (all of them if it is invalid)."""
        if not self.is_valid():
            return entries
        data = self.cleaned_data
        for field in ("actor", "owner"):
            if name := data[field].strip():
                entries = entries.filter(**_by_user(field, name))
        for field, column in (("action", "action"), ("door", "door"), ("kind", "target_type")):
            if data[field]:
                entries = entries.filter(**{column: data[field]})
        # Whole days in the studio's time zone, the last one included.
        zone = timezone.get_current_timezone()
        if data["since"]:
            entries = entries.filter(at__gte=datetime.combine(data["since"], time(), zone))
        if data["until"]:
            after = datetime.combine(data["until"] + timedelta(days=1), time(), zone)
            entries = entries.filter(at__lt=after)
        if data["others"]:
            entries = entries.filter(actor__isnull=False, owner__isnull=False).exclude(
                Q(actor=F("owner"))
            )
        return entries
