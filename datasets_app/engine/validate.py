"""validate(): one streaming pass from an uploaded file to canonical JSONL and a report."""

import contextlib
import time
from collections.abc import Callable, Iterator
from itertools import chain, islice
from pathlib import Path

import orjson

from datasets_app.engine.canonical import CanonicalWriter, index_path
from datasets_app.engine.checks import (
    check_arguments,
    check_columns,
    check_mapped_columns,
    check_mapping_fields,
)
from datasets_app.engine.detect import detect_format
from datasets_app.engine.errors import (
    DatasetError,
    DatasetWarning,
    RowError,
    describe,
    make_error,
    names,
)
from datasets_app.engine.formats import (
    FORMAT_BY_NAME,
    SHAPES,
    TASK_OF_FORMAT,
)
from datasets_app.engine.limits import DatasetLimits
from datasets_app.engine.readers import ParquetReader, open_reader
from datasets_app.engine.report import ValidationReport
from datasets_app.engine.stats import DatasetStats
from datasets_app.engine.tokens import TokenizerUnavailable, TokenRule
from datasets_app.engine.unused import UnusedColumns
from jobs.vocabulary import CLASSIFICATION

# Rows read before the format is decided: enough to outvote a stray row.
LOOKAHEAD_RECORDS = 20
PROGRESS_SECONDS = 0.1
# Checking the clock costs more than a row; look every this many rows.
PROGRESS_EVERY_ROWS = 1024


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
    skip_invalid_rows: bool = False,
    tokens: Callable[[str], TokenRule] | None = None,
) -> ValidationReport:
    """Check every row of `source` and write its canonical records to `out_path`.

    `filename` is the name the user uploaded (its extension gives the file
    type unless `file_type` is given). `format` None means: detect it from
    the first rows. `column_mapping` maps a format's fields to the file's
    columns ({"prompt": "question"}). `progress(rows_checked, bytes_read,
    total_bytes)` is called at most every PROGRESS_SECONDS and once at the end.
    `limits` caps rows, a row's bytes and the records' bytes (DatasetLimits'
    defaults when None); a file over one is invalid. `skip_invalid_rows`
    leaves rows with problems of their own out instead of failing the file
    (file errors still fail it, and so does a file whose every row is
    invalid); see ValidationReport. `tokens(task)` gives the rule that
    measures the valid rows in tokens once the task is known (the statistics'
    "tokens", and a warning about rows a job will cut), or raises
    TokenizerUnavailable (the statistics say lengths are in characters, and
    why); None measures characters only.

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
        skip=skip_invalid_rows,
        tokens=tokens,
    ).run()


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
        skip,
        tokens,
    ):
        self.source = source
        self.tokens = tokens
        self.filename = filename
        self.out_path = out_path
        self.file_type = file_type
        self.format = format
        self.mapping = column_mapping or {}
        self.progress = progress
        self.error_limit = error_limit
        self.limits = limits
        self.skip = skip
        self.total_bytes = 0
        self.columns: list[str] = []
        # The file's columns that the format's fields are read from.
        self.source_columns: tuple[str, ...] = ()
        self.rows_seen = 0
        self.num_rows = 0
        # Rows with a problem of their own; their problems are `errors`, up to the limit.
        self.invalid_rows = 0
        self.error_count = 0
        self.errors: list[RowError] = []
        # Problems with the file as a whole: always reported, whatever the limit.
        self.file_errors: list[RowError] = []
        # Columns (keys) of valid rows that the format does not read.
        self.unused: UnusedColumns | None = None
        self.warnings: list[DatasetWarning] = []
        self.stats: dict = {}
        self.writer: CanonicalWriter | None = None
        self._last_progress = 0.0

    def add(self, error: RowError) -> None:
        """A problem of one row (the caller counts the row in invalid_rows)."""
        self.error_count += 1
        if len(self.errors) < self.error_limit:
            self.errors.append(error)

    def add_file_error(self, error: RowError) -> None:
        self.error_count += 1
        self.file_errors.append(error)

    def run(self) -> ValidationReport:
        try:
            with contextlib.ExitStack() as stack:
                try:
                    self._validate(stack)
                except DatasetError as error:
                    self.add_file_error(error.error)
            if self.skip and self.invalid_rows and not self.num_rows and not self.file_errors:
                self.add_file_error(make_error("nothing_left", rows=self.invalid_rows))
            clean = not self.file_errors and self.num_rows > 0
            ok = clean and (self.skip or not self.invalid_rows)
        except BaseException:
            self._discard()
            raise
        if ok:
            self.writer.commit()
        else:
            self._discard()
        report = ValidationReport(
            ok=ok,
            file_type=self.file_type,
            format=self.format,
            task=TASK_OF_FORMAT.get(self.format),
            columns=self.columns,
            rows_seen=self.rows_seen,
            num_rows=self.num_rows,
            error_count=self.error_count,
            errors=self.errors + self.file_errors,
            warnings=self.warnings,
            stats=self.stats if ok else {},
            invalid_rows=self.invalid_rows,
            skippable=clean and not ok,
        )
        if ok and self.invalid_rows:
            report.skipped_rows, report.skipped = self.invalid_rows, report.errors
            report.error_count, report.errors = 0, []
        return report

    def _discard(self) -> None:
        if self.writer is not None:
            self.writer.discard()
        else:
            self.out_path.unlink(missing_ok=True)
            index_path(self.out_path).unlink(missing_ok=True)

    # --- steps ----------------------------------------------------------------

    def _validate(self, stack: contextlib.ExitStack) -> None:
        self.file_type = check_arguments(self.file_type, self.filename, self.format, self.mapping)
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

    def _decide_format(self, reader, items: Iterator) -> Iterator:
        """Settle the format (given, or from the header or first records); the rows to convert."""
        if reader.header is not None:
            self.columns = list(reader.header)
            key_sets = [self.columns]
            rows = items
        else:
            rows, key_sets = self._look_ahead(items)
        check_mapped_columns(self.mapping, key_sets, self.columns)
        if self.format is None:
            if not key_sets:
                return rows
            self.format = detect_format(key_sets, self.mapping)
            if self.format is None:
                raise DatasetError(
                    make_error("unknown_format", shapes=SHAPES, keys=names(self.columns))
                )
            check_mapping_fields(self.format, self.mapping)
        self.source_columns = tuple(
            self.mapping.get(name, name) for name in FORMAT_BY_NAME[self.format].fields
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
                self.invalid_rows += 1
                self.error_count += 1
        self.columns = list(keys)
        return chain(buffered, items), key_sets

    def _check_columns(self, reader) -> None:
        check_columns(self.format, self.source_columns, reader.header)
        if isinstance(reader, ParquetReader):
            reader.select(self.source_columns)

    def _nothing_to_read(self, reader) -> RowError:
        if self.file_type == "json" and reader.found_array:
            return make_error("empty_array")
        if self.file_type == "parquet":
            return make_error("no_parquet_rows", columns=names(reader.header))
        if reader.header is not None:
            return make_error("header_only")
        return make_error("no_records")

    def _count_unreadable(self, rows: Iterator, where: str) -> None:
        for number, value in rows:
            self.rows_seen += 1
            self.invalid_rows += 1
            self.add(_unreadable(value, number, where))

    def _tick(self, reader, rows_seen: int) -> None:
        now = time.monotonic()
        if now - self._last_progress >= PROGRESS_SECONDS:
            self._last_progress = now
            self.progress(rows_seen, reader.bytes_read(), self.total_bytes)

    def _convert(self, reader, rows: Iterator, stack: contextlib.ExitStack) -> None:
        """Convert every row, then gather the statistics and warnings."""
        task = FORMAT_BY_NAME[self.format].task
        rule = None
        if self.tokens is not None:
            try:
                rule = self.tokens(task)
            except TokenizerUnavailable as problem:
                rule = problem
        stats = DatasetStats(
            task=task,
            where=reader.where,
            label_column=self.source_columns[-1] if task == CLASSIFICATION else None,
            spill_parent=self.out_path.parent,
            tokens=rule,
        )
        stack.callback(stats.close)
        self.writer = CanonicalWriter(self.out_path)
        self.unused = UnusedColumns(self.source_columns)
        self._convert_rows(reader, rows, stats)
        self.stats, self.warnings, errors = stats.finish(self.num_rows)
        unused = self.unused.warning(reader.header, self.num_rows, self.format)
        if unused is not None:
            self.warnings.insert(0, unused)
        # Judged on the rows kept only: while invalid rows fail the file, one
        # label among the others may be chance.
        if self.skip or not self.invalid_rows:
            for error in errors:
                self.add_file_error(error)

    def _records_cap(self) -> tuple[int, DatasetError]:
        """The most bytes of records this file may give, and the error past it."""
        limit, code = self.limits.records_bytes_for(self.total_bytes)
        error = make_error(
            code, limit=limit, ratio=self.limits.max_expansion, size=self.total_bytes
        )
        return limit, DatasetError(error)

    # One long function on purpose: a helper called per row would cost more than the row.
    def _convert_rows(self, reader, rows: Iterator, stats: DatasetStats) -> None:  # noqa: PLR0912, PLR0915
        """The hot loop: normalise, encode, write and count each row."""
        where = reader.where
        format = FORMAT_BY_NAME[self.format]
        normalise = format.normaliser
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
        # Skipping, invalid rows are left out; else once a row fails the file
        # will not be kept: stop writing it.
        skip = self.skip
        writing = skip or not self.invalid_rows
        # A file without a header may hold keys the format does not read: a
        # valid row holds every required field, so only a longer row can. Such
        # rows are counted by shape (keys in order), most of them in one step.
        shapes = self.unused.shapes if reader.header is None else None
        unused_shapes = self.unused.unused_shapes
        note_shape = self.unused.note_shape
        want_lines = True
        required = format.required_fields
        # Counted in locals, the hot loop's cheapest place; saved on any way out.
        seen = self.rows_seen
        valid = 0
        invalid = 0
        try:
            for number, value in rows:
                seen += 1
                if progress is not None and not seen % PROGRESS_EVERY_ROWS:
                    self._tick(reader, seen)
                if type(value) is not dict:
                    add(_unreadable(value, number, where))
                    invalid += 1
                    writing = skip
                    continue
                record, size, problems, empty = normalise(value, columns, text_cells)
                if problems:
                    for field_name, code, params in problems:
                        add(make_error(code, line=number, where=where, field=field_name, **params))
                    invalid += 1
                    writing = skip
                    continue
                try:
                    data = dumps(record, option=newline)
                except unencodable:  # text with a lone surrogate, from a \ud800 escape
                    add(make_error("bad_text", line=number, where=where))
                    invalid += 1
                    writing = skip
                    continue
                if check_size and len(data) > limit:
                    size = len(data)
                    add(
                        make_error("row_too_long", line=number, where=where, size=size, limit=limit)
                    )
                    invalid += 1
                    writing = skip
                    continue
                records_bytes += len(data)
                if records_bytes > records_limit:
                    raise too_large
                if writing:
                    write(data)
                count(record, size, number, empty, data)
                if shapes is not None and len(value) > required:
                    shape = tuple(value)
                    rows_of_shape = shapes.get(shape)
                    if rows_of_shape is None or (want_lines and shape in unused_shapes):
                        want_lines = note_shape(shape, number)
                    else:
                        shapes[shape] = rows_of_shape + 1
                valid += 1
        finally:
            self.rows_seen = seen
            self.num_rows = valid
            self.invalid_rows += invalid


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
