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
"""

import codecs
import csv
import json
import re
from pathlib import Path

import orjson

from datasets_app.engine.errors import DatasetError, describe, make_error
from datasets_app.engine.limits import DatasetLimits

_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_CHUNK_BYTES = 1 << 20
_READ_BUFFER_BYTES = 1 << 20
_PARQUET_BATCH_ROWS = 1024
# Page headers, statistics and levels a row group's columns hold besides values.
_PARQUET_GROUP_OVERHEAD_BYTES = 64 << 10
# Parquet rows become Python values this many bytes (of values) at a time.
_PARQUET_BUILD_BYTES = 16 << 20
_BLANK = object()


def _not_utf8(error: UnicodeDecodeError, *, file_line: int, offset: int, head: bytes):
    """The error for the first byte that is not UTF-8 (file-level: nothing after it is readable)."""
    hint = (
        " (it looks like UTF-16; save it as UTF-8)"
        if head.startswith(_UTF16_BOMS)
        else " (save the file as UTF-8)"
    )
    return DatasetError(
        make_error(
            "not_utf8",
            byte=error.object[error.start],
            file_line=file_line + error.object.count(b"\n", 0, error.start),
            offset=offset + error.start,
            hint=hint,
        )
    )


def _binary(*, file_line: int, offset: int):
    return DatasetError(make_error("binary_file", file_line=file_line, offset=offset))


def _line_size(file, raw: bytes) -> tuple[int, int]:
    """The size of a long line without its newline, reading past the rest of it in pieces.

    `raw` is what readline(limit) returned; also returns how many more bytes were read.
    """
    size = len(raw)
    more = 0
    while not raw.endswith(b"\n"):
        raw = file.readline(_CHUNK_BYTES)
        if not raw:
            break
        more += len(raw)
    size += more
    if raw.endswith(b"\r\n"):
        size -= 2
    elif raw.endswith(b"\n"):
        size -= 1
    return size, more


class _LineTooLong(Exception):
    def __init__(self, line: int, size: int):
        self.line = line
        self.size = size


class _RowRunsOn(Exception):
    pass


class _Lines:
    """A CSV file's physical lines, decoded and checked.

    A line over `limit` bytes is read past in small pieces, never held, and
    raised as _LineTooLong so the caller can report it and go on.
    """

    def __init__(self, file, limit: int):
        self.file = file
        self.limit = limit
        self.line = 0
        self.offset = 0
        self.head = file.peek(4)[:4]

    def next_raw(self) -> bytes:
        """The next line as bytes, without the BOM; b"" at the end."""
        raw = self.file.readline(self.limit + 2)
        if not raw:
            return raw
        self.line += 1
        start = self.offset
        self.offset += len(raw)
        if len(raw) > self.limit:
            self._check_length(raw)
        if self.line == 1 and raw.startswith(_BOM):
            raw = raw[3:]
            start += 3
        self.start = start
        return raw

    def _check_length(self, raw: bytes) -> None:
        size, more = _line_size(self.file, raw)
        self.offset += more
        if size > self.limit:
            raise _LineTooLong(self.line, size)

    def decode(self, raw: bytes) -> str:
        """The line as text; DatasetError when it is not UTF-8 or holds a NUL byte."""
        try:
            text = raw.decode()
        except UnicodeDecodeError as error:
            raise _not_utf8(error, file_line=self.line, offset=self.start, head=self.head) from None
        if "\x00" in text:
            raise _binary(file_line=self.line, offset=self.start + raw.index(b"\x00"))
        return text


class JsonLinesReader:
    """JSON Lines: one record per line; blank lines are skipped.

    orjson parses each line's bytes straight away (validating UTF-8 as it
    goes); only a line it refuses is looked at again with the standard library,
    whose messages ("Expecting ',' delimiter") and byte offsets are the ones
    the report gives.
    """

    where = "line"
    header = None
    text_cells = False

    def __init__(self, path: Path, max_line_bytes: int):
        self.file = open(path, "rb", buffering=_READ_BUFFER_BYTES)  # noqa: SIM115  (closed by close())
        self.limit = max_line_bytes
        self.head = self.file.peek(4)[:4]

    def bytes_read(self) -> int:
        return self.file.tell()

    def close(self) -> None:
        self.file.close()

    def __iter__(self):
        file = self.file
        readline = file.readline
        limit = self.limit
        cap = limit + 2
        loads = orjson.loads
        refused = orjson.JSONDecodeError
        line = 0
        offset = 0
        seen_a_record = False
        raw = readline(cap)
        if raw.startswith(_BOM):
            raw = raw[3:]
            offset = 3
        while raw:
            line += 1
            start = offset
            offset += len(raw)
            if len(raw) > limit:
                size, more = _line_size(file, raw)
                offset += more
                if size > limit:
                    yield line, make_error("line_too_long", line=line, size=size, limit=limit)
                    raw = readline(cap)
                    continue
            try:
                value = loads(raw)
            except refused:
                value = self._explain(raw, line, start, seen_a_record)
            if value is not _BLANK:
                seen_a_record = True
                yield line, value
            raw = readline(cap)

    def _explain(self, raw: bytes, line: int, start: int, seen_a_record: bool):
        """The value of a line orjson refused, _BLANK, or the RowError that says why not."""
        if not raw or raw.isspace():
            return _BLANK
        try:
            text = raw.decode()
        except UnicodeDecodeError as error:
            raise _not_utf8(error, file_line=line, offset=start, head=self.head) from None
        if "\x00" in text:
            raise _binary(file_line=line, offset=start + raw.index(b"\x00"))
        try:
            # What orjson refuses and this accepts (NaN, lone surrogates) is
            # caught later, as a wrong type or as text that is not UTF-8.
            return json.loads(text)
        except RecursionError:  # orjson stops at 1,024 levels; json at the stack's depth
            return make_error("nested_too_deep", line=line)
        except json.JSONDecodeError as error:
            if not seen_a_record and text.strip() in ("[", "{"):
                # A bracket alone on the first line: a pretty-printed JSON document.
                raise DatasetError(make_error("json_document_in_jsonl", line=line)) from None
            return make_error("invalid_json", line=line, reason=error.msg, column=error.colno)


class JsonArrayReader:
    """A .json file holding one array of records, parsed element by element.

    The text is decoded a megabyte at a time into a buffer, and each element
    is parsed with JSONDecoder.raw_decode where it lies; the buffer keeps only
    the unparsed tail. Broken array syntax stops the file: after it, there is
    no telling where the next element starts.
    """

    where = "element"
    header = None
    text_cells = False

    def __init__(self, path: Path, max_line_bytes: int):
        self.file = open(path, "rb", buffering=_READ_BUFFER_BYTES)  # noqa: SIM115  (closed by close())
        self.limit = max_line_bytes
        self.head = self.file.peek(4)[:4]
        self.decoder = codecs.getincrementaldecoder("utf-8")()
        self.buffer = ""
        self.eof = False
        self.fed = 0
        if self.head.startswith(_BOM):
            self.fed = len(self.file.read(len(_BOM)))
        # Where buffer[0] lies in the file, for error positions.
        self.base_line = 1
        self.base_column = 0
        self.found_array = False

    def bytes_read(self) -> int:
        return self.file.tell()

    def close(self) -> None:
        self.file.close()

    def _fill(self) -> None:
        chunk = self.file.read(_CHUNK_BYTES)
        # The line the chunk starts on, should it hold a bad byte.
        file_line = self.base_line + self.buffer.count("\n")
        pending = self.decoder.getstate()[0]
        try:
            self.buffer += self.decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError as error:
            raise _not_utf8(
                error, file_line=file_line, offset=self.fed - len(pending), head=self.head
            ) from None
        if b"\x00" in chunk:
            at = chunk.index(b"\x00")
            raise _binary(file_line=file_line + chunk.count(b"\n", 0, at), offset=self.fed + at)
        self.fed += len(chunk)
        self.eof = not chunk

    def _trim(self, position: int) -> int:
        """Drop the parsed head of the buffer; returns the new position (0)."""
        dropped = self.buffer[:position]
        newlines = dropped.count("\n")
        if newlines:
            self.base_line += newlines
            self.base_column = position - dropped.rfind("\n") - 1
        else:
            self.base_column += position
        self.buffer = self.buffer[position:]
        return 0

    def _place(self, position: int) -> dict:
        """The file line and column of a buffer position, for messages."""
        newlines = self.buffer.count("\n", 0, position)
        if newlines:
            column = position - self.buffer.rfind("\n", 0, position)
        else:
            column = self.base_column + position + 1
        return {"file_line": self.base_line + newlines, "column": column}

    def _skip_space(self, position: int) -> int:
        """The position of the next non-space character, reading more as needed (-1 at the end)."""
        while True:
            position = _WHITESPACE.match(self.buffer, position).end()
            if position < len(self.buffer):
                return position
            if self.eof:
                return -1
            position = self._trim(position)
            self._fill()

    def _syntax_error(self, index: int, reason: str, position: int):
        return DatasetError(
            make_error(
                "bad_array", line=index, where=self.where, reason=reason, **self._place(position)
            )
        )

    def __iter__(self):
        self._fill()
        position = self._skip_space(0)
        if position < 0:
            return
        if self.buffer[position] != "[":
            # Parse it whole, for its kind or for json's own reason it is not JSON.
            value, _ = self._element(json.JSONDecoder().raw_decode, 1, position)
            raise DatasetError(make_error("not_an_array", got=describe(value)))
        self.found_array = True
        position = self._skip_space(position + 1)
        if position >= 0 and self.buffer[position] == "]":
            self._after_array(position + 1)
            return
        index = 0
        raw_decode = json.JSONDecoder().raw_decode
        while True:
            index += 1
            if position < 0:
                raise self._syntax_error(index, "Expecting value", len(self.buffer))
            if position > _CHUNK_BYTES:
                position = self._trim(position)
            value, end = self._element(raw_decode, index, position)
            if end - position > self.limit:
                yield (
                    index,
                    make_error(
                        "row_too_long",
                        line=index,
                        where=self.where,
                        size=end - position,
                        limit=self.limit,
                    ),
                )
            else:
                yield index, value
            position = self._skip_space(end)
            if position < 0:
                raise self._syntax_error(index + 1, "Expecting ',' delimiter", len(self.buffer))
            separator = self.buffer[position]
            if separator == "]":
                self._after_array(position + 1)
                return
            if separator != ",":
                raise self._syntax_error(index + 1, "Expecting ',' delimiter", position)
            position = self._skip_space(position + 1)

    def _element(self, raw_decode, index: int, position: int):
        """Parse the element at `position`, reading more of the file while it is incomplete."""
        while True:
            try:
                value, end = raw_decode(self.buffer, position)
            except RecursionError:
                # No telling where the element ends: the file stops here.
                raise DatasetError(
                    make_error("nested_too_deep", line=index, where=self.where)
                ) from None
            except json.JSONDecodeError as error:
                # An error short of the buffer's end is real, unless it is a
                # string that simply has not been read to its end yet.
                near_end = error.pos >= len(self.buffer) - 16
                if self.eof or not (near_end or error.msg.startswith("Unterminated string")):
                    raise self._syntax_error(index, error.msg, error.pos) from None
            else:
                # A number at the very end of the buffer may go on in the next chunk.
                if end < len(self.buffer) or self.eof:
                    return value, end
            if len(self.buffer) - position > self.limit:
                raise DatasetError(
                    make_error(
                        "element_too_long",
                        line=index,
                        where=self.where,
                        limit=self.limit,
                        file_line=self._place(len(self.buffer))["file_line"],
                    )
                )
            self._fill()

    def _after_array(self, position: int) -> None:
        """Only white space may follow the closing bracket."""
        position = self._skip_space(position)
        if position >= 0:
            raise DatasetError(make_error("trailing_content", **self._place(position)))


def _open_quote(lines: list[str], first_line: int, delimiter: str) -> tuple[int, int]:
    """Where the last quoted field left open in a CSV row starts: (line, column), 1-based."""
    opened = (first_line, 1)
    inside = False
    at_field_start = True
    for number, text in enumerate(lines, start=first_line):
        column = 0
        length = len(text)
        while column < length:
            char = text[column]
            if inside:
                if char == '"':
                    if column + 1 < length and text[column + 1] == '"':
                        column += 1
                    else:
                        inside = False
            elif char == '"' and at_field_start:
                inside = True
                opened = (number, column + 1)
            at_field_start = not inside and char in (delimiter, "\n", "\r")
            column += 1
    return opened


class _CsvLines:
    """Decoded physical lines for csv.reader, keeping the current row's lines (for messages)."""

    def __init__(self, lines: _Lines):
        self.lines = lines
        self.row_bytes = 0
        self.row_lines: list[str] = []

    def __iter__(self):
        return self

    def __next__(self) -> str:
        lines = self.lines
        try:
            raw = lines.next_raw()
        except _LineTooLong:
            if self.row_bytes:
                raise _RowRunsOn from None
            raise
        if not raw:
            raise StopIteration
        self.row_bytes += len(raw)
        if self.row_bytes > lines.limit:
            raise _RowRunsOn
        text = lines.decode(raw)
        self.row_lines.append(text)
        return text


