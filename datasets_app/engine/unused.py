"""Counting the columns a format does not read, for the "unused_columns" warning.

A file with a header names its columns once. A file without one (JSONL, JSON)
may hold any keys in any row: valid rows are counted by their keys in order
(their shape), most of them in one dict step in validate()'s hot loop, and
only a new shape, or a shape with unused keys while example lines are still
wanted, comes here. Columns are counted by name up to UNUSED_COLUMNS_LIMIT
and shapes up to SHAPES_LIMIT; past it, rows are counted key by key, slower
(a file's keys are the file's to choose: memory stays bounded).
"""

from datasets_app.engine.errors import DatasetWarning, clip, listed, make_warning

UNUSED_COLUMNS_LIMIT = 1_000
SHAPES_LIMIT = 1_000
EXAMPLES = 10


class UnusedColumns:
    """The columns (keys) of valid rows that the format's `source_columns` leave unread."""

    def __init__(self, source_columns: tuple[str, ...]):
        self.source_columns = source_columns
        # Column name -> valid rows holding it; rows holding any; their first lines.
        self.unused: dict[str, int] = {}
        self.unused_rows = 0
        self.unused_lines: list[int] = []
        # Files without a header: valid rows with more keys than the required
        # fields, by their keys in order -> rows; the shapes holding unused keys.
        self.shapes: dict[tuple, int] = {}
        self.unused_shapes: set[tuple] = set()

    def note_shape(self, shape: tuple, line: int) -> bool:
        """Count a valid row by its keys in order: the hot loop's slow path, for a
        new shape or while lines of rows with unused keys are wanted. Returns
        whether they still are."""
        shapes = self.shapes
        if shape not in self.unused_shapes and any(key not in self.source_columns for key in shape):
            self.unused_shapes.add(shape)
        if shape in shapes:
            shapes[shape] += 1
        elif len(shapes) < SHAPES_LIMIT:
            shapes[shape] = 1
        elif shape in self.unused_shapes:  # past the limit: by key
            self._count(shape, 1)
        if shape in self.unused_shapes and len(self.unused_lines) < EXAMPLES:
            self.unused_lines.append(line)
        return len(self.unused_lines) < EXAMPLES

    def _count(self, shape: tuple, rows: int) -> None:
        used = self.source_columns
        unused = self.unused
        for key in shape:
            if key in used:
                continue
            if key in unused:
                unused[key] += rows
            elif len(unused) < UNUSED_COLUMNS_LIMIT:
                unused[key] = rows
        self.unused_rows += rows

    def warning(self, header: list[str] | None, rows: int, format: str) -> DatasetWarning | None:
        """The warning that names the columns the format does not read, if any,
        once all `rows` valid rows are counted (`header`: the file's, or None)."""
        used = set(self.source_columns)
        if header is not None:
            self.unused = {column: rows for column in header if column not in used}
            self.unused_rows = rows if self.unused else 0
        for shape, count in self.shapes.items():
            if shape in self.unused_shapes:
                self._count(shape, count)
        if not self.unused or not rows:
            return None
        columns = [
            f"`{clip(name)}` in {count:,} of {rows:,} rows" for name, count in self.unused.items()
        ]
        return make_warning(
            "unused_columns",
            count=self.unused_rows,
            lines=self.unused_lines,
            several=len(columns) > 1,
            columns=listed(columns),
            format=format,
        )
