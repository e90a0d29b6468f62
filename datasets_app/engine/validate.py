"""validate(): one streaming pass from an uploaded file to canonical JSONL and a report."""

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from itertools import chain, islice
from pathlib import Path

import orjson

from datasets_app.engine.canonical import CanonicalWriter, index_path
from datasets_app.engine.detect import detect_file_type, detect_format
from datasets_app.engine.errors import (
    DatasetError,
    DatasetWarning,
    RowError,
    describe,
    make_error,
)
from datasets_app.engine.formats import (
    FILE_TYPES,
    FORMAT_FIELDS,
    FORMATS,
    SHAPES,
    TASK_OF_FORMAT,
)
from datasets_app.engine.limits import DatasetLimits
from datasets_app.engine.normalise import NORMALISERS
from datasets_app.engine.readers import ParquetReader, open_reader
from datasets_app.engine.stats import DatasetStats

# Rows read before the format is decided: enough to outvote a stray row.
LOOKAHEAD_RECORDS = 20
PROGRESS_SECONDS = 0.1
# Checking the clock costs more than a row; look every this many rows.
PROGRESS_EVERY_ROWS = 1024
# Fields a format reads only when present.
OPTIONAL_FIELDS = {("alpaca", "input")}
_LISTED_NAMES = 20


@dataclass
class ValidationReport:
    ok: bool
    file_type: str | None
    format: str | None
    task: str | None
    columns: list[str]
    rows_seen: int
    num_rows: int
    error_count: int
    errors: list[RowError] = field(default_factory=list)
    warnings: list[DatasetWarning] = field(default_factory=list)
    stats: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def validate(
    source: Path,
    *,
    filename: str,
    out_path: Path,
    file_type: str | None = None,
    format: str | None = None,
    column_mapping: dict[str, str] | None = None,
    progress: Callable[[int, int, int], None] | None = None,
    error_limit: int = 100,
    limits: DatasetLimits | None = None,
) -> ValidationReport:
    """Check every row of `source` and write its canonical records to `out_path`.

    `filename` is the name the user uploaded (its extension gives the file
    type unless `file_type` is given). `format` None means: detect it from
    the first rows. `column_mapping` maps a format's fields to the file's
    columns ({"prompt": "question"}). `progress(rows_checked, bytes_read,
    total_bytes)` is called at most every PROGRESS_SECONDS and once at the end.
    `limits` caps rows, a row's bytes and the records' bytes (DatasetLimits'
    defaults when None); a file over one is invalid.

    Side effects: when the report is ok, `out_path` holds the canonical JSONL
    and `out_path.with_suffix(".idx")` its row index, both renamed into place
    at the end. When it is not ok, neither exists afterwards (an older file at
    either path is removed). Problems with the file are in the report; this
    raises only what the progress callback raises, or on an I/O failure.
    """
    return _Validation(
        source=Path(source),
        filename=filename,
        out_path=Path(out_path),
        file_type=file_type,
        format=format,
        column_mapping=column_mapping,
        progress=progress,
        error_limit=error_limit,
        limits=limits or DatasetLimits(),
    ).run()


def _names(names) -> str:
    names = list(names)
    if not names:
        return "none"
    listed = ", ".join(names[:_LISTED_NAMES])
    return listed + (
        f" and {len(names) - _LISTED_NAMES} more" if len(names) > _LISTED_NAMES else ""
    )


