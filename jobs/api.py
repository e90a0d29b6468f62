"""/api/v1/models/ and /api/v1/jobs/: the same services as the pages, for scripts.

Errors have the API's one shape (studio/api_errors.py): a bad configuration
answers 400 with the first dotted field (`training.learning_rate`) in
`error.field` and every problem in `error.details`; 404 and 409 carry a code
and a message.
"""

import uuid

from django.db.models import Q
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from jobs import config as cfg
from jobs import vocabulary
from jobs.models import (
    EXPORTING,
    CatalogModel,
    ExportStatus,
    FineTuneJob,
    JobEvent,
    JobStatus,
    MetricPoint,
)
from jobs.serializers import (
    AttemptMetricPageSerializer,
    CatalogModelSerializer,
    CheckpointSerializer,
    DraftSerializer,
    ExportSerializer,
    FineTuneJobSerializer,
    JobCreateSerializer,
    JobDocumentSerializer,
    JobEventPageSerializer,
    JobOrganisationSerializer,
    JobUploadSerializer,
    job_document,
)
from jobs.services import artifacts, catalog, lifecycle, live, organise
from jobs.services.job_filters import JobFilters
from studio.api_errors import Conflict
from studio.api_params import one_of, whole_number
from studio.parsers import JSONParser

# --- reading a create body (its shape: serializers.job_document) ------------------------


def _request_document(request) -> tuple[dict, bool]:
    """job_document() of a JSON body, or of a multipart form with `config_file`."""
    data = request.data
    if hasattr(data, "dict"):  # a form: one value per field, the file apart
        base = None
        upload = request.FILES.get("config_file")
        if upload is not None:
            base = lifecycle.parse_config_upload(upload)
        fields = {key: value for key, value in data.dict().items() if key not in request.FILES}
        return job_document(fields, base)
    if not isinstance(data, dict):
        raise cfg.ConfigError([cfg.FieldError("config", "must be a mapping of sections.")])
    return job_document(data)


def _field_errors(error: cfg.ConfigError) -> ValidationError:
    messages: dict[str, list[str]] = {}
    for field_error in error.errors:
        messages.setdefault(field_error.field, []).append(field_error.message)
    return ValidationError(messages)


# --- shared pieces ------------------------------------------------------------------------


LIMIT = OpenApiParameter("limit", int, description="At most this many, 1 to 1,000 (default 500).")


def _limit(request) -> int:
    return whole_number(request.query_params, "limit", 500, lowest=1, highest=1000)


# Answered with a file whatever the client says it accepts; only errors are JSON.
DOWNLOADS = {"adapter", "config", "export"}
CONFLICT = OpenApiResponse(
    description="The job's status does not allow this; `error.message` says why."
)
ORGANISATION_ERRORS = OpenApiResponse(
    description="The first bad field in `error.field`; every problem in `error.details`."
)
CONFIG_ERRORS = OpenApiResponse(
    description="The first bad field, dotted (`training.learning_rate`), in `error.field`; "
    "every problem in `error.details`."
)


TASK_FILTER = OpenApiParameter(
    "task",
    str,
    enum=list(vocabulary.MODEL_TASK_WORDS),
    description=vocabulary.MODEL_TASK_FILTER_HELP,
)


def filter_jobs(jobs, params):
    """The `status`, `task`, `base_model`, `dataset`, `tag`, `starred` and `q`
    filters of the jobs list, read strictly (a bad value is a 400); the list
    page's filters narrow alike (JobFilters.apply)."""
    dataset = params.get("dataset", "")
    if dataset:
        try:
            dataset = str(uuid.UUID(dataset))
        except ValueError:
            raise ValidationError({"dataset": ["Must be a dataset id (a UUID)."]}) from None
    starred = one_of(params, "starred", ("true", "false"))
    jobs = JobFilters(
        tag=" ".join(params.get("tag", "").split()),
        base_model=params.get("base_model", ""),
        dataset=dataset,
        status=one_of(params, "status", JobStatus.values) or "",
        starred=None if starred is None else starred == "true",
    ).apply(jobs)
    if task := one_of(params, "task", vocabulary.MODEL_TASK_WORDS):
        jobs = jobs.filter(task=vocabulary.as_model_task(task))
    if q := params.get("q", "").strip():
        jobs = jobs.filter(Q(name__icontains=q) | Q(fine_tuned_model__icontains=q))
    return jobs


