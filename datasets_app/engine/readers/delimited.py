"""CSV and TSV: a header row, then one record per row (a row may span lines)."""

import csv
from pathlib import Path

from datasets_app.engine.errors import DatasetError, make_error
from datasets_app.engine.readers.common import (
    BOM,
    READ_BUFFER_BYTES,
    binary_file,
    line_size,
    not_utf8,
)


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
        if self.line == 1 and raw.startswith(BOM):
            raw = raw[3:]
            start += 3
        self.start = start
        return raw

    def _check_length(self, raw: bytes) -> None:
        size, more = line_size(self.file, raw)
        self.offset += more
        if size > self.limit:
            raise _LineTooLong(self.line, size)

    def decode(self, raw: bytes) -> str:
        """The line as text; DatasetError when it is not UTF-8 or holds a NUL byte."""
        try:
            text = raw.decode()
        except UnicodeDecodeError as error:
            raise not_utf8(error, file_line=self.line, offset=self.start, head=self.head) from None
        if "\x00" in text:
            raise binary_file(file_line=self.line, offset=self.start + raw.index(b"\x00"))
        return text


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
        self.file = open(path, "rb", buffering=READ_BUFFER_BYTES)  # noqa: SIM115  (closed by close())
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