class _Validation:
    def __init__(
        self,
        *,
        source,
        filename,
        out_path,
        file_type,
        format,
        column_mapping,
        progress,
        error_limit,
        limits,
    ):
        self.source = source
        self.filename = filename
        self.out_path = out_path
        self.file_type = file_type
        self.format = format
        self.mapping = column_mapping or {}
        self.progress = progress
        self.error_limit = error_limit
        self.limits = limits
        self.total_bytes = 0
        self.columns: list[str] = []
        # The file's columns that the format's fields are read from.
        self.source_columns: tuple[str, ...] = ()
        self.rows_seen = 0
        self.num_rows = 0
        self.error_count = 0
        self.errors: list[RowError] = []
        self.warnings: list[DatasetWarning] = []
        self.stats: dict = {}
        self.writer: CanonicalWriter | None = None
        self._last_progress = 0.0

    def add(self, error: RowError) -> None:
        self.error_count += 1
        if len(self.errors) < self.error_limit:
            self.errors.append(error)

    def run(self) -> ValidationReport:
        try:
            with contextlib.ExitStack() as stack:
                try:
                    self._validate(stack)
                except DatasetError as error:
                    self.add(error.error)
            ok = self.error_count == 0 and self.num_rows > 0
        except BaseException:
            self._discard()
            raise
        if ok:
            self.writer.commit()
        else:
            self._discard()
        return ValidationReport(
            ok=ok,
            file_type=self.file_type,
            format=self.format,
            task=TASK_OF_FORMAT.get(self.format),
            columns=self.columns,
            rows_seen=self.rows_seen,
            num_rows=self.num_rows,
            error_count=self.error_count,
            errors=self.errors,
            warnings=self.warnings,
            stats=self.stats if ok else {},
        )

    def _discard(self) -> None:
        if self.writer is not None:
            self.writer.discard()
        else:
            self.out_path.unlink(missing_ok=True)
            index_path(self.out_path).unlink(missing_ok=True)

    # --- steps ----------------------------------------------------------------

    def _validate(self, stack: contextlib.ExitStack) -> None:
        self._check_arguments()
        self.total_bytes = self.source.stat().st_size
        if not self.total_bytes:
            raise DatasetError(make_error("empty_file"))
        reader = open_reader(self.file_type, self.source, self.limits)
        stack.callback(reader.close)
        items = iter(reader)
        limit = self.limits.max_rows
        # C-level slicing keeps the hot loop free of a per-row count.
        items = chain(islice(items, limit), _none_past(items, limit))
        rows = self._decide_format(reader, items)
        if self.format is not None:
            self._convert(reader, rows, stack)
        else:
            # Nothing but unreadable rows: no format to check them against.
            self._count_unreadable(rows, reader.where)
        if self.progress is not None:
            self.progress(self.rows_seen, self.total_bytes, self.total_bytes)
        if not self.rows_seen and not self.error_count:
            raise DatasetError(self._nothing_to_read(reader))

    def _check_arguments(self) -> None:
        if self.file_type is None:
            self.file_type = detect_file_type(self.filename)
            if self.file_type is None:
                raise DatasetError(make_error("unknown_extension", filename=self.filename))
        elif self.file_type not in FILE_TYPES:
            raise DatasetError(
                make_error(
                    "unknown_file_type", file_type=self.file_type, accepted=", ".join(FILE_TYPES)
                )
            )
        if self.format is not None and self.format not in FORMATS:
            raise DatasetError(
                make_error("unknown_format_name", format=self.format, accepted=", ".join(FORMATS))
            )
        if not isinstance(self.mapping, dict) or not all(
            isinstance(name, str) and isinstance(column, str) and column
            for name, column in self.mapping.items()
        ):
            raise DatasetError(make_error("bad_mapping_column", got=repr(self.mapping)))
        if self.format is not None:
            self._check_mapping_fields()

    def _check_mapping_fields(self) -> None:
        fields = FORMAT_FIELDS[self.format]
        for name in self.mapping:
            if name not in fields:
                raise DatasetError(
                    make_error(
                        "bad_mapping_field",
                        name=name,
                        format=self.format,
                        accepted=", ".join(fields),
                    )
                )

    def _decide_format(self, reader, items: Iterator) -> Iterator:
        """Settle the format (given, or from the header or first records); the rows to convert."""
        if reader.header is not None:
            self.columns = list(reader.header)
            key_sets = [self.columns]
            rows = items
        else:
            rows, key_sets = self._look_ahead(items)
        self._check_mapped_columns(key_sets)
        if self.format is None:
            if not key_sets:
                return rows
            self.format = detect_format(key_sets, self.mapping)
            if self.format is None:
                raise DatasetError(
                    make_error("unknown_format", shapes=SHAPES, keys=_names(self.columns))
                )
            self._check_mapping_fields()
        self.source_columns = tuple(
            self.mapping.get(name, name) for name in FORMAT_FIELDS[self.format]
        )
        if reader.header is not None:
            self._check_columns(reader)
        return rows

    def _look_ahead(self, items: Iterator) -> tuple[Iterator, list]:
        """Read up to LOOKAHEAD_RECORDS records (and the bad rows between them) for detection."""
        buffered = []
        key_sets = []
        keys: dict[str, None] = {}
        buffered_errors = 0
        for number, value in items:
            if type(value) is dict:
                buffered.append((number, value))
                key_sets.append(value.keys())
                keys.update(dict.fromkeys(value))
                if len(key_sets) >= LOOKAHEAD_RECORDS:
                    break
            elif buffered_errors < self.error_limit:
                buffered.append((number, value))
                buffered_errors += 1
            else:
                # Past the kept errors whatever comes first: only counted.
                self.rows_seen += 1
                self.error_count += 1
        self.columns = list(keys)
        return chain(buffered, items), key_sets

    def _check_mapped_columns(self, key_sets: list) -> None:
        """Each column the mapping names must be in the header, or in one of the first records."""
        if not key_sets:
            return
        for name, column in self.mapping.items():
            if not any(column in keys for keys in key_sets):
                raise DatasetError(
                    make_error(
                        "mapped_column_missing",
                        name=name,
                        column=column,
                        columns=_names(self.columns),
                    )
                )

    def _check_columns(self, reader) -> None:
        header = set(reader.header)
        for name, column in zip(FORMAT_FIELDS[self.format], self.source_columns, strict=True):
            if column not in header and (self.format, name) not in OPTIONAL_FIELDS:
                raise DatasetError(
                    make_error(
                        "missing_column",
                        format=self.format,
                        column=column,
                        columns=_names(reader.header),
                    )
                )
        if isinstance(reader, ParquetReader):
            reader.select(self.source_columns)

    def _nothing_to_read(self, reader) -> RowError:
        if self.file_type == "json" and reader.found_array:
            return make_error("empty_array")
        if self.file_type == "parquet":
            return make_error("no_parquet_rows", columns=_names(reader.header))
        if reader.header is not None:
            return make_error("header_only")
        return make_error("no_records")

    def _count_unreadable(self, rows: Iterator, where: str) -> None:
        for number, value in rows:
            self.rows_seen += 1
            self.add(_unreadable(value, number, where))

    def _tick(self, reader, rows_seen: int) -> None:
        now = time.monotonic()
        if now - self._last_progress >= PROGRESS_SECONDS:
            self._last_progress = now
            self.progress(rows_seen, reader.bytes_read(), self.total_bytes)

    def _convert(self, reader, rows: Iterator, stack: contextlib.ExitStack) -> None:
        """Convert every row, then gather the statistics and warnings."""
        task = TASK_OF_FORMAT[self.format]
        stats = DatasetStats(
            task=task,
            where=reader.where,
            label_column=self.source_columns[-1] if task == "classification" else None,
            spill_parent=self.out_path.parent,
        )
        stack.callback(stats.close)
        self.writer = CanonicalWriter(self.out_path)
        self._convert_rows(reader, rows, stats)
        self.stats, self.warnings, errors = stats.finish(self.num_rows)
        # Judged on a clean file only: with bad rows left out, one label may be chance.
        if not self.error_count:
            for error in errors:
                self.add(error)

    def _records_cap(self) -> tuple[int, DatasetError]:
        """The most bytes of records this file may give, and the error past it."""
        limit, code = self.limits.records_bytes_for(self.total_bytes)
        error = make_error(
            code, limit=limit, ratio=self.limits.max_expansion, size=self.total_bytes
        )
        return limit, DatasetError(error)

    # One long function on purpose: a helper called per row would cost more than the row.
    def _convert_rows(self, reader, rows: Iterator, stats: DatasetStats) -> None:  # noqa: PLR0915
        """The hot loop: normalise, encode, write and count each row."""
        where = reader.where
        normalise = NORMALISERS[self.format]
        columns = self.source_columns
        text_cells = reader.text_cells
        # The other readers hold each row to max_row_bytes as they read it;
        # the Parquet reader holds a row's values to it, not their JSON.
        check_size = isinstance(reader, ParquetReader)
        limit = self.limits.max_row_bytes
        records_limit, too_large = self._records_cap()
        records_bytes = 0
        dumps = orjson.dumps
        newline = orjson.OPT_APPEND_NEWLINE
        unencodable = orjson.JSONEncodeError
        write = self.writer.write
        count = stats.add
        add = self.add
        progress = self.progress
        # Once a row fails the file will not be kept: stop writing it.
        writing = not self.error_count
        # Counted in locals, the hot loop's cheapest place; saved on any way out.
        seen = self.rows_seen
        valid = 0
        try:
            for number, value in rows:
                seen += 1
                if progress is not None and not seen % PROGRESS_EVERY_ROWS:
                    self._tick(reader, seen)
                if type(value) is not dict:
                    add(_unreadable(value, number, where))
                    writing = False
                    continue
                record, size, problems, empty = normalise(value, columns, text_cells)
                if problems:
                    for field_name, code, params in problems:
                        add(make_error(code, line=number, where=where, field=field_name, **params))
                    writing = False
                    continue
                try:
                    data = dumps(record, option=newline)
                except unencodable:  # text with a lone surrogate, from a \ud800 escape
                    add(make_error("bad_text", line=number, where=where))
                    writing = False
                    continue
                if check_size and len(data) > limit:
                    size = len(data)
                    add(
                        make_error("row_too_long", line=number, where=where, size=size, limit=limit)
                    )
                    writing = False
                    continue
                records_bytes += len(data)
                if records_bytes > records_limit:
                    raise too_large
                if writing:
                    write(data)
                count(record, size, number, empty, data)
                valid += 1
        finally:
            self.rows_seen = seen
            self.num_rows = valid


def _none_past(items: Iterator, max_rows: int) -> Iterator:
    """Nothing; DatasetError if `items` (already read `max_rows` pairs) holds another."""
    if next(items, None) is not None:
        raise DatasetError(make_error("too_many_rows", limit=max_rows))
    yield from ()


def _unreadable(value, number: int, where: str) -> RowError:
    """The error for a row that is not a record: the reader's own, or "not an object"."""
    if type(value) is RowError:
        return value
    return make_error("not_an_object", line=number, where=where, got=describe(value))