# --- the model catalog --------------------------------------------------------------------


class CatalogModelViewSet(viewsets.GenericViewSet):
    serializer_class = CatalogModelSerializer
    queryset = CatalogModel.objects.filter(enabled=True)
    lookup_url_kwarg = "model_id"
    lookup_value_regex = r"[^/]+"  # catalog ids have dots: qwen2.5-0.5b-instruct
    pagination_class = None

    @extend_schema(
        parameters=[TASK_FILTER],
        summary="Base models you can fine-tune",
    )
    def list(self, request):
        task = one_of(request.query_params, "task", vocabulary.MODEL_TASK_WORDS)
        models = catalog.list_models(task=task and vocabulary.as_model_task(task))
        return Response(CatalogModelSerializer(models, many=True).data)

    @extend_schema(summary="A base model: availability, memory by method, recommended settings")
    def retrieve(self, request, model_id=None):
        return Response(CatalogModelSerializer(catalog.get_model(model_id)).data)


# --- jobs -----------------------------------------------------------------------------------


# Create, follow, cancel, retry, resume, download, delete; the owner's
# organisation (tags, note, star) is the one thing PATCH changes; no PUT (405).
class JobViewSet(viewsets.GenericViewSet):
    serializer_class = FineTuneJobSerializer
    parser_classes = (JSONParser, MultiPartParser, FormParser)
    lookup_url_kwarg = "job_id"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular, with no user
            return FineTuneJob.objects.none()
        jobs = FineTuneJob.objects.for_user(self.request.user).select_related("base_model")
        return jobs.prefetch_related(organise.WITH_TAGS)

    def perform_content_negotiation(self, request, force=False):
        return super().perform_content_negotiation(request, force=force or self.action in DOWNLOADS)

    def _job(self, job: FineTuneJob) -> dict:
        return FineTuneJobSerializer(job, context={"request": self.request}).data

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=JobStatus.values),
            TASK_FILTER,
            OpenApiParameter("base_model", str, description="A catalog model id."),
            OpenApiParameter("dataset", OpenApiTypes.UUID, description="Trained on this dataset."),
            OpenApiParameter("tag", str, description="Carries this tag (in any case)."),
            OpenApiParameter(
                "starred", str, enum=["true", "false"], description="Starred, or not starred."
            ),
            OpenApiParameter("q", str, description="Name or fine-tuned model name contains."),
        ],
        summary="Your jobs, newest first (staff: everyone's)",
    )
    def list(self, request):
        jobs = filter_jobs(self.get_queryset(), request.query_params)
        page = self.paginate_queryset(jobs)
        data = FineTuneJobSerializer(page, many=True, context={"request": request}).data
        return self.get_paginated_response(data)

    @extend_schema(
        request={
            "application/json": JobCreateSerializer,
            "multipart/form-data": JobUploadSerializer,
        },
        responses={201: FineTuneJobSerializer, 400: CONFIG_ERRORS},
        summary="Create a job from a configuration (JSON, flat fields or a YAML file) and queue it",
    )
    def create(self, request):
        try:
            document, start = _request_document(request)
            draft = lifecycle.check_start_job(request.user, document)
        except cfg.ConfigError as error:
            raise _field_errors(error) from None
        job = lifecycle.create_job(request.user, draft, start=start)
        return Response(self._job(job), status=status.HTTP_201_CREATED)

    @extend_schema(
        request={
            "application/json": JobDocumentSerializer,
            "multipart/form-data": JobUploadSerializer,
        },
        responses={200: DraftSerializer, 400: CONFIG_ERRORS},
        summary="The resolved configuration, plan and estimate of a job, without creating it",
    )
    @action(detail=False, methods=["post"])
    def estimate(self, request):
        try:
            document, _ = _request_document(request)
            draft = lifecycle.check_start_job(request.user, document)
        except cfg.ConfigError as error:
            raise _field_errors(error) from None
        return Response(draft.as_dict())

    @extend_schema(summary="A job: status, progress, losses, configuration and links")
    def retrieve(self, request, job_id=None):
        return Response(self._job(lifecycle.access_job(request.user, job_id)))

    @extend_schema(
        request=JobOrganisationSerializer,
        responses={200: FineTuneJobSerializer, 400: ORGANISATION_ERRORS},
        summary="Tag, note or star your job (its owner only; the fields sent are replaced)",
    )
    def partial_update(self, request, job_id=None):
        job = organise.access_own_job(request.user, job_id)
        fields = request.data.dict() if hasattr(request.data, "dict") else request.data
        if not isinstance(fields, dict):
            raise ValidationError(["The body must be an object of tags, note and starred."])
        try:
            job = organise.organise_job(job, organise.check_organisation(fields))
        except organise.OrganisationInvalid as error:
            raise ValidationError(error.as_dict()) from None
        return Response(self._job(job))

    @extend_schema(
        request=None,
        responses={200: FineTuneJobSerializer, 409: CONFLICT},
        summary="Cancel: at once before it runs; a running job stops at its next step",
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, job_id=None):
        job = lifecycle.access_job(request.user, job_id)
        try:
            job = lifecycle.cancel_job(job)
        except lifecycle.JobStateError as error:
            raise Conflict(str(error)) from None
        return Response(self._job(job))

    @extend_schema(
        request=None,
        responses={201: FineTuneJobSerializer, 400: CONFIG_ERRORS, 409: CONFLICT},
        summary="A new job with a finished job's configuration and data",
    )
    @action(detail=True, methods=["post"])
    def retry(self, request, job_id=None):
        job = lifecycle.access_job(request.user, job_id)
        try:
            new_job = lifecycle.retry_job(request.user, job)
        except lifecycle.JobStateError as error:
            raise Conflict(str(error)) from None
        except cfg.ConfigError as error:
            raise _field_errors(error) from None
        return Response(self._job(new_job), status=status.HTTP_201_CREATED)

    @extend_schema(
        request=None,
        responses={202: FineTuneJobSerializer, 409: CONFLICT},
        summary="Resume a job that failed for want of disk space or of a worker: the same "
        "job, queued again to continue from its newest complete checkpoint",
    )
    @action(detail=True, methods=["post"])
    def resume(self, request, job_id=None):
        job = lifecycle.access_job(request.user, job_id)
        try:
            job = lifecycle.resume_job(job)
        except lifecycle.JobStateError as error:
            raise Conflict(str(error)) from None
        return Response(self._job(job), status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        responses={204: None, 409: CONFLICT},
        summary="Delete a job with its files (not while it is queued, running or exporting)",
    )
    def destroy(self, request, job_id=None):
        job = lifecycle.access_job(request.user, job_id)
        try:
            lifecycle.delete_job(job)
        except lifecycle.JobStateError as error:
            raise Conflict(str(error)) from None
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        parameters=[
            OpenApiParameter("after_step", int, description="Only points after this step."),
            OpenApiParameter(
                "attempt",
                int,
                description="The newest attempt whose points you hold (each point has its "
                "`attempt`). When a later attempt resumed from an earlier checkpoint, the "
                "points of attempts up to this one past `rewind_to` are gone: drop yours, "
                "and the results start after `rewind_to`. Without it, no rewind is told.",
            ),
            LIMIT,
        ],
        responses=AttemptMetricPageSerializer,
        summary="Logged training and evaluation points, by step",
    )
    @action(detail=True, methods=["get"])
    def metrics(self, request, job_id=None):
        job = lifecycle.access_job(request.user, job_id)
        params = request.query_params
        after_step = whole_number(params, "after_step", -1, lowest=-1, highest=2**31 - 1)
        attempt = whole_number(params, "attempt", 0, lowest=0, highest=2**31 - 1)
        limit = _limit(request)
        stored = live.stored_since(job, after_step=after_step, attempt=attempt)
        query = MetricPoint.objects.filter(job=job, step__gt=stored.after_step)
        points = list(query.order_by("step", "kind")[: limit + 1])
        next_url = None
        if len(points) > limit:
            # A training point and an evaluation can share a step: end the page
            # on a whole step, so that after_step=<last step> skips nothing.
            cut = points[limit].step
            points = [p for p in points if p.step < cut] or [p for p in points if p.step == cut]
            next_url = replace_query_param(
                request.build_absolute_uri(), "after_step", points[-1].step
            )
            if "attempt" in params:
                # The cursor moves on with the newest attempt read, or the next
                # page would be told the same rewind again.
                newest = max(attempt, *(p.attempt for p in points))
                next_url = replace_query_param(next_url, "attempt", newest)
        results = [live.metric_payload(point, job.total_steps) for point in points]
        return Response({"results": results, "next": next_url, "rewind_to": stored.rewind_to})

    @extend_schema(
        parameters=[
            OpenApiParameter("after", int, description="Only events after this id."),
            LIMIT,
        ],
        responses=JobEventPageSerializer,
        summary="What happened to the job: status changes, logs, checkpoints",
    )
    @action(detail=True, methods=["get"])
    def events(self, request, job_id=None):
        job = lifecycle.access_job(request.user, job_id)
        after = whole_number(request.query_params, "after", 0, lowest=0, highest=2**63 - 1)
        limit = _limit(request)
        events = list(JobEvent.objects.filter(job=job, pk__gt=after).order_by("pk")[: limit + 1])
        next_url = None
        if len(events) > limit:
            events = events[:limit]
            next_url = replace_query_param(request.build_absolute_uri(), "after", events[-1].pk)
        return Response({"results": [live.event_payload(e) for e in events], "next": next_url})

    @extend_schema(
        responses=CheckpointSerializer(many=True),
        summary="Saved checkpoints, by step (the newest few are kept)",
    )
    @action(detail=True, methods=["get"])
    def checkpoints(self, request, job_id=None):
        job = lifecycle.access_job(request.user, job_id)
        return Response(CheckpointSerializer(job.checkpoints.order_by("step"), many=True).data)

    @extend_schema(
        responses={(200, "application/zip"): OpenApiTypes.BINARY, 409: CONFLICT},
        summary="The trained adapter (PEFT files) as a zip",
    )
    @action(detail=True, methods=["get"])
    def adapter(self, request, job_id=None):
        job = lifecycle.access_job(request.user, job_id)
        path = artifacts.adapter_archive(job)
        if path is None:
            if job.status == JobStatus.SUCCEEDED:
                raise Conflict("The job succeeded, but its adapter archive is missing.")
            raise Conflict(
                f"The job is {job.get_status_display().lower()}; "
                "its adapter can be downloaded once it has succeeded."
            )
        # The zip, or with object storage a redirect to a presigned URL.
        return artifacts.download_response(job, path, "adapter")

    @extend_schema(
        responses={(200, "text/yaml"): OpenApiTypes.STR},
        summary="The job's configuration as YAML, to upload again",
    )
    @action(detail=True, methods=["get"])
    def config(self, request, job_id=None):
        job = lifecycle.access_job(request.user, job_id)
        response = HttpResponse(lifecycle.config_yaml(job), content_type="text/yaml; charset=utf-8")
        name = artifacts.download_name(job, "config")
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response

    @extend_schema(
        responses={
            (200, "application/zip"): OpenApiTypes.BINARY,
            202: ExportSerializer,
            409: CONFLICT,
        },
        summary="The merged model as a zip once exported (202 while it is being made)",
    )
    @action(detail=True, methods=["get"])
    def export(self, request, job_id=None):
        job = lifecycle.access_job(request.user, job_id)
        path = artifacts.merged_archive(job)
        if path is not None:
            return artifacts.download_response(job, path, "merged")
        if job.export_status in EXPORTING:
            return Response(_export(job), status=status.HTTP_202_ACCEPTED)
        if job.export_status == ExportStatus.FAILED:
            raise Conflict(f"The export failed: {job.export_error}")
        raise Conflict("The job has no merged model: POST here to export one (LoRA or QLoRA).")

    @extend_schema(
        request=None,
        responses={202: ExportSerializer, 409: CONFLICT},
        summary="Merge a succeeded LoRA or QLoRA job's adapter into its base, as a full model",
    )
    @export.mapping.post
    def request_export(self, request, job_id=None):
        job = lifecycle.access_job(request.user, job_id)
        try:
            job = artifacts.request_export(job)
        except lifecycle.JobStateError as error:
            raise Conflict(str(error)) from None
        return Response(_export(job), status=status.HTTP_202_ACCEPTED)


def _export(job: FineTuneJob) -> dict:
    return ExportSerializer({"status": job.export_status, "error": job.export_error}).data