class DelimitedReader:
    """CSV (comma) and TSV (tab) files with a header row."""

    where = "line"
    text_cells = True

    def __init__(self, path: Path, max_line_bytes: int, delimiter: str):
        self.file = open(path, "rb", buffering=_READ_BUFFER_BYTES)  # noqa: SIM115  (closed by close())
        self.lines = _Lines(self.file, max_line_bytes)
        self.source = _CsvLines(self.lines)
        self.delimiter = delimiter
        # The csv module's own cap (128 KiB a field) would cut in before ours.
        if csv.field_size_limit() < max_line_bytes:
            csv.field_size_limit(max_line_bytes)
        self.reader = csv.reader(self.source, delimiter=delimiter, strict=True)
        self.header = None
        for _line, row in self._rows():
            if isinstance(row, list):
                self.header = [name.strip() for name in row]
                break
            raise DatasetError(row)
        self._check_header()

    def _check_header(self) -> None:
        seen = set()
        for name in self.header or ():
            if name and name in seen:
                raise DatasetError(make_error("duplicate_header", line=1, name=name))
            seen.add(name)

    def bytes_read(self) -> int:
        return self.file.tell()

    def close(self) -> None:
        self.file.close()

    def _rows(self):
        """(start line, list of cells | RowError) for each non-blank row."""
        source = self.source
        lines = self.lines
        reader = self.reader
        limit = lines.limit
        while True:
            start = lines.line + 1
            source.row_bytes = 0
            source.row_lines.clear()
            try:
                row = next(reader)
            except StopIteration:
                return
            except _LineTooLong as error:
                yield (
                    error.line,
                    make_error("line_too_long", line=error.line, size=error.size, limit=limit),
                )
                continue
            except _RowRunsOn:
                quote_line, quote_column = _open_quote(source.row_lines, start, self.delimiter)
                raise DatasetError(
                    make_error(
                        "csv_row_runs_on",
                        line=start,
                        limit=limit,
                        quote_line=quote_line,
                        quote_column=quote_column,
                    )
                ) from None
            except csv.Error as error:
                yield start, self._csv_error(str(error), start)
                continue
            if row:
                yield start, row

    def _csv_error(self, reason: str, start: int):
        lines = self.lines
        if reason == "unexpected end of data" or lines.line > start:
            quote_line, quote_column = _open_quote(self.source.row_lines, start, self.delimiter)
            if reason == "unexpected end of data":
                raise DatasetError(
                    make_error(
                        "unclosed_quote",
                        line=start,
                        quote_line=quote_line,
                        quote_column=quote_column,
                    )
                )
            return make_error(
                "bad_csv_multiline",
                line=start,
                reason=reason,
                error_line=lines.line,
                quote_line=quote_line,
                quote_column=quote_column,
            )
        return make_error("bad_csv", line=start, reason=reason)

    def __iter__(self):
        header = self.header
        if header is None:
            return
        width = len(header)
        for line, row in self._rows():
            if type(row) is not list:
                yield line, row
            elif len(row) != width:
                yield line, make_error("ragged_row", line=line, count=len(row), expected=width)
            else:
                yield line, dict(zip(header, row, strict=True))


