"""The page that turns playground votes into a preference dataset: filters,
the pairs for review, and "Create dataset".

The filters are a plain GET form (the address holds them; htmx swaps the
review alone when one changes); creating is a POST of the same filters and
a name, answered with the new dataset's page, where validation runs as for
any upload.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.utils.http import urlencode
from django.views.decorators.http import require_http_methods

from datasets_app.services import DatasetInputError
from quotas.services import QuotaExceeded
from serving.services import preference_data
from studio.services.object_store import StorageError

PAIRS_PER_PAGE = 10
FILTER_FIELDS = ("models", "since", "until", "voter")


def _filter_values(data) -> dict[str, str]:
    return {name: (data.get(name) or "").strip() for name in FILTER_FIELDS}


def _context(request, data, *, error: dict | None = None) -> dict:
    values = _filter_values(data)
    context = {
        "values": values,
        "query": urlencode({k: v for k, v in values.items() if v}),
        "is_staff": request.user.is_staff,
        "voters": preference_data.voter_choices() if request.user.is_staff else [],
        "error": error,
        "selection": None,
        "page": None,
        "default_name": preference_data.default_name(),
        "name": (data.get("name") or "").strip(),
    }
    try:
        filters = preference_data.read_filters(request.user, data)
    except preference_data.PreferenceDataError as exc:
        context["error"] = {"field": exc.field, "message": exc.message}
        context["model_choices"] = preference_data.model_choices(request.user)
        return context
    selection = preference_data.select_pairs(filters)
    context.update(
        model_choices=preference_data.model_choices(filters.voter),
        selection=selection,
        page=Paginator(selection.pairs, PAIRS_PER_PAGE).get_page(request.GET.get("page")),
        none_kept=preference_data.none_kept_sentence(selection) if not selection.pairs else "",
    )
    return context


@login_required
@require_http_methods(["GET", "POST"])
def preference_dataset(request):
    if request.method == "POST":
        return _create(request)
    context = _context(request, request.GET)
    status = 422 if context["error"] else 200
    if request.htmx and request.htmx.target == "preference-review":
        return render(request, "serving/preference_dataset.html#review", context, status=status)
    return render(request, "serving/preference_dataset.html", context, status=status)


def _create(request):
    error = None
    try:
        filters = preference_data.read_filters(request.user, request.POST)
        dataset = preference_data.create_preference_dataset(
            request.user, filters, name=request.POST.get("name", "")
        )
    except (preference_data.PreferenceDataError, DatasetInputError) as exc:
        error = {"field": exc.field, "message": exc.message}
    except (QuotaExceeded, StorageError) as exc:
        error = {"field": "name", "message": str(exc)}
    if error is not None:
        context = _context(request, request.POST, error=error)
        return render(request, "serving/preference_dataset.html", context, status=422)
    rows = dataset.provenance["pairs"]
    messages.success(
        request,
        f"Made “{dataset.name}” from {rows:,} vote{'s' if rows != 1 else ''}; "
        "it is being checked like any upload.",
    )
    return redirect("dataset-detail", dataset_id=dataset.pk)
