"""What a validation finds, as data: row errors, warnings, and the one table
that turns an error code into its sentence.

An error is (line, field, code) plus the few values its sentence needs. The
sentence is made here, once, so the page, the API and the logs say the same
thing: "line 12, `messages[1].role`: must be one of system, user, assistant
(got 'bot')".
"""

from dataclasses import asdict, dataclass, field

# A value a sentence quotes (a role, a column name) is cut to this many
# characters: enough to recognise it, and a 1 MB cell stays out of the report.
QUOTED_CHARACTERS = 60
# Any one value a sentence is made with, lists of names included: a hundred
# reported errors stay a few hundred kilobytes whatever the file holds.
MAX_PARAM_CHARACTERS = 2_000

# code -> sentence. "{field}" in a sentence means the sentence names the field
# itself, so the "line 3, `field`:" prefix leaves it out.
MESSAGES = {
    # --- the file as a whole -------------------------------------------------
    "unknown_extension": (
        "cannot tell the file type from the name {filename!r}; "
        "accepted extensions: .jsonl, .ndjson, .json, .csv, .tsv, .tab, .parquet, .pq"
    ),
    "unknown_file_type": "unknown file type {file_type!r}; accepted: {accepted}",
    "unknown_format_name": "unknown format {format!r}; accepted: {accepted}",
    "bad_mapping_field": (
        "the column mapping names {name!r}, which the {format} format does not read; "
        "it reads: {accepted}"
    ),
    "bad_mapping_column": "the column mapping must map field names to column names (got {got})",
    "missing_column": (
        "the {format} format reads the column `{column}`, but the file has no such column "
        "(columns: {columns})"
    ),
    "mapped_column_missing": (
        "the column mapping reads {name!r} from the column `{column}`, "
        "but the file has no such column (columns: {columns})"
    ),
    "empty_file": "the file is empty",
    "no_records": "the file holds no records, only blank lines",
    "empty_array": "the file holds an empty array: there are no records",
    "header_only": "the file has a header but no rows",
    "no_parquet_rows": "the file has columns ({columns}) but no rows",
    "not_utf8": (
        "not UTF-8 text: byte 0x{byte:02x} on line {file_line:,}, at byte offset {offset:,} "
        "of the file{hint}"
    ),
    "binary_file": (
        "the file looks binary, not text: a NUL byte on line {file_line:,}, "
        "at byte offset {offset:,} of the file"
    ),
    "json_document_in_jsonl": (
        "not valid JSON Lines: the file looks like one JSON document spread over several "
        "lines; a .jsonl file holds one record per line (or name the file .json)"
    ),
    "not_an_array": (
        "a .json file must hold an array of records ([{{...}}, {{...}}]), "
        "but this one holds {got}; for one record per line, use .jsonl"
    ),
    "bad_array": "not valid JSON ({reason} at line {file_line:,}, column {column:,} of the file)",
    "trailing_content": (
        "unexpected content after the array's closing ] "
        "(at line {file_line:,}, column {column:,} of the file)"
    ),
    "element_too_long": (
        "the record is over the {limit:,}-byte limit (it runs past line {file_line:,} "
        "of the file without ending)"
    ),
    "duplicate_header": "the header names the column `{name}` twice",
    "bad_parquet": "not a readable Parquet file ({reason})",
    "nested_too_deep": (
        "the record nests lists or objects more deeply than JSON's reader follows "
        "(a record is a few levels deep)"
    ),
    # --- the studio's limits on one dataset (an operator sets them) -------------
    "too_many_rows": (
        "the file holds more than {limit:,} records, the most one dataset may hold here "
        "(DATASET_MAX_ROWS)"
    ),
    "parquet_too_many_rows": (
        "the file holds {rows:,} rows, over the {limit:,}-row limit on one dataset "
        "(DATASET_MAX_ROWS)"
    ),
    "records_too_large": (
        "the records come to more than {limit:,} bytes, the most one dataset may hold here "
        "(DATASET_MAX_RECORDS_BYTES)"
    ),
    "records_expand": (
        "the records come to more than {limit:,} bytes, {ratio:,} times the file's "
        "{size:,} bytes: a file may expand at most {ratio:,}-fold (DATASET_MAX_EXPANSION)"
    ),
    "parquet_too_large": (
        "the columns read hold {uncompressed:,} bytes uncompressed, over the {limit:,}-byte "
        "limit on one dataset (DATASET_MAX_RECORDS_BYTES)"
    ),
    "parquet_expands": (
        "the columns read hold {uncompressed:,} bytes uncompressed, more than {ratio:,} times "
        "the file's {size:,} bytes: a file may expand at most {ratio:,}-fold "
        "(DATASET_MAX_EXPANSION)"
    ),
    "parquet_group_too_large": (
        "row group {group:,} holds {uncompressed:,} bytes uncompressed in {rows:,} rows, so a "
        "row in it is over the {limit:,}-byte limit on a row (DATASET_MAX_ROW_BYTES)"
    ),
    "unknown_format": (
        "the records match none of the accepted shapes ({shapes}); keys seen: {keys}. "
        "If your columns hold one of these under other names, map them with a column mapping"
    ),
    "one_label": "only one label ({label}) in {rows}; a classifier needs at least two",
    "too_many_labels": (
        "more than {limit:,} different labels in `{column}`; a classification label "
        "names a class, so this column looks like free text"
    ),
    # --- one row ---------------------------------------------------------------
    "invalid_json": "not valid JSON ({reason} at column {column:,})",
    "not_an_object": "must be a JSON object ({{...}}), got {got}",
    "line_too_long": "the line is {size:,} bytes, over the {limit:,}-byte limit",
    "row_too_long": "the row is {size:,} bytes, over the {limit:,}-byte limit",
    "row_values_too_long": (
        "the row's values come to {size:,} bytes, over the {limit:,}-byte limit on a row"
    ),
    "csv_row_runs_on": (
        "the row runs on for more than {limit:,} bytes; the quoted field that starts "
        "at line {quote_line:,}, column {quote_column:,} is probably missing its closing quote"
    ),
    "ragged_row": "{count} columns, the header has {expected}",
    "unclosed_quote": (
        "the quoted field that starts at line {quote_line:,}, column {quote_column:,} "
        "is never closed (the file ends inside it)"
    ),
    "bad_csv": "malformed CSV ({reason})",
    "bad_csv_multiline": (
        "malformed CSV ({reason} at line {error_line:,}); the quoted field that starts at "
        "line {quote_line:,}, column {quote_column:,} may be missing its closing quote"
    ),
    "missing_field": "missing `{field}`",
    "wrong_type": "must be {expected}, got {got}",
    "invalid_json_cell": "must hold JSON text ({reason} at column {column:,})",
    "bad_text": "holds a lone surrogate escape (such as \\ud800), which is not text",
    "no_messages": "must hold at least a user message and an assistant reply, got an empty list",
    "bad_role": "must be one of {allowed} (got {got})",
    "system_not_first": "a system message may only come first",
    "first_not_user": (
        "the conversation must start with {a_user} message "
        "(after an optional system message), got {got}"
    ),
    "role_order": (
        "expected {expected} after {previous} ({user} and {assistant} messages alternate), "
        "got {got}"
    ),
    "last_not_assistant": "the conversation must end with {an_assistant} message, got {got}",
    "empty_reply": "must not be empty: it is what the model learns to write",
    "empty_text": "must not be empty",
    "empty_label": "must not be empty",
    "bad_label": "must be text or a number, got {got}",
}