class ParquetReader:
    """Parquet, checked against the limits before and while it is read.

    Parquet compresses twice, with a codec and by encoding (a dictionary
    page holds a value once however many rows repeat it, runs of it are
    counted), so a file of a few hundred bytes can stand for gigabytes.
    Before reading, the footer's row count and uncompressed sizes are held to
    the limits. While reading, text columns written with a dictionary stay
    dictionary-encoded, so a repeated value is held once (this costs a hash
    of each value on pages a writer stored plainly after its dictionary
    filled); each row's size is summed from the Arrow buffers, a row over the
    limit is reported without being built, and the rest become Python values
    a few megabytes at a time.
    """

    where = "row"
    text_cells = True

    def __init__(self, path: Path, limits: DatasetLimits):
        import pyarrow
        import pyarrow.parquet

        self._errors = (pyarrow.ArrowException, OSError, ValueError)
        self.limits = limits
        self.limit = limits.max_row_bytes
        try:
            metadata = pyarrow.parquet.read_metadata(path)
            # Only a dictionary repeats a value; reading a column without one
            # as a dictionary would cost a hash of every value for nothing.
            dictionary_columns = [
                metadata.schema.column(i).path
                for i in range(metadata.num_columns)
                if metadata.schema.column(i).physical_type == "BYTE_ARRAY"
                and any(
                    metadata.row_group(g).column(i).has_dictionary_page
                    for g in range(metadata.num_row_groups)
                )
            ]
            # Buffered page reads, not whole column chunks: memory then stays
            # flat however large the file's row groups are.
            self.parquet = pyarrow.parquet.ParquetFile(
                path,
                buffer_size=_READ_BUFFER_BYTES,
                pre_buffer=False,
                read_dictionary=dictionary_columns,
            )
            self.header = list(self.parquet.schema_arrow.names)
        except self._errors as error:
            raise DatasetError(make_error("bad_parquet", reason=str(error))) from None
        self.total_bytes = path.stat().st_size
        self.num_rows = self.parquet.metadata.num_rows
        if self.num_rows > limits.max_rows:
            raise DatasetError(
                make_error("parquet_too_many_rows", rows=self.num_rows, limit=limits.max_rows)
            )
        self.columns = self.header
        self.rows_done = 0

    def select(self, columns: list[str]) -> None:
        """Read only these columns (those the format needs)."""
        self.columns = [name for name in self.header if name in columns]

    def bytes_read(self) -> int:
        if not self.num_rows:
            return self.total_bytes
        return self.total_bytes * self.rows_done // self.num_rows

    def close(self) -> None:
        self.parquet.close()

    def _check_sizes(self) -> None:
        """Hold the footer's uncompressed sizes of the columns read to the limits."""
        metadata = self.parquet.metadata
        read = set(self.columns)
        total = 0
        for group in range(metadata.num_row_groups):
            row_group = metadata.row_group(group)
            size = sum(
                row_group.column(i).total_uncompressed_size
                for i in range(row_group.num_columns)
                if row_group.column(i).path_in_schema.split(".")[0] in read
            )
            # Encoded values are never larger than the values: more bytes than
            # rows times the row limit (and the pages' own headers) means some
            # row is over it.
            if size > row_group.num_rows * self.limit + _PARQUET_GROUP_OVERHEAD_BYTES:
                raise DatasetError(
                    make_error(
                        "parquet_group_too_large",
                        group=group + 1,
                        uncompressed=size,
                        rows=row_group.num_rows,
                        limit=self.limit,
                    )
                )
            total += size
        limit, code = self.limits.records_bytes_for(self.total_bytes)
        if total > limit:
            raise DatasetError(
                make_error(
                    "parquet_expands" if code == "records_expand" else "parquet_too_large",
                    uncompressed=total,
                    limit=limit,
                    ratio=self.limits.max_expansion,
                    size=self.total_bytes,
                )
            )

    def __iter__(self):
        self._check_sizes()
        number = 0
        batches = self.parquet.iter_batches(
            batch_size=_PARQUET_BATCH_ROWS, columns=self.columns, use_pandas_metadata=False
        )
        while True:
            try:
                batch = next(batches, None)
            except self._errors as error:
                raise DatasetError(make_error("bad_parquet", reason=str(error))) from None
            if batch is None:
                return
            self.rows_done = number + batch.num_rows
            yield from self._rows(batch, number)
            number += batch.num_rows

    def _rows(self, batch, number: int):
        """(number, record | RowError) for each row of `batch`, the first being `number` + 1."""
        import numpy

        sizes = sum(
            (_value_sizes(column) for column in batch.columns),
            numpy.zeros(batch.num_rows, dtype=numpy.int64),
        )
        if sizes.sum() <= _PARQUET_BUILD_BYTES and sizes.max(initial=0) <= self.limit:
            # The usual batch: built at once.
            yield from enumerate(batch.to_pylist(), start=number + 1)
            return
        start = 0
        built = 0
        for index, size in enumerate(sizes.tolist()):
            if size > self.limit or built + size > _PARQUET_BUILD_BYTES:
                built_rows = batch.slice(start, index - start).to_pylist()
                yield from enumerate(built_rows, number + 1 + start)
                start, built = index, 0
            if size > self.limit:
                yield (
                    number + 1 + index,
                    make_error(
                        "row_values_too_long",
                        line=number + 1 + index,
                        where=self.where,
                        size=size,
                        limit=self.limit,
                    ),
                )
                start = index + 1
            else:
                built += size
        yield from enumerate(batch.slice(start).to_pylist(), number + 1 + start)


