"""/api/v1/datasets/: the same services as the pages, for scripts."""

from django.db import transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from datasets_app import services
from datasets_app.models import Dataset, SplitMode
from datasets_app.serializers import (
    DatasetCreateSerializer,
    DatasetSerializer,
    DatasetUpdateSerializer,
)
from datasets_app.uploads import too_large_message


def _input_error(error: services.DatasetInputError) -> ValidationError:
    return ValidationError({error.field: [error.message]})


_DATASET_ID = extend_schema(
    parameters=[OpenApiParameter("dataset_id", OpenApiTypes.UUID, OpenApiParameter.PATH)]
)


@extend_schema_view(
    retrieve=_DATASET_ID, partial_update=_DATASET_ID, destroy=_DATASET_ID, preview=_DATASET_ID
)
class DatasetViewSet(viewsets.ViewSet):
    parser_classes = (MultiPartParser, FormParser, JSONParser)
    serializer_class = DatasetSerializer
    lookup_field = "dataset_id"

    def get_queryset(self):
        return Dataset.objects.for_user(self.request.user)

    @extend_schema(responses=DatasetSerializer(many=True), summary="Your datasets")
    def list(self, request):
        return Response(DatasetSerializer(self.get_queryset(), many=True).data)

    @extend_schema(
        request={"multipart/form-data": DatasetCreateSerializer},
        responses={201: DatasetSerializer},
        summary="Upload a dataset; validation starts at once",
    )
    def create(self, request):
        request.data  # noqa: B018  (parsing runs the upload handler, which flags an oversized file)
        if getattr(request._request, "upload_too_large", False):
            return Response(
                {"file": [too_large_message()]}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
            )
        form = DatasetCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        validation_upload = data.get("validation_file")
        split = services.SplitSettings(
            mode=SplitMode.FILE if validation_upload else SplitMode.HOLDOUT,
            fraction=data.get("validation_fraction", 0.1),
            seed=data.get("split_seed", 42),
        )
        try:
            dataset = services.create_dataset(
                request.user,
                upload=data["file"],
                name=data.get("name", ""),
                requested_format=data.get("format", ""),
                column_mapping=data.get("column_mapping"),
                validation_upload=validation_upload,
                split=split,
            )
        except services.DatasetInputError as error:
            raise _input_error(error) from None
        return Response(DatasetSerializer(dataset).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=DatasetSerializer, summary="A dataset with its validation report")
    def retrieve(self, request, dataset_id=None):
        dataset = services.access_dataset(request.user, dataset_id)
        return Response(DatasetSerializer(dataset).data)

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
                    )
        except services.DatasetInputError as error:
            raise _input_error(error) from None
        dataset.refresh_from_db()
        return Response(DatasetSerializer(dataset).data)

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
        try:
            page = int(request.query_params.get("page", 1))
            per_page = int(request.query_params.get("per_page", 20))
        except ValueError:
            raise ValidationError({"page": ["page and per_page must be whole numbers."]}) from None
        if not 1 <= per_page <= 200:
            raise ValidationError({"per_page": ["Must be between 1 and 200."]})
        if dataset.status != "ready":
            raise ValidationError(
                {"status": [f"The dataset is {dataset.status}; a preview needs it ready."]}
            )
        result = services.preview_page(dataset, page, per_page)
        return Response(
            {
                "page": result["page"],
                "pages": result["pages"],
                "per_page": per_page,
                "count": result["total"],
                "results": result["rows"],
            }
        )
