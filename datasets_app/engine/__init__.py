"""The dataset engine: plain Python that validates uploads, normalises them to
canonical records, and splits and pages the result. No Django, no Celery:
callers pass paths and a progress callback.

    validate()   upload -> canonical JSONL + .idx, and a ValidationReport
    split()      canonical JSONL -> train and validation files
    read_page()  a page of canonical records
    load_token_counter()  a model's tokenizer, counting canonical records' tokens
"""

from datasets_app.engine.canonical import INDEX_STRIDE, index_path
from datasets_app.engine.detect import detect_file_type, detect_format
from datasets_app.engine.errors import (
    UNPARSEABLE,
    DatasetError,
    DatasetWarning,
    RowError,
    make_error,
    problem_of,
    where_of,
)
from datasets_app.engine.formats import (
    ACCEPT,
    DATASET_FORMATS,
    FILE_TYPES,
    FORMAT_BY_NAME,
    FORMAT_FIELDS,
    FORMAT_LABELS,
    FORMATS,
    MAIN_EXTENSIONS,
    TASK_OF_FORMAT,
    DatasetFormat,
    normalise_record,
)
from datasets_app.engine.limits import DatasetLimits
from datasets_app.engine.preview import read_page
from datasets_app.engine.split import (
    DEFAULT_SPLIT_SEED,
    DEFAULT_VALIDATION_FRACTION,
    MAX_VALIDATION_FRACTION,
    MIN_VALIDATION_FRACTION,
    split,
    validation_size,
)
from datasets_app.engine.tokens import TokenizerUnavailable, TokenRule, load_token_counter
from datasets_app.engine.validate import ValidationReport, validate

__all__ = [
    "ACCEPT",
    "DATASET_FORMATS",
    "DEFAULT_SPLIT_SEED",
    "DEFAULT_VALIDATION_FRACTION",
    "FILE_TYPES",
    "FORMATS",
    "FORMAT_BY_NAME",
    "FORMAT_FIELDS",
    "FORMAT_LABELS",
    "INDEX_STRIDE",
    "MAIN_EXTENSIONS",
    "MAX_VALIDATION_FRACTION",
    "MIN_VALIDATION_FRACTION",
    "TASK_OF_FORMAT",
    "UNPARSEABLE",
    "DatasetError",
    "DatasetFormat",
    "DatasetLimits",
    "DatasetWarning",
    "RowError",
    "TokenRule",
    "TokenizerUnavailable",
    "ValidationReport",
    "detect_file_type",
    "detect_format",
    "index_path",
    "load_token_counter",
    "make_error",
    "normalise_record",
    "problem_of",
    "read_page",
    "split",
    "validate",
    "validation_size",
    "where_of",
]