def _value_sizes(array):
    """Each row's bytes of values in an Arrow array, summed through lists, structs and
    dictionaries without building a value (a numpy int64 array)."""
    import numpy
    import pyarrow
    import pyarrow.compute

    kind = array.type
    types = pyarrow.types
    rows = len(array)
    if types.is_dictionary(kind):
        values = _value_sizes(array.dictionary)
        indices = array.indices.fill_null(0).to_numpy(zero_copy_only=False)
        sizes = values[indices] if len(values) else numpy.zeros(rows, dtype=numpy.int64)
    elif (
        types.is_string(kind)
        or types.is_binary(kind)
        or types.is_large_string(kind)
        or (types.is_large_binary(kind))
    ):
        lengths = pyarrow.compute.binary_length(array).fill_null(0)
        sizes = lengths.to_numpy(zero_copy_only=False).astype(numpy.int64)
    elif types.is_list(kind) or types.is_large_list(kind) or types.is_map(kind):
        # `values` is the whole child array; `offsets` index into it, slice or not.
        total = numpy.concatenate(([0], numpy.cumsum(_value_sizes(array.values))))
        offsets = array.offsets.to_numpy(zero_copy_only=False)
        sizes = total[offsets[1:]] - total[offsets[:-1]]
    elif types.is_fixed_size_list(kind):
        sizes = _value_sizes(array.flatten()).reshape(rows, kind.list_size).sum(axis=1)
    elif types.is_struct(kind):
        sizes = sum(
            (_value_sizes(field) for field in array.flatten()),
            numpy.zeros(rows, dtype=numpy.int64),
        )
    else:
        # Numbers, booleans, dates: a few bytes, to a row that normalising
        # refuses anyway unless it is a label.
        try:
            width = max(1, kind.bit_width // 8)
        except ValueError:  # not fixed-width: counted as a number's 8 bytes
            width = 8
        sizes = numpy.full(rows, width, dtype=numpy.int64)
    return sizes


def open_reader(file_type: str, path: Path, limits: DatasetLimits):
    """The reader for `file_type`; DatasetError when the file cannot even be opened as one."""
    max_line_bytes = limits.max_row_bytes
    if file_type == "jsonl":
        return JsonLinesReader(path, max_line_bytes)
    if file_type == "json":
        return JsonArrayReader(path, max_line_bytes)
    if file_type == "csv":
        return DelimitedReader(path, max_line_bytes, ",")
    if file_type == "tsv":
        return DelimitedReader(path, max_line_bytes, "\t")
    if file_type == "parquet":
        return ParquetReader(path, limits)
    raise ValueError(file_type)
