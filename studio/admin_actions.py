"""What the admin's pages share: state changes on other people's objects are
deliberate, and a record that is history cannot be edited.

- `confirm_then_apply`: an action first shows, for each selected object, what
  it will do to it (a confirmation page, nothing changed yet); the confirming
  POST applies the service to each object and reports, one message per
  object, what happened. The service does the work (lifecycle.cancel_job,
  delete_dataset, revoke_token…), never a raw UPDATE or DELETE here.
- `Outcome`: what happened to one object, as a sentence and a message level.
- `ReadOnlyAdmin`: a model operators may read and search, never add, change
  or delete (generations, votes, evaluations, metric points, checkpoints).
- `without_bulk_delete`: Django's "Delete selected" deletes rows with one
  query, past every service; the models that offer a delete action of
  their own drop it.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse

CONFIRMED = "confirmed"


@dataclass(frozen=True)
class Outcome:
    text: str
    level: int = messages.SUCCESS

    @classmethod
    def refused(cls, text: str) -> "Outcome":
        return cls(text, messages.ERROR)

    @classmethod
    def unchanged(cls, text: str) -> "Outcome":
        return cls(text, messages.WARNING)


@dataclass(frozen=True)
class Plan:
    """What an action will do to one object: a sentence, and details to list under it."""

    text: str
    details: list[str] = field(default_factory=list)
    # False: the action will leave this object as it is (the page says so).
    acts: bool = True


def confirm_then_apply(
    modeladmin,
    request,
    objects: Iterable,
    *,
    title: str,
    intro: str,
    button: str,
    plan: Callable[[object], Plan],
    apply: Callable[[object], Outcome],
    label: Callable[[object], str] = str,
):
    """Run an action in two steps: a confirmation page listing `plan(obj)` for
    each object, then, on its POST, `apply(obj)` for each, with one message
    per object; `label(obj)` names each on the page (whose it is, above all).
    Returns the page (first step) or None (Django redirects to
    the list, where the messages show)."""
    objects = list(objects)
    if request.POST.get(CONFIRMED) == "yes":
        for obj in objects:
            outcome = apply(obj)
            modeladmin.message_user(request, outcome.text, outcome.level)
        return None
    rows = [(obj, label(obj), plan(obj)) for obj in objects]
    opts = modeladmin.model._meta
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "intro": intro,
        "button": button,
        "rows": rows,
        "acting": sum(1 for _, _, row in rows if row.acts),
        "action": request.POST.get("action", ""),
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "confirmed_name": CONFIRMED,
        "opts": opts,
        "app_label": opts.app_label,
    }
    return TemplateResponse(request, "admin/tailor/confirm_action.html", context)


def without_bulk_delete(actions: dict) -> dict:
    actions.pop("delete_selected", None)
    return actions


class ReadOnlyAdmin(admin.ModelAdmin):
    """Seen and searched, never added, changed or deleted here: the rows are
    a record written by the workers and services."""

    # A full count of a table of millions is a second of the list's time;
    # "Show all" still counts when asked.
    show_full_result_count = False

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
