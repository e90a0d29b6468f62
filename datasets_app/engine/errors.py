"""What a validation finds, as data: row errors, warnings, and the two tables
that turn an error's or a warning's code into its sentence.

An error is (line, field, code) plus the few values its sentence needs. The
sentence is made here, once, so the page, the API and the logs say the same
thing: "line 12, `messages[1].role`: must be one of system, user, assistant
(got 'bot')". A warning is (code, count, lines) and its sentence, made the
same way from WARNINGS.
"""

import re
from dataclasses import asdict, dataclass, field

# A value a sentence quotes (a role, a column name) is cut to this many
# characters: enough to recognise it, and a 1 MB cell stays out of the report.
QUOTED_CHARACTERS = 60
# Any one value a sentence is made with, lists of names included: a hundred
# reported errors stay a few hundred kilobytes whatever the file holds.
MAX_PARAM_CHARACTERS = 2_000
# A list of names (columns, keys) a sentence gives names this many, then "and N more".
LISTED_NAMES = 20

# code -> sentence. "{field}" in a sentence means the sentence names the field
# itself, so the "line 3, `field`:" prefix leaves it out.
MESSAGES = {
    # --- the file as a whole -------------------------------------------------
    "unknown_extension": (
        "cannot tell the file type from the name {filename!r}; accepted extensions: {accepted}"
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
    "nothing_left": (
        "every one of the {rows:,} rows has a problem, so skipping the broken rows "
        "leaves nothing to train on"
    ),
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
    # Preference pairs and answer feedback (engine/preference.py).
    "empty_prompt": "must hold at least one user message, got an empty list",
    "prompt_not_user_last": "the prompt must end with a user message, which the answers reply "
    "to (got {got})",
    "missing_side": "missing `{field}`: a preference pair needs both of its answers",
    "empty_answer": "must not be empty: it is an answer the model learns to prefer or avoid",
    "same_answers": "is the same answer as `{other}`: a pair teaches a preference only when "
    "its answers differ",
    "bad_answer_turns": "must be the answer: text, or {shape} (got {got})",
    "bad_feedback_label": "must say whether the answer is good: true/false, 1/0, yes/no, "
    "good/bad or 👍/👎 (got {got})",
    # --- asking to skip a checked dataset's broken rows (shown alone: whole sentences) ---
    "skip_not_invalid": "Only a dataset whose check found broken rows can skip them; "
    "this one is {status}.",
    "skip_file_problem": (
        "The problems found are with the file as a whole, not with single rows, so skipping "
        "rows cannot help. Fix the file, or change how it is read (format, column names)."
    ),
    "skip_every_row": (
        "Every one of the {rows:,} rows has a problem, so skipping the broken rows would "
        "leave nothing to train on. Fix the file, or change how it is read (format, column names)."
    ),
}

# Errors that mean the file could not be parsed at all (its syntax, its
# encoding): no reading of its columns can help, so a page offers no column
# mapping for them.
UNPARSEABLE = frozenset(
    {
        "not_utf8",
        "binary_file",
        "json_document_in_jsonl",
        "not_an_array",
        "bad_array",
        "trailing_content",
        "element_too_long",
        "bad_parquet",
        "nested_too_deep",
    }
)

# code -> its sentence, or (the sentence for one, the sentence for several).
# The warning's count chooses, unless make_warning is told `several`. Every
# warning sentence ends with a full stop; {where} is "line", "element" or "row".
_LONG_ROWS_COST = (
    "long rows take more memory in training and may be cut to the model's context length."
)
_COMMONEST_LABEL = "the commonest, {commonest!r}, has {commonest_rows:,} ({commonest_share:.1%})."
WARNINGS = {
    "duplicate_rows": (
        "1 row repeats an earlier row exactly ({where} {line:,}, a copy of {where} {original:,}).",
        "{count:,} rows repeat an earlier row exactly "
        "(the first, {where} {line:,}, is a copy of {where} {original:,}).",
    ),
    "empty_field": (
        "1 row has an empty field ({where} {line:,}, `{field}`).",
        "{count:,} rows have an empty field (the first: {where} {line:,}, `{field}`).",
    ),
    "long_rows": (
        "1 row is over {limit:,} characters ({where} {line:,}, {size:,} characters); "
        + _LONG_ROWS_COST,
        "{count:,} rows are over {limit:,} characters (the longest, {where} {line:,}, "
        "has {size:,}); " + _LONG_ROWS_COST,
    ),
    "label_imbalance": (
        "The labels are imbalanced: the rarest, {rarest!r}, has 1 row ({share:.1%}); "
        + _COMMONEST_LABEL,
        "The labels are imbalanced: the rarest, {rarest!r}, has {count:,} rows ({share:.1%}); "
        + _COMMONEST_LABEL,
    ),
    "few_rows": (
        "Only 1 row: fine-tuning needs at least {least}, and a few hundred is better.",
        "Only {count:,} rows: fine-tuning needs at least {least}, and a few hundred is better.",
    ),
    # OpenAI's data-prep checks count these as a warning, and its fine-tuning takes them.
    "no_user_message": (
        "1 row has no user message, only a system message and a reply ({where} {line:,}); "
        "the model learns to write the reply from the system message alone.",
        "{count:,} rows have no user message, only a system message and a reply "
        "(the first: {where} {line:,}); the model learns to write the reply from the "
        "system message alone.",
    ),
    # The length a job on the default model cuts rows at ({model}, {limit}):
    # what the job wizard's presets choose for this dataset.
    "rows_cut": (
        "1 row is longer than {limit:,} tokens and will be cut ({where} {line:,}, "
        "{size:,} tokens): a job on {model} keeps its first {limit:,} tokens by default.",
        "{count:,} rows are longer than {limit:,} tokens and will be cut (the longest, "
        "{where} {line:,}, has {size:,} tokens): a job on {model} keeps the first "
        "{limit:,} tokens of a row by default.",
    ),
    # DPO's known bias: it learns "longer is better" when the data says so.
    "chosen_longer": "In {share:.1%} of the pairs ({count:,} of {rows:,}) the chosen answer is "
    "the longer one: DPO may learn to prefer long answers rather than good ones.",
    "chosen_shorter": "In only {share:.1%} of the pairs ({count:,} of {rows:,}) is the chosen "
    "answer the longer one: DPO may learn to prefer short answers rather than good ones.",
    "feedback_imbalance": "The feedback is imbalanced: {count:,} of {rows:,} answers "
    "({share:.1%}) are marked {rarest}; KTO learns best from about as many good answers as bad "
    "(TRL suggests between 1:1 and 4:3).",
    # {columns}: "`label` in 1 of 6 rows", a list of them for several columns.
    "unused_columns": (
        "{columns} is not used by the {format} format.",
        "{columns} are not used by the {format} format.",
    ),
}

# code -> a sentence the report says about itself (not about the data).
NOTES = {
    "lengths_in_characters": (
        "Lengths are in characters: the tokenizer of {model} could not be loaded ({reason}), "
        "so rows were not measured in tokens."
    ),
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


def make_note(code: str, **params) -> str:
    """The sentence NOTES holds for `code`."""
    params = {
        name: clip(value, MAX_PARAM_CHARACTERS) if isinstance(value, str) else value
        for name, value in params.items()
    }
    return NOTES[code].format(**params)


# The place make_error puts before a sentence ("line 12, `messages[1].role`: "),
# after the "Validation file: " a worker adds for the second file.
_PLACE = re.compile(
    r"(?P<file>Validation file: )?(?:(?P<where>line|element|row) (?P<line>[\d,]+))?"
    r"(?:(?:, )?`(?P<field>[^`]*)`)?: "
)


def where_of(error: dict) -> str:
    """What an error's number counts: "line", "element" (of a JSON array) or "row"."""
    match = _PLACE.match(error.get("message", ""))
    return (match["where"] if match is not None else None) or "line"


def problem_of(error: dict) -> str:
    """An error's sentence without the place make_error put before it (the page
    shows the line and the field apart), or the whole message when it has none."""
    message = error.get("message", "")
    match = _PLACE.match(message)
    if match is None or not (match["where"] or match["field"]):
        return message
    line, field = error.get("line"), error.get("field")
    same_line = match["line"] is None or (line is not None and match["line"] == f"{line:,}")
    same_field = match["field"] is None or match["field"] == field
    if not (same_line and same_field):
        return message
    rest = message[match.end() :]
    return f"Validation file: {rest}" if match["file"] else rest


def make_warning(
    code: str, *, count: int, lines=(), several: bool | None = None, **params
) -> DatasetWarning:
    """The DatasetWarning for `code`: `count` rows, the first of them at `lines`.

    `several` picks the plural sentence when the number it agrees with is not
    `count` (the columns of "unused_columns"); by default `count` decides.
    """
    template = WARNINGS[code]
    if isinstance(template, tuple):
        template = template[(count != 1) if several is None else several]
    # Values come from the file: a sentence quotes a bounded part of each.
    params = {
        name: clip(value, MAX_PARAM_CHARACTERS) if isinstance(value, str) else value
        for name, value in params.items()
    }
    return DatasetWarning(code, template.format(count=count, **params), count, list(lines))


def shown(value) -> str:
    """A value as a sentence quotes it: text in quotes (its start, if long), anything
    else by its kind."""
    return repr(clip(value)) if isinstance(value, str) else describe(value)


def clip(text: str, limit: int = QUOTED_CHARACTERS) -> str:
    """`text` cut to `limit` characters, the cut marked with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def names(items) -> str:
    """Names as a sentence lists them: "a, b, c", past LISTED_NAMES "… and 3 more", or "none"."""
    items = list(items)
    if not items:
        return "none"
    shown_names = ", ".join(items[:LISTED_NAMES])
    return shown_names + (
        f" and {len(items) - LISTED_NAMES} more" if len(items) > LISTED_NAMES else ""
    )


def listed(parts: list[str]) -> str:
    """ "a", "a and b", "a, b and c"; past LISTED_NAMES, "a, b, … and 3 more"."""
    if len(parts) > LISTED_NAMES:
        return ", ".join(parts[:LISTED_NAMES]) + f" and {len(parts) - LISTED_NAMES} more"
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + " and " + parts[-1]


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
