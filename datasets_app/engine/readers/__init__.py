"""Streaming readers, one per file type.

A reader yields `(number, value)` pairs in file order: `number` is where the
record is (a JSONL line, a JSON array element, the physical line a CSV row
starts on, a Parquet row; all 1-based) and `value` is the parsed record or the
RowError that says why it could not be read. A problem that stops the whole
file (not UTF-8, a corrupt Parquet footer, broken JSON array syntax) raises
DatasetError. A text reader holds one record, or one buffer of about a
megabyte, at a time; the Parquet reader one batch of 1,024 rows and the
pages being decoded.

Each reader also says:
    where       the word for `number` in messages ("line", "element", "row")
    header      the columns, for file types that have a header (CSV, Parquet), else None
    text_cells  whether nested values (messages) may arrive as JSON text
    bytes_read  how far into the file it is, for progress

One module per file type (jsonl, json_array, delimited, parquet), and what
they share in common.py. open_reader() picks the reader.
"""

from pathlib import Path

from datasets_app.engine.limits import DatasetLimits
from datasets_app.engine.readers.delimited import DelimitedReader
from datasets_app.engine.readers.json_array import JsonArrayReader
from datasets_app.engine.readers.jsonl import JsonLinesReader
from datasets_app.engine.readers.parquet import ParquetReader

__all__ = [
    "FILE_TYPES",
    "DelimitedReader",
    "JsonArrayReader",
    "JsonLinesReader",
    "ParquetReader",
    "open_reader",
]

# Every file type Tailor reads, and how its reader opens a file; a new file
# type is a reader module and one entry here (EXTENSIONS in formats.py maps
# file names to these words).
OPENERS = {
    "jsonl": lambda path, limits: JsonLinesReader(path, limits.max_row_bytes),
    "json": lambda path, limits: JsonArrayReader(path, limits.max_row_bytes),
    "csv": lambda path, limits: DelimitedReader(path, limits.max_row_bytes, ","),
    "tsv": lambda path, limits: DelimitedReader(path, limits.max_row_bytes, "\t"),
    "parquet": ParquetReader,
}
FILE_TYPES = tuple(OPENERS)


def open_reader(file_type: str, path: Path, limits: DatasetLimits):
    """The reader for `file_type`; DatasetError when the file cannot even be opened as one."""
    try:
        opener = OPENERS[file_type]
    except KeyError:
        raise ValueError(file_type) from None
    return opener(path, limits)
