"""Reading a page of canonical records without reading the file up to it."""

import json
from pathlib import Path

from datasets_app.engine.canonical import INDEX_STRIDE, OFFSET, index_path


def read_page(canonical: Path, *, offset: int, limit: int) -> list[dict]:
    """Records offset .. offset + limit - 1 (0-based) of a canonical file; fewer at its end.

    Needs the file's .idx (written with it): one seek to the nearest indexed
    record, then at most INDEX_STRIDE - 1 lines skipped.
    """
    if offset < 0 or limit < 0:
        raise ValueError(f"offset and limit must not be negative (got {offset}, {limit})")
    if not limit:
        return []
    mark, skip = divmod(offset, INDEX_STRIDE)
    with open(index_path(canonical), "rb") as index:
        index.seek(mark * OFFSET.size)
        entry = index.read(OFFSET.size)
    if len(entry) < OFFSET.size:
        return []
    (position,) = OFFSET.unpack(entry)
    records = []
    with open(canonical, "rb") as file:
        file.seek(position)
        for _ in range(skip):
            if not file.readline():
                return []
        for _ in range(limit):
            line = file.readline()
            if not line:
                break
            records.append(json.loads(line))
    return records
