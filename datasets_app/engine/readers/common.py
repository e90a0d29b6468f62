"""What the text readers share: the read buffer's size, byte-order marks, the
errors for text that is not UTF-8 or is binary, and measuring a line too long
to hold."""

from datasets_app.engine.errors import DatasetError, make_error

BOM = b"\xef\xbb\xbf"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
READ_BUFFER_BYTES = 1 << 20
# A line over the limit is read past this many bytes at a time, never held.
PIECE_BYTES = 1 << 20


def not_utf8(error: UnicodeDecodeError, *, file_line: int, offset: int, head: bytes):
    """The error for the first byte that is not UTF-8 (file-level: nothing after it is readable)."""
    hint = (
        " (it looks like UTF-16; save it as UTF-8)"
        if head.startswith(UTF16_BOMS)
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


def binary_file(*, file_line: int, offset: int):
    return DatasetError(make_error("binary_file", file_line=file_line, offset=offset))


def line_size(file, raw: bytes) -> tuple[int, int]:
    """The size of a long line without its newline, reading past the rest of it in pieces.

    `raw` is what readline(limit) returned; also returns how many more bytes were read.
    """
    size = len(raw)
    more = 0
    while not raw.endswith(b"\n"):
        raw = file.readline(PIECE_BYTES)
        if not raw:
            break
        more += len(raw)
    size += more
    if raw.endswith(b"\r\n"):
        size -= 2
    elif raw.endswith(b"\n"):
        size -= 1
    return size, more
