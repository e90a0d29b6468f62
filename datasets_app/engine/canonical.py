"""The canonical JSONL file and its row index.

A canonical file holds one canonical record per line (UTF-8 JSON). Next to it,
`<name>.idx` holds the byte offset of every INDEX_STRIDE-th record as
little-endian 8-byte integers, so a page anywhere in the file is one seek and
at most INDEX_STRIDE - 1 skipped lines away.
"""

import os
import secrets
import struct
from pathlib import Path

INDEX_STRIDE = 100
# Fewer, larger writes: records are about a kilobyte each.
BUFFER_BYTES = 1 << 20
OFFSET = struct.Struct("<Q")


def index_path(canonical: Path) -> Path:
    return Path(canonical).with_suffix(".idx")


class CanonicalWriter:
    """Writes a canonical file and its index under temporary names in the same folder.

    commit() renames both into place; discard() (also what leaving a `with`
    block on an exception does) deletes the temporary files and anything
    already at the final paths, so a failed write leaves nothing behind.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.index_path = index_path(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        token = secrets.token_hex(6)
        self._temporary = self.path.with_name(f".{self.path.name}.{token}.tmp")
        self._index_temporary = self.path.with_name(f".{self.index_path.name}.{token}.tmp")
        self._file = open(self._temporary, "wb", buffering=BUFFER_BYTES)  # noqa: SIM115
        self._index = open(self._index_temporary, "wb")  # noqa: SIM115  (closed by commit/discard)
        self.rows = 0
        self._offset = 0

    def write(self, line: bytes) -> None:
        """Append one record: its JSON as UTF-8 bytes, ending in a newline."""
        if not self.rows % INDEX_STRIDE:
            self._index.write(OFFSET.pack(self._offset))
        self._file.write(line)
        self._offset += len(line)
        self.rows += 1

    def commit(self) -> None:
        self._file.close()
        self._index.close()
        os.replace(self._index_temporary, self.index_path)
        os.replace(self._temporary, self.path)

    def discard(self) -> None:
        self._file.close()
        self._index.close()
        for path in (self._temporary, self._index_temporary, self.path, self.index_path):
            path.unlink(missing_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        if kind is not None:
            self.discard()
