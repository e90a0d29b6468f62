"""The OpenAI-compatible fine-tuning API under /v1/: files and fine-tuning jobs.

The same token, error shape and decorator as serving/openai_api.py. An
OpenAI file is a Tailor dataset and a fine-tuning job a Tailor job: their
objects and lists come from services/openai_objects.py, and uploads, creates
and cancels are checked and done by services/fine_tuning.py. These views
only read the request and answer in OpenAI's shape.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import FileResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError

from datasets_app import services as datasets
from datasets_app.uploads import too_large_message
from serving.openai_api import OpenAIError, openai_endpoint, read_json_body
from serving.services import fine_tuning, openai_objects
from serving.services.openai_objects import RequestError
from studio.services import disk


@contextmanager
def answered_in_openai_shape():
    """A RequestError raised inside becomes OpenAIError, which the endpoint answers."""
    try:
        yield
    except RequestError as exc:
        raise OpenAIError(exc.status, exc.message, param=exc.param, code=exc.code) from None


# --- files -----------------------------------------------------------------------------------


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
        fine_tuning.check_purpose(purpose)
        disk.check_room([upload], Path(settings.MEDIA_ROOT) / "datasets")
        dataset = datasets.create_dataset(user, upload=upload)
    except datasets.DatasetInputError as exc:
        raise OpenAIError(400, f"{exc.field}: {exc.message}", param=exc.field) from None
    except OSError as exc:
        # The upload's temporary file, or the dataset's folder, is on a full disk.
        if not disk.is_disk_full(exc):
            raise
        disk.discard_upload(request)
        raise OpenAIError(
            507, disk.UPLOAD_DISK_FULL, type="server_error", param="file", code="disk_full"
        ) from None
    return JsonResponse(openai_objects.file_object(dataset))


@openai_endpoint("GET", "POST")
def files(request, user):
    with answered_in_openai_shape():
        if request.method == "POST":
            return _upload(request, user)
        return JsonResponse(openai_objects.files_page(user, request.GET))


@openai_endpoint("GET", "DELETE")
def file_detail(request, user, file_id: str):
    with answered_in_openai_shape():
        dataset = openai_objects.user_file(user, file_id)
    if request.method == "DELETE":
        # As on the dataset page: jobs keep their own copy of the data.
        datasets.delete_dataset(dataset)
        return JsonResponse(openai_objects.deleted_file(dataset))
    return JsonResponse(openai_objects.file_object(dataset))


@openai_endpoint("GET")
def file_content(request, user, file_id: str):
    with answered_in_openai_shape():
        dataset = openai_objects.user_file(user, file_id)
    return FileResponse(
        dataset.source.open("rb"),
        filename=dataset.original_filename,
        content_type="application/octet-stream",
    )


# --- fine-tuning jobs ------------------------------------------------------------------------


async def _create_job(request, user) -> JsonResponse:
    ask = fine_tuning.read_create_request(read_json_body(request))
    await fine_tuning.wait_for_files(user, ask)
    job = await sync_to_async(fine_tuning.start_job)(user, ask)
    return JsonResponse(await sync_to_async(openai_objects.job_object)(job))


@openai_endpoint("GET", "POST")
async def fine_tuning_jobs(request, user):
    # Async: a create may wait seconds for its files, and must hold no thread meanwhile.
    with answered_in_openai_shape():
        if request.method == "POST":
            return await _create_job(request, user)
        return JsonResponse(await sync_to_async(openai_objects.jobs_page)(user, request.GET))


@openai_endpoint("GET")
def fine_tuning_job(request, user, job_id: str):
    with answered_in_openai_shape():
        return JsonResponse(openai_objects.job_object(openai_objects.user_job(user, job_id)))


@openai_endpoint("POST")
def fine_tuning_job_cancel(request, user, job_id: str):
    with answered_in_openai_shape():
        return JsonResponse(openai_objects.job_object(fine_tuning.cancel(user, job_id)))


@openai_endpoint("GET")
def fine_tuning_job_events(request, user, job_id: str):
    with answered_in_openai_shape():
        return JsonResponse(openai_objects.events_page(user, job_id, request.GET))


@openai_endpoint("GET")
def fine_tuning_job_checkpoints(request, user, job_id: str):
    with answered_in_openai_shape():
        return JsonResponse(openai_objects.checkpoints_page(user, job_id, request.GET))