@dataclass
class RowError:
    """One problem, at one place. `line` is None for a problem with the whole file."""

    line: int | None
    field: str | None
    code: str
    message: str

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class DatasetWarning:
    """Something that does not stop training but is worth a look."""

    code: str
    message: str
    count: int
    lines: list[int] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


class DatasetError(Exception):
    """A problem that stops reading the file; carries the RowError to report.

    validate() catches it: callers get a report, never this exception.
    """

    def __init__(self, error: RowError):
        super().__init__(error.message)
        self.error = error


def make_error(
    code: str, *, line: int | None = None, where: str = "line", field: str | None = None, **params
) -> RowError:
    """The RowError for `code` at `line` (a `where` number: line, element, row)."""
    template = MESSAGES[code]
    # Values come from the file: a sentence quotes a bounded part of each.
    params = {
        name: clip(value, MAX_PARAM_CHARACTERS) if isinstance(value, str) else value
        for name, value in params.items()
    }
    text = template.format(field=field, **params)
    place = f"{where} {line:,}" if line is not None else ""
    if field is not None and "{field}" not in template:
        place = f"{place}, `{field}`" if place else f"`{field}`"
    return RowError(
        line=line, field=field, code=code, message=f"{place}: {text}" if place else text
    )


def shown(value) -> str:
    """A value as a sentence quotes it: text in quotes (its start, if long), anything
    else by its kind."""
    return repr(clip(value)) if isinstance(value, str) else describe(value)


def clip(text: str, limit: int = QUOTED_CHARACTERS) -> str:
    """`text` cut to `limit` characters, the cut marked with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


# Checked in order: bool before int, as True is an int to Python.
_KINDS = (
    (type(None), "null"),
    (bool, "true/false"),
    (int | float, "a number"),
    (str, "text"),
    (list | tuple, "a list"),
    (dict, "an object"),
    (bytes | bytearray, "binary data"),
)


def describe(value) -> str:
    """A value's kind in the user's words: "a number", "a list", "null"."""
    for kind, words in _KINDS:
        if isinstance(value, kind):
            return words
    return f"a {type(value).__name__}"
