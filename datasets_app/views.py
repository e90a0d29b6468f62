"""Dataset pages: list and upload, detail with live validation, preview, settings."""

from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from datasets_app import engine, services
from datasets_app.forms import RenameForm, SettingsForm, UploadForm
from datasets_app.models import Dataset
from datasets_app.samples import SAMPLES
from datasets_app.uploads import too_large_message
from quotas.services.limits import QuotaExceeded
from studio.api_errors import error_body
from studio.services import disk, object_store

# The delete confirmation names this many of the jobs that use a dataset.
JOBS_NAMED = 5


@login_required
@require_GET
def dataset_list(request):
    context = {
        "datasets": Dataset.objects.for_user(request.user).select_related("owner"),
        "form": UploadForm(),
        "samples": SAMPLES,
    }
    return render(request, "datasets_app/dataset_list.html", context)


@login_required
@require_POST
def dataset_upload(request):
    try:
        return _store_upload(request)
    except OSError as exc:
        # The upload's temporary file, or the dataset's folder, is on a full disk.
        if not disk.is_disk_full(exc):
            raise
    disk.discard_upload(request)
    if request.htmx:  # upload.js shows the message of an error that carries no form
        return JsonResponse(error_body("disk_full", disk.UPLOAD_DISK_FULL, "file"), status=507)
    # The body may not have been read whole: the form starts empty.
    form = UploadForm({}, {})
    form.is_valid()
    form.errors["file"] = form.error_class([disk.UPLOAD_DISK_FULL])
    context = {
        "datasets": Dataset.objects.for_user(request.user),
        "form": form,
        "samples": SAMPLES,
    }
    return render(request, "datasets_app/dataset_list.html", context, status=507)


def _store_upload(request):
    form = UploadForm(request.POST, request.FILES)
    disk.upload_hit_full_disk(request)
    if getattr(request, "upload_too_large", False):
        form.is_valid()
        form.add_error("file", too_large_message())
    elif form.is_valid():
        try:
            disk.check_room(
                [form.cleaned_data["file"], form.cleaned_data["validation_file"]],
                Path(settings.MEDIA_ROOT) / "datasets",
            )
            dataset = services.create_dataset(
                request.user,
                upload=form.cleaned_data["file"],
                name=form.cleaned_data["name"],
                validation_upload=form.cleaned_data["validation_file"],
            )
        except services.DatasetInputError as error:
            form.add_error(error.field if error.field in form.fields else "file", error.message)
        except QuotaExceeded as error:
            form.add_error("file", error.message)
        except object_store.StorageError as error:
            form.add_error("file", str(error))
        else:
            _say_if_renamed(request, dataset)
            detail = reverse("dataset-detail", args=[dataset.pk])
            if request.htmx:
                return HttpResponse(status=204, headers={"HX-Redirect": detail})
            return redirect(detail)
    template = "datasets_app/dataset_list.html"
    if request.htmx:
        return render(request, f"{template}#upload-form", {"form": form}, status=422)
    context = {
        "datasets": Dataset.objects.for_user(request.user),
        "form": form,
        "samples": SAMPLES,
    }
    return render(request, template, context, status=422)


def _say_if_renamed(request, dataset) -> None:
    if dataset.name_was_taken:
        messages.info(
            request,
            f"You already have a dataset called “{dataset.name_was_taken}”, "
            f"so this one is called “{dataset.name}”. Rename it below if you like.",
        )


@login_required
@require_POST
def dataset_from_sample(request, slug):
    try:
        dataset = services.create_from_sample(request.user, slug)
    except (services.DatasetInputError, QuotaExceeded) as error:
        messages.error(request, error.message)
        return redirect("datasets")
    except object_store.StorageError as error:
        messages.error(request, str(error))
        return redirect("datasets")
    _say_if_renamed(request, dataset)
    return redirect("dataset-detail", dataset_id=dataset.pk)


def _settings_form(dataset, data=None):
    initial = {
        "format": dataset.requested_format,
        "split_mode": dataset.split_mode,
        "validation_fraction": dataset.validation_fraction,
        "split_seed": dataset.split_seed,
        "skip_invalid_rows": dataset.skip_invalid_rows,
        **{f"map_{field}": column for field, column in dataset.column_mapping.items()},
    }
    return SettingsForm(data, initial=initial, columns=dataset.columns)


