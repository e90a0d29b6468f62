"""/api/v1/datasets/: the same services as the pages, for scripts."""

from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from datasets_app import engine, services
from datasets_app.models import Dataset, DatasetStatus, SplitMode
from datasets_app.serializers import (
    DatasetCreateSerializer,
    DatasetSerializer,
    DatasetUpdateSerializer,
)
from datasets_app.uploads import too_large_message
from jobs import vocabulary
from studio.api_errors import Conflict, InsufficientStorage, PayloadTooLarge
from studio.api_params import one_of, whole_number
from studio.pagination import MAX_PER_PAGE
from studio.parsers import JSONParser
from studio.services import disk


def _input_error(error: services.DatasetInputError) -> ValidationError:
    return ValidationError({error.field: [error.message]})


def filter_datasets(datasets, request):
    """The `status`, `task`, `format` and `q` filters of the datasets list."""
    params = request.query_params
    if wanted := one_of(params, "status", DatasetStatus.values):
        datasets = datasets.filter(status=wanted)
    if task := one_of(params, "task", vocabulary.DATASET_TASK_WORDS):
        datasets = datasets.filter(task=vocabulary.as_dataset_task(task))
    if kind := one_of(params, "format", list(engine.FORMATS)):
        datasets = datasets.filter(format=kind)
    if q := params.get("q", "").strip():
        datasets = datasets.filter(Q(name__icontains=q) | Q(original_filename__icontains=q))
    return datasets


_DATASET_ID = extend_schema(
    parameters=[OpenApiParameter("dataset_id", OpenApiTypes.UUID, OpenApiParameter.PATH)]
)


