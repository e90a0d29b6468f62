"""JSON Lines: one record per line."""

import json
from pathlib import Path

import orjson

from datasets_app.engine.errors import DatasetError, make_error
from datasets_app.engine.readers.common import (
    BOM,
    READ_BUFFER_BYTES,
    binary_file,
    line_size,
    not_utf8,
)

_BLANK = object()


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
        self.file = open(path, "rb", buffering=READ_BUFFER_BYTES)  # noqa: SIM115  (closed by close())
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
        if raw.startswith(BOM):
            raw = raw[3:]
            offset = 3
        while raw:
            line += 1
            start = offset
            offset += len(raw)
            if len(raw) > limit:
                size, more = line_size(file, raw)
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
            raise not_utf8(error, file_line=line, offset=start, head=self.head) from None
        if "\x00" in text:
            raise binary_file(file_line=line, offset=start + raw.index(b"\x00"))
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
