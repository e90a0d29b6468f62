"""Finding rows that repeat an earlier row exactly, in bounded memory.

Each row is remembered as 16 bytes: a 64-bit hash of its canonical line and
its line number. Up to BUFFER_ROWS rows are held in memory (1 MiB); a file
that never fills the buffer is checked with one dict at the end (under 8 MiB).
Beyond that, every full buffer is spread over BUCKETS files on disk by the
hash's top six bits, and at the end each bucket is sorted and checked on its
own with numpy. Memory is therefore about 4 MiB while reading (the buffer and
its sorting) and about 40 bytes per row of one bucket (a 64th of the rows) at
the end: 6 MiB at ten million rows, 64 MiB at a hundred million.

The hash is Python's 64-bit hash of the line's bytes (salted per process,
which is fine: it never leaves the process). Two different rows share a hash
with probability about n²/2⁶⁵: one in 370,000 for ten million rows.
"""

import shutil
import tempfile
from array import array
from collections.abc import Iterator
from pathlib import Path

BUFFER_ROWS = 1 << 16
BUCKET_BITS = 6
BUCKETS = 1 << BUCKET_BITS
EXAMPLES = 10


class DuplicateFinder:
    def __init__(self, spill_parent: Path):
        self._spill_parent = Path(spill_parent)
        self._spill_dir: Path | None = None
        self._bucket_files: dict[int, object] = {}
        self._hashes = array("q")
        self._lines = array("q")
        self._room = BUFFER_ROWS

    def add(self, digest: int, line: int) -> None:
        self._hashes.append(digest)
        self._lines.append(line)
        self._room -= 1
        if not self._room:
            self._spill()

    def _spill(self) -> None:
        import numpy as np

        if self._spill_dir is None:
            self._spill_dir = Path(tempfile.mkdtemp(prefix=".duplicates-", dir=self._spill_parent))
        pairs = np.empty((len(self._hashes), 2), dtype=np.int64)
        pairs[:, 0] = np.frombuffer(self._hashes, dtype=np.int64)
        pairs[:, 1] = np.frombuffer(self._lines, dtype=np.int64)
        buckets = pairs[:, 0].view(np.uint64) >> np.uint64(64 - BUCKET_BITS)
        # Stable, so each bucket keeps its rows in file order.
        order = np.argsort(buckets, kind="stable")
        bounds = np.searchsorted(buckets[order], np.arange(BUCKETS + 1, dtype=np.uint64))
        for bucket in range(BUCKETS):
            chosen = order[bounds[bucket] : bounds[bucket + 1]]
            if chosen.size:
                file = self._bucket_files.get(bucket)
                if file is None:
                    path = self._spill_dir / f"{bucket:02d}"
                    file = self._bucket_files[bucket] = open(path, "wb")  # noqa: SIM115
                file.write(pairs[chosen].tobytes())
        self._hashes = array("q")
        self._lines = array("q")
        self._room = BUFFER_ROWS

    def finish(self) -> tuple[int, list[tuple[int, int]]]:
        """How many rows repeat an earlier one, and (line, line it copies) for the first few."""
        try:
            if self._spill_dir is None:
                return self._repeats_in_memory()
            return self._repeats_on_disk()
        finally:
            self.close()

    def _repeats_in_memory(self) -> tuple[int, list[tuple[int, int]]]:
        """For files that never filled the buffer (most): one dict pass, no numpy to load."""
        first_line: dict[int, int] = {}
        count = 0
        examples = []
        for digest, line in zip(self._hashes, self._lines, strict=True):
            original = first_line.setdefault(digest, line)
            if original != line:
                count += 1
                if len(examples) < EXAMPLES:
                    examples.append((line, original))
        return count, examples

    def _repeats_on_disk(self) -> tuple[int, list[tuple[int, int]]]:
        import numpy as np

        count = 0
        examples: list[tuple[int, int]] = []
        for repeat_lines, original_lines in self._bucket_repeats():
            count += int(repeat_lines.size)
            earliest = np.argsort(repeat_lines, kind="stable")[:EXAMPLES]
            examples.extend(
                zip(
                    repeat_lines[earliest].tolist(),
                    original_lines[earliest].tolist(),
                    strict=True,
                )
            )
        examples.sort()
        return count, examples[:EXAMPLES]

    def every_repeat(self) -> Iterator[tuple]:
        """Every row that repeats an earlier one: (lines, the lines they copy) as two
        numpy arrays, a chunk at a time (the whole file, or one bucket). The line
        copied is the group's first row. Then closes, like finish()."""
        import numpy as np

        try:
            if self._spill_dir is None:
                first_line: dict[int, int] = {}
                repeats, originals = [], []
                for digest, line in zip(self._hashes, self._lines, strict=True):
                    original = first_line.setdefault(digest, line)
                    if original != line:
                        repeats.append(line)
                        originals.append(original)
                if repeats:
                    yield np.array(repeats, dtype=np.int64), np.array(originals, dtype=np.int64)
            else:
                yield from self._bucket_repeats()
        finally:
            self.close()

    def _bucket_repeats(self) -> Iterator[tuple]:
        """(repeat lines, original lines) of each spilled bucket that has repeats."""
        import numpy as np

        if len(self._hashes):
            self._spill()
        for bucket, file in sorted(self._bucket_files.items()):
            file.close()
            pairs = np.fromfile(self._spill_dir / f"{bucket:02d}", dtype=np.int64).reshape(-1, 2)
            hashes, lines = pairs[:, 0], pairs[:, 1]
            order = np.argsort(hashes, kind="stable")
            ordered = hashes[order]
            same = ordered[1:] == ordered[:-1]
            repeats = np.flatnonzero(same) + 1
            if not repeats.size:
                continue
            # Each run of equal hashes starts with the earliest row: the original.
            starts = np.flatnonzero(np.concatenate(([True], ~same)))
            originals = starts[np.searchsorted(starts, repeats, side="right") - 1]
            yield lines[order[repeats]], lines[order[originals]]

    def close(self) -> None:
        """Remove the spill files; safe to call twice."""
        for file in self._bucket_files.values():
            file.close()
        self._bucket_files.clear()
        if self._spill_dir is not None:
            shutil.rmtree(self._spill_dir, ignore_errors=True)
            self._spill_dir = None
