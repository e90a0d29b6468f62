"""The file types and record formats Tailor accepts: one DatasetFormat record per format.

Everything the engine and the studio know about a format (its name and label,
the task it trains, the fields it reads, how it is detected, its sentence in
"accepted shapes", its normaliser) is in its record in DATASET_FORMATS. The
tables other modules import (FORMATS, FORMAT_LABELS, TASK_OF_FORMAT,
FORMAT_FIELDS, SIGNATURES, SHAPES) are derived from those records.

Adding a format is one new record here (a normaliser in normalise.py, or in
preference.py for preference data, if no existing one fits) and its tests:
see docs/architecture.md, "Where to change what".
"""

from collections.abc import Callable
from dataclasses import dataclass

from datasets_app.engine import normalise, preference
from datasets_app.engine.normalise import ROLES, SHAREGPT_ROLES, Normalised
from datasets_app.engine.readers import FILE_TYPES
from jobs.vocabulary import CLASSIFICATION, FEEDBACK, GENERATION, PREFERENCE

__all__ = [
    "ACCEPT",
    "DATASET_FORMATS",
    "EXTENSIONS",
    "FILE_TYPES",
    "FORMATS",
    "FORMAT_BY_NAME",
    "FORMAT_FIELDS",
    "FORMAT_LABELS",
    "MAIN_EXTENSIONS",
    "ROLES",
    "SHAPES",
    "SHAREGPT_ROLES",
    "SIGNATURES",
    "TASK_OF_FORMAT",
    "DatasetFormat",
    "normalise_record",
]


EXTENSIONS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
}
# An upload input's `accept` attribute: every extension.
ACCEPT = ",".join(EXTENSIONS)
# The first extension of each file type, for short sentences (".jsonl, .json, …").
MAIN_EXTENSIONS = tuple(
    next(extension for extension, kind in EXTENSIONS.items() if kind == file_type)
    for file_type in FILE_TYPES
)


@dataclass(frozen=True)
class DatasetFormat:
    """One record format: what it reads, how it is recognised, what it becomes."""

    # The stored and accepted name (Dataset.format, ?format=, the API's `format`).
    name: str
    # What the upload form and the dataset page call it.
    label: str
    # The dataset task its records train (jobs.vocabulary's dataset words).
    task: str
    # The source fields it reads, in the order its normaliser takes them; a
    # column mapping renames these.
    fields: tuple[str, ...]
    # The fields whose presence identifies it (a subset of `fields`).
    signature: frozenset[str]
    # Detection tries formats by this rank, lowest first: a format whose
    # signature holds another's comes before it (text + label before text).
    detection_rank: int
    # Its part of the "accepted shapes" sentence: "prompt + completion".
    shape: str
    # row, source columns, text_cells -> Normalised (see normalise.py).
    normaliser: Callable[[dict, tuple, bool], Normalised]
    # Fields read only when present: a file may lack their column.
    optional: frozenset[str] = frozenset()

    @property
    def required_fields(self) -> int:
        """How many of its fields every valid row holds."""
        return sum(name not in self.optional for name in self.fields)


# In the order forms, messages and the API list them.
DATASET_FORMATS = (
    DatasetFormat(
        name="chat",
        label="Chat (messages)",
        task=GENERATION,
        fields=("messages",),
        signature=frozenset({"messages"}),
        detection_rank=1,
        shape="messages",
        normaliser=normalise.normalise_chat,
    ),
    DatasetFormat(
        name="prompt_completion",
        label="Prompt / completion",
        task=GENERATION,
        fields=("prompt", "completion"),
        signature=frozenset({"prompt", "completion"}),
        detection_rank=7,
        shape="prompt + completion",
        normaliser=normalise.normalise_prompt_completion,
    ),
    DatasetFormat(
        name="alpaca",
        label="Alpaca (instruction / input / output)",
        task=GENERATION,
        fields=("instruction", "input", "output"),
        signature=frozenset({"instruction", "output"}),
        detection_rank=3,
        shape="instruction + input + output",
        normaliser=normalise.normalise_alpaca,
        optional=frozenset({"input"}),
    ),
    DatasetFormat(
        name="sharegpt",
        label="ShareGPT (conversations)",
        task=GENERATION,
        fields=("conversations",),
        signature=frozenset({"conversations"}),
        detection_rank=2,
        shape="conversations",
        normaliser=normalise.normalise_sharegpt,
    ),
    DatasetFormat(
        name="text",
        label="Plain text",
        task=GENERATION,
        fields=("text",),
        signature=frozenset({"text"}),
        detection_rank=9,
        shape="text",
        normaliser=normalise.normalise_text,
    ),
    DatasetFormat(
        name="text_label",
        label="Text / label (classification)",
        task=CLASSIFICATION,
        fields=("text", "label"),
        signature=frozenset({"text", "label"}),
        detection_rank=8,
        shape="text + label",
        normaliser=normalise.normalise_text_label,
    ),
    DatasetFormat(
        name="preference",
        label="Preference pairs (prompt / chosen / rejected)",
        task=PREFERENCE,
        fields=("prompt", "chosen", "rejected"),
        signature=frozenset({"prompt", "chosen", "rejected"}),
        detection_rank=5,
        shape="prompt + chosen + rejected",
        normaliser=preference.normalise_preference,
    ),
    DatasetFormat(
        name="openai_preference",
        label="OpenAI preference (input / preferred_output / non_preferred_output)",
        task=PREFERENCE,
        fields=("input", "preferred_output", "non_preferred_output"),
        signature=frozenset({"input", "preferred_output", "non_preferred_output"}),
        detection_rank=4,
        shape="input + preferred_output + non_preferred_output",
        normaliser=preference.normalise_openai_preference,
    ),
    DatasetFormat(
        name="feedback",
        label="Answer feedback (prompt / completion / label)",
        task=FEEDBACK,
        fields=("prompt", "completion", "label"),
        signature=frozenset({"prompt", "completion", "label"}),
        # Before prompt_completion, whose signature it holds.
        detection_rank=6,
        shape="prompt + completion + label",
        normaliser=preference.normalise_feedback,
    ),
)

FORMAT_BY_NAME = {format.name: format for format in DATASET_FORMATS}

# Derived views, for the modules that need one attribute of every format.
FORMATS = tuple(FORMAT_BY_NAME)
FORMAT_LABELS = {format.name: format.label for format in DATASET_FORMATS}
TASK_OF_FORMAT = {format.name: format.task for format in DATASET_FORMATS}
FORMAT_FIELDS = {format.name: list(format.fields) for format in DATASET_FORMATS}
# (name, signature), in detection order.
SIGNATURES = tuple(
    (format.name, format.signature)
    for format in sorted(DATASET_FORMATS, key=lambda format: format.detection_rank)
)
SHAPES = "; ".join(format.shape for format in DATASET_FORMATS)


def normalise_record(format: str, row: dict, columns, *, text_cells: bool = False) -> Normalised:
    """The canonical record for one source row of `format` (see normalise.py)."""
    return FORMAT_BY_NAME[format].normaliser(row, columns, text_cells)
