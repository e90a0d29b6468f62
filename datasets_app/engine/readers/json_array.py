"""A .json file: one array of records, parsed element by element."""

import codecs
import json
import re
from pathlib import Path

from datasets_app.engine.errors import DatasetError, describe, make_error
from datasets_app.engine.readers.common import BOM, READ_BUFFER_BYTES, binary_file, not_utf8

_WHITESPACE = re.compile(r"[ \t\n\r]*")
# Text is decoded this many bytes at a time; the buffer drops its parsed head past it.
_CHUNK_BYTES = 1 << 20


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
        self.file = open(path, "rb", buffering=READ_BUFFER_BYTES)  # noqa: SIM115  (closed by close())
        self.limit = max_line_bytes
        self.head = self.file.peek(4)[:4]
        self.decoder = codecs.getincrementaldecoder("utf-8")()
        self.buffer = ""
        self.eof = False
        self.fed = 0
        if self.head.startswith(BOM):
            self.fed = len(self.file.read(len(BOM)))
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
            raise not_utf8(
                error, file_line=file_line, offset=self.fed - len(pending), head=self.head
            ) from None
        if b"\x00" in chunk:
            at = chunk.index(b"\x00")
            raise binary_file(file_line=file_line + chunk.count(b"\n", 0, at), offset=self.fed + at)
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
