"""The checks validate() makes before it reads rows: its arguments, and a
file's columns against the format and the column mapping. Each raises
DatasetError, with the error for the file as a whole, or returns None."""

from datasets_app.engine.detect import detect_file_type
from datasets_app.engine.errors import DatasetError, make_error, names
from datasets_app.engine.formats import EXTENSIONS, FILE_TYPES, FORMAT_BY_NAME, FORMATS


def check_arguments(file_type: str | None, filename: str, format: str | None, mapping) -> str:
    """The file type (`file_type`, or the one `filename` names) once the
    arguments are checked: a known file type and format, a mapping of field
    names to column names, naming only fields the format reads."""
    if file_type is None:
        file_type = detect_file_type(filename)
        if file_type is None:
            raise DatasetError(
                make_error("unknown_extension", filename=filename, accepted=", ".join(EXTENSIONS))
            )
    elif file_type not in FILE_TYPES:
        raise DatasetError(
            make_error("unknown_file_type", file_type=file_type, accepted=", ".join(FILE_TYPES))
        )
    if format is not None and format not in FORMATS:
        raise DatasetError(
            make_error("unknown_format_name", format=format, accepted=", ".join(FORMATS))
        )
    if not isinstance(mapping, dict) or not all(
        isinstance(name, str) and isinstance(column, str) and column
        for name, column in mapping.items()
    ):
        raise DatasetError(make_error("bad_mapping_column", got=repr(mapping)))
    if format is not None:
        check_mapping_fields(format, mapping)
    return file_type


def check_mapping_fields(format: str, mapping: dict[str, str]) -> None:
    """The mapping names only fields `format` reads."""
    fields = FORMAT_BY_NAME[format].fields
    for name in mapping:
        if name not in fields:
            raise DatasetError(
                make_error(
                    "bad_mapping_field", name=name, format=format, accepted=", ".join(fields)
                )
            )


def check_mapped_columns(mapping: dict[str, str], key_sets: list, columns: list[str]) -> None:
    """Each column the mapping names must be in the header, or in one of the first records."""
    if not key_sets:
        return
    for name, column in mapping.items():
        if not any(column in keys for keys in key_sets):
            raise DatasetError(
                make_error(
                    "mapped_column_missing", name=name, column=column, columns=names(columns)
                )
            )


def check_columns(format: str, source_columns: tuple[str, ...], header: list[str]) -> None:
    """A file with a header has a column for every field `format` needs."""
    present = set(header)
    record = FORMAT_BY_NAME[format]
    for name, column in zip(record.fields, source_columns, strict=True):
        if column not in present and name not in record.optional:
            raise DatasetError(
                make_error("missing_column", format=format, column=column, columns=names(header))
            )