def _detail_context(request, dataset) -> dict:
    jobs = services.jobs_using(request.user, dataset)
    count, some = jobs.count(), list(jobs[:JOBS_NAMED])
    return {
        "dataset": dataset,
        # The file could not be parsed: reading its columns otherwise cannot help.
        "unparseable": any(error.get("code") in engine.UNPARSEABLE for error in dataset.errors),
        "jobs_using": {"count": count, "some": some, "more": count - len(some)},
        "rename_form": RenameForm(initial={"name": dataset.name}),
        "settings_form": _settings_form(dataset),
        "preview": _preview(request, dataset, 1),
    }


def _preview(request, dataset, page: int) -> dict:
    """A page of the preview; when the object store fails, an empty one
    and the store's sentence as a message."""
    try:
        return services.preview_page(dataset, page)
    except object_store.StorageError as error:
        messages.error(request, str(error))
        return services.preview_page(dataset, page, read=False)


@login_required
@require_GET
def dataset_detail(request, dataset_id):
    dataset = services.access_dataset(request.user, dataset_id)
    return render(request, "datasets_app/dataset_detail.html", _detail_context(request, dataset))


@login_required
@require_GET
def dataset_preview(request, dataset_id):
    dataset = services.access_dataset(request.user, dataset_id)
    try:
        page = int(request.GET.get("page", 1))
    except ValueError:
        page = 1
    context = {"dataset": dataset, "preview": _preview(request, dataset, page)}
    return render(request, "datasets_app/dataset_detail.html#preview", context)


@login_required
@require_POST
def dataset_rename(request, dataset_id):
    dataset = services.access_dataset(request.user, dataset_id)
    form = RenameForm(request.POST)
    if form.is_valid():
        services.rename_dataset(dataset, form.cleaned_data["name"])
        messages.success(request, f"Renamed to “{dataset.name}”.")
    else:
        messages.error(request, "A dataset needs a name of at most 200 characters.")
    return redirect("dataset-detail", dataset_id=dataset.pk)


@login_required
@require_POST
def dataset_settings(request, dataset_id):
    dataset = services.access_dataset(request.user, dataset_id)
    form = _settings_form(dataset, request.POST)
    if form.is_valid():
        try:
            services.change_settings(
                dataset,
                requested_format=form.cleaned_data["format"],
                column_mapping=form.mapping(),
                split=services.SplitSettings(
                    mode=form.cleaned_data["split_mode"],
                    fraction=form.cleaned_data["validation_fraction"],
                    seed=form.cleaned_data["split_seed"],
                ),
                skip_invalid_rows=form.cleaned_data["skip_invalid_rows"],
            )
        except services.DatasetInputError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, "Settings saved; checking the file again.")
            return redirect("dataset-detail", dataset_id=dataset.pk)
    else:
        for field, errors in form.errors.items():
            label = (
                form.fields[field].label or field.replace("_", " ")
                if field in form.fields
                else field
            )
            messages.error(request, f"{label}: {' '.join(errors)}")
    return redirect("dataset-detail", dataset_id=dataset.pk)


@login_required
@require_POST
def dataset_skip_invalid_rows(request, dataset_id):
    """The "Skip N broken rows" button: validate again without them. From htmx,
    the page's body is swapped for the new check's progress."""
    dataset = services.access_dataset(request.user, dataset_id)
    try:
        dataset = services.skip_invalid_rows(dataset)
    except services.DatasetStateError as error:
        messages.error(request, str(error))
    else:
        if request.htmx:
            context = _detail_context(request, dataset)
            return render(request, "datasets_app/dataset_detail.html#body", context)
        skipped = f"{dataset.invalid_rows:,} broken row{pluralize(dataset.invalid_rows)}"
        messages.success(request, f"Skipping {skipped}; checking the file again.")
    detail = reverse("dataset-detail", args=[dataset.pk])
    if request.htmx:  # the refusal is a message: the whole page shows it
        return HttpResponse(status=204, headers={"HX-Redirect": detail})
    return redirect(detail)


@login_required
@require_POST
def dataset_delete(request, dataset_id):
    dataset = services.access_dataset(request.user, dataset_id)
    services.delete_dataset(dataset)
    messages.success(request, f"Deleted “{dataset.name}”.")
    return redirect("datasets")
