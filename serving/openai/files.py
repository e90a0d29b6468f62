"""Files under /v1/files: an OpenAI file is a Tailor dataset, uploaded, listed,
read and deleted as OpenAI's clients do.

A file is uploaded with `datasets_app.services.create_dataset` (`purpose`
must be "fine-tune") and validated by the usual worker task; its object and
lists come from `objects`. Deleting it is the dataset page's delete: jobs keep
their own copy of the data. The same token, error shape and decorator as
every /v1/ endpoint (`http`).
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import FileResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError

from datasets_app import services as datasets
from datasets_app.uploads import too_large_message
from serving.openai import objects
from serving.openai.http import (
    OpenAIError,
    RequestError,
    answered_in_openai_shape,
    openai_endpoint,
)
from serving.openai.objects import PURPOSE
from studio.services import disk, object_store


def check_purpose(purpose) -> None:
    if purpose in (None, ""):
        raise RequestError(400, f"purpose: required; send '{PURPOSE}'.", param="purpose")
    if purpose != PURPOSE:
        raise RequestError(
            400,
            f"purpose: '{purpose}' is not supported: Tailor keeps fine-tuning data only, "
            f"so send '{PURPOSE}'.",
            param="purpose",
        )


def _read_upload(request):
    """The multipart form's `file` and `purpose`; OpenAIError (400, 413)."""
    try:
        upload, purpose = request.FILES.get("file"), request.POST.get("purpose")
    except RequestDataTooBig:
        raise OpenAIError(
            413, "The form's fields are too large.", code="request_too_large"
        ) from None
    except (MultiPartParserError, TooManyFieldsSent, TooManyFilesSent) as exc:
        raise OpenAIError(400, f"The request body is not a valid multipart form: {exc}") from None
    disk.upload_hit_full_disk(request)  # an OSError, answered 507 by the caller
    if getattr(request, "upload_too_large", False):  # set by the upload handler
        raise OpenAIError(413, too_large_message(), param="file", code="file_too_large")
    if upload is None:
        raise OpenAIError(
            400,
            "file: required; send the file as multipart/form-data with purpose=fine-tune.",
            param="file",
        )
    return upload, purpose


def _upload(request, user) -> JsonResponse:
    try:
        upload, purpose = _read_upload(request)
        check_purpose(purpose)
        disk.check_room([upload], Path(settings.MEDIA_ROOT) / "datasets")
        dataset = datasets.create_dataset(user, upload=upload)
    except datasets.DatasetInputError as exc:
        raise OpenAIError(400, f"{exc.field}: {exc.message}", param=exc.field) from None
    except object_store.StorageError as exc:
        raise _storage_unavailable(exc) from None
    except OSError as exc:
        # The upload's temporary file, or the dataset's folder, is on a full disk.
        if not disk.is_disk_full(exc):
            raise
        disk.discard_upload(request)
        raise OpenAIError(
            507, disk.UPLOAD_DISK_FULL, type="server_error", param="file", code="disk_full"
        ) from None
    return JsonResponse(objects.file_object(dataset))


@openai_endpoint("GET", "POST")
def files(request, user):
    with answered_in_openai_shape():
        if request.method == "POST":
            return _upload(request, user)
        return JsonResponse(objects.files_page(user, request.GET))


@openai_endpoint("GET", "DELETE")
def file_detail(request, user, file_id: str):
    with answered_in_openai_shape():
        dataset = objects.user_file(user, file_id)
    if request.method == "DELETE":
        # As on the dataset page: jobs keep their own copy of the data.
        datasets.delete_dataset(dataset)
        return JsonResponse(objects.deleted_file(dataset))
    return JsonResponse(objects.file_object(dataset))


@openai_endpoint("GET")
def file_content(request, user, file_id: str):
    with answered_in_openai_shape():
        dataset = objects.user_file(user, file_id)
    try:
        # Streamed from the object store with TAILOR_STORAGE=s3 (never read whole).
        body = object_store.open_for_download(dataset.source.path)
    except object_store.StorageError as exc:
        raise _storage_unavailable(exc) from None
    return FileResponse(
        body, filename=dataset.original_filename, content_type="application/octet-stream"
    )


def _storage_unavailable(exc: object_store.StorageError) -> OpenAIError:
    return OpenAIError(503, str(exc), type="server_error", code="storage_unavailable")