@extend_schema_view(
    retrieve=_DATASET_ID,
    partial_update=_DATASET_ID,
    destroy=_DATASET_ID,
    preview=_DATASET_ID,
    skip_invalid_rows=_DATASET_ID,
)
class DatasetViewSet(viewsets.GenericViewSet):
    parser_classes = (MultiPartParser, FormParser, JSONParser)
    serializer_class = DatasetSerializer
    lookup_url_kwarg = "dataset_id"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular, with no user
            return Dataset.objects.none()
        return Dataset.objects.for_user(self.request.user)

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=DatasetStatus.values),
            OpenApiParameter(
                "task",
                str,
                enum=list(vocabulary.DATASET_TASK_WORDS),
                description=vocabulary.DATASET_TASK_FILTER_HELP,
            ),
            OpenApiParameter("format", str, enum=list(engine.FORMATS)),
            OpenApiParameter("q", str, description="Name or file name contains."),
        ],
        responses=DatasetSerializer(many=True),
        summary="Your datasets, newest first",
    )
    def list(self, request):
        datasets = filter_datasets(self.get_queryset().order_by("-created_at"), request)
        page = self.paginate_queryset(datasets)
        return self.get_paginated_response(
            DatasetSerializer(page, many=True, context={"request": request}).data
        )

    @extend_schema(
        request={"multipart/form-data": DatasetCreateSerializer},
        responses={
            201: DatasetSerializer,
            507: OpenApiResponse(description="The studio's disk is full; nothing was kept."),
        },
        summary="Upload a dataset; validation starts at once",
    )
    def create(self, request):
        try:
            dataset = self._store_upload(request)
        except OSError as exc:
            # The upload's temporary file, or the dataset's folder, is on a full disk.
            if not disk.is_disk_full(exc):
                raise
            disk.discard_upload(request._request)
            raise InsufficientStorage(field="file") from None
        return Response(
            DatasetSerializer(dataset, context={"request": request}).data,
            status=status.HTTP_201_CREATED,
        )

    def _store_upload(self, request) -> Dataset:
        request.data  # noqa: B018  (parsing runs the upload handler, which flags an oversized file)
        disk.upload_hit_full_disk(request._request)
        if getattr(request._request, "upload_too_large", False):
            raise PayloadTooLarge(too_large_message(), field="file", code="file_too_large")
        form = DatasetCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        validation_upload = data.get("validation_file")
        split = services.SplitSettings(
            mode=SplitMode.FILE if validation_upload else SplitMode.HOLDOUT,
            fraction=data.get("validation_fraction", engine.DEFAULT_VALIDATION_FRACTION),
            seed=data.get("split_seed", engine.DEFAULT_SPLIT_SEED),
        )
        disk.check_room([data["file"], validation_upload], Path(settings.MEDIA_ROOT) / "datasets")
        try:
            return services.create_dataset(
                request.user,
                upload=data["file"],
                name=data.get("name", ""),
                requested_format=data.get("format", ""),
                column_mapping=data.get("column_mapping"),
                validation_upload=validation_upload,
                split=split,
                skip_invalid_rows=data["skip_invalid_rows"],
            )
        except services.DatasetInputError as error:
            raise _input_error(error) from None

    @extend_schema(responses=DatasetSerializer, summary="A dataset with its validation report")
    def retrieve(self, request, dataset_id=None):
        dataset = services.access_dataset(request.user, dataset_id)
        return Response(DatasetSerializer(dataset, context={"request": request}).data)

    @extend_schema(
        request=DatasetUpdateSerializer,
        responses=DatasetSerializer,
        summary="Rename, or change how the file is read or split (validates again)",
    )
    def partial_update(self, request, dataset_id=None):
        dataset = services.access_dataset(request.user, dataset_id)
        form = DatasetUpdateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        try:
            with transaction.atomic():
                if "name" in data:
                    services.rename_dataset(dataset, data["name"])
                rereads = {
                    "format",
                    "column_mapping",
                    "split_mode",
                    "validation_fraction",
                    "split_seed",
                    "skip_invalid_rows",
                }
                if rereads & data.keys():
                    split = None
                    if {"split_mode", "validation_fraction", "split_seed"} & data.keys():
                        split = services.SplitSettings(
                            mode=data.get("split_mode", dataset.split_mode),
                            fraction=data.get("validation_fraction", dataset.validation_fraction),
                            seed=data.get("split_seed", dataset.split_seed),
                        )
                    dataset = services.change_settings(
                        dataset,
                        requested_format=data.get("format"),
                        column_mapping=data.get("column_mapping"),
                        split=split,
                        skip_invalid_rows=data.get("skip_invalid_rows"),
                    )
        except services.DatasetInputError as error:
            raise _input_error(error) from None
        dataset.refresh_from_db()
        return Response(DatasetSerializer(dataset, context={"request": request}).data)

    @extend_schema(
        request=None,
        responses={
            202: DatasetSerializer,
            409: OpenApiResponse(
                description="Skipping cannot help (the dataset is not invalid, the problem is "
                "with the file as a whole, or every row is broken); `error.message` says which."
            ),
        },
        summary="Validate an invalid dataset again, leaving its broken rows out",
        description="Offered when `skippable` is true. The rows with problems of their own "
        "are left out; `skipped_rows` and `skipped_errors` list them once it is ready. "
        "Sets `skip_invalid_rows` (PATCH it to false to stop skipping).",
    )
    @action(detail=True, methods=["post"], url_path="skip-invalid-rows")
    def skip_invalid_rows(self, request, dataset_id=None):
        dataset = services.access_dataset(request.user, dataset_id)
        try:
            dataset = services.skip_invalid_rows(dataset)
        except services.DatasetStateError as error:
            raise Conflict(str(error)) from None
        return Response(
            DatasetSerializer(dataset, context={"request": request}).data,
            status=status.HTTP_202_ACCEPTED,
        )

    @extend_schema(responses={204: None}, summary="Delete a dataset")
    def destroy(self, request, dataset_id=None):
        services.delete_dataset(services.access_dataset(request.user, dataset_id))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        parameters=[
            OpenApiParameter("page", int, description="1-based page"),
            OpenApiParameter("per_page", int, description="rows per page, 1 to 200"),
        ],
        summary="Normalised rows of a ready dataset, a page at a time",
    )
    @action(detail=True, methods=["get"])
    def preview(self, request, dataset_id=None):
        dataset = services.access_dataset(request.user, dataset_id)
        params = request.query_params
        page = whole_number(params, "page", 1, lowest=1, highest=2**31 - 1)
        per_page = whole_number(params, "per_page", 20, lowest=1, highest=MAX_PER_PAGE)
        if dataset.status != "ready":
            raise Conflict(f"The dataset is {dataset.status}; a preview needs it ready.")
        result = services.preview_page(dataset, page, per_page)
        url = request.build_absolute_uri()

        def link(number):
            return (
                replace_query_param(url, "page", number) if 1 <= number <= result["pages"] else None
            )

        return Response(
            {
                "count": result["total"],
                "next": link(result["page"] + 1),
                "previous": link(result["page"] - 1),
                "page": result["page"],
                "pages": result["pages"],
                "per_page": per_page,
                "results": result["rows"],
            }
        )
