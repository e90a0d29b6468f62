import json

from rest_framework import serializers

from datasets_app import engine
from datasets_app.models import Dataset, SplitMode

FRACTION_RANGE = {
    "min_value": engine.MIN_VALIDATION_FRACTION,
    "max_value": engine.MAX_VALIDATION_FRACTION,
}


class RowErrorSerializer(serializers.Serializer):
    line = serializers.IntegerField(
        allow_null=True, help_text="1-based line or row; null for the whole file."
    )
    field = serializers.CharField(allow_null=True, help_text="e.g. messages[1].role")
    code = serializers.CharField()
    message = serializers.CharField()
    detail = serializers.CharField(
        required=False,
        help_text="Operators only, on an internal error: the exception behind it.",
    )

    def to_representation(self, error):
        shown = super().to_representation(error)
        request = self.context.get("request")
        # An exception's text may name the server's paths: operators only.
        if request is None or not request.user.is_staff:
            shown.pop("detail", None)
        return shown


class WarningSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    count = serializers.IntegerField()
    lines = serializers.ListField(child=serializers.IntegerField())


class DatasetSerializer(serializers.ModelSerializer):
    errors = RowErrorSerializer(many=True, read_only=True)
    warnings = WarningSerializer(many=True, read_only=True)
    skipped_errors = RowErrorSerializer(
        many=True,
        read_only=True,
        help_text="Ready with skip_invalid_rows: the problems of the rows left out "
        "(the first 100).",
    )
    owner = serializers.CharField(source="owner.get_username", read_only=True)

    class Meta:
        model = Dataset
        fields = (
            "id", "name", "owner", "status", "original_filename", "size_bytes",
            "file_type", "format", "task", "requested_format", "column_mapping", "columns",
            "rows_checked", "num_rows", "error_count", "errors", "warnings", "stats",
            "skip_invalid_rows", "invalid_rows", "skippable", "skipped_rows", "skipped_errors",
            "split_mode", "validation_fraction", "split_seed", "validation_filename",
            "num_train_rows", "num_validation_rows", "provenance", "created_at", "validated_at",
        )  # fmt: skip
        read_only_fields = fields


class JSONObjectField(serializers.JSONField):
    """Accepts an object, or a JSON string of one (multipart forms send text)."""

    def to_internal_value(self, data):
        if isinstance(data, str):
            try:
                data = json.loads(data) if data.strip() else {}
            except ValueError:
                raise serializers.ValidationError("Must be a JSON object.") from None
        if not isinstance(data, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        return data


class UnsetBooleanField(serializers.BooleanField):
    """A form that leaves the field out leaves it unchanged (DRF otherwise reads
    a missing form field as an unticked box: false)."""

    default_empty_html = serializers.empty


SKIP_INVALID_ROWS_HELP = (
    "Leave rows with problems of their own out instead of failing the file; problems "
    "with the file as a whole (unreadable, no format, over a limit) still fail it."
)


class DatasetCreateSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="JSONL, JSON, CSV, TSV or Parquet.")
    name = serializers.CharField(required=False, allow_blank=True, max_length=200)
    format = serializers.ChoiceField(
        choices=engine.FORMATS, required=False, help_text="Leave out to detect it."
    )
    column_mapping = JSONObjectField(
        required=False, help_text='Canonical field → your column, e.g. {"prompt": "question"}.'
    )
    validation_file = serializers.FileField(required=False)
    validation_fraction = serializers.FloatField(required=False, **FRACTION_RANGE)
    split_seed = serializers.IntegerField(required=False)
    skip_invalid_rows = serializers.BooleanField(
        required=False, default=False, help_text=SKIP_INVALID_ROWS_HELP
    )


class DatasetUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, max_length=200)
    format = serializers.ChoiceField(
        choices=["", *engine.FORMATS], required=False, help_text="Empty string: detect."
    )
    column_mapping = JSONObjectField(required=False)
    split_mode = serializers.ChoiceField(choices=SplitMode.values, required=False)
    validation_fraction = serializers.FloatField(required=False, **FRACTION_RANGE)
    split_seed = serializers.IntegerField(required=False)
    skip_invalid_rows = UnsetBooleanField(required=False, help_text=SKIP_INVALID_ROWS_HELP)
