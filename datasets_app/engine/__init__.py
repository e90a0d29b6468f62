"""The dataset engine: plain Python that validates uploads, normalises them to
canonical records, and splits and pages the result. No Django, no Celery:
callers pass paths and a progress callback.

    validate()   upload -> canonical JSONL + .idx, and a ValidationReport
    split()      canonical JSONL -> train and validation files
    read_page()  a page of canonical records
"""

from datasets_app.engine.canonical import INDEX_STRIDE, index_path
from datasets_app.engine.detect import detect_file_type, detect_format
from datasets_app.engine.errors import DatasetError, DatasetWarning, RowError
from datasets_app.engine.formats import (
    FILE_TYPES,
    FORMAT_FIELDS,
    FORMAT_LABELS,
    FORMATS,
    TASK_OF_FORMAT,
)
from datasets_app.engine.limits import DatasetLimits
from datasets_app.engine.normalise import normalise_record
from datasets_app.engine.preview import read_page
from datasets_app.engine.split import split, validation_size
from datasets_app.engine.validate import ValidationReport, validate

__all__ = [
    "FILE_TYPES",
    "FORMATS",
    "FORMAT_FIELDS",
    "FORMAT_LABELS",
    "INDEX_STRIDE",
    "TASK_OF_FORMAT",
    "DatasetError",
    "DatasetLimits",
    "DatasetWarning",
    "RowError",
    "ValidationReport",
    "detect_file_type",
    "detect_format",
    "index_path",
    "normalise_record",
    "read_page",
    "split",
    "validate",
    "validation_size",
]
