"""Parquet, checked against the limits before and while it is read."""

from pathlib import Path

from datasets_app.engine.errors import DatasetError, clip, make_error
from datasets_app.engine.limits import DatasetLimits
from datasets_app.engine.readers.common import READ_BUFFER_BYTES

_PARQUET_BATCH_ROWS = 1024
# Page headers, statistics and levels a row group's columns hold besides values.
_PARQUET_GROUP_OVERHEAD_BYTES = 64 << 10
# Parquet rows become Python values this many bytes (of values) at a time.
_PARQUET_BUILD_BYTES = 16 << 20


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
                buffer_size=READ_BUFFER_BYTES,
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
            yield from self._build(batch, number + 1)
            return
        start = 0
        built = 0
        for index, size in enumerate(sizes.tolist()):
            if size > self.limit or built + size > _PARQUET_BUILD_BYTES:
                yield from self._build(batch.slice(start, index - start), number + 1 + start)
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
        yield from self._build(batch.slice(start), number + 1 + start)

    def _build(self, rows, first: int):
        """(number, record) of each of `rows` (a batch or a slice of one), the
        first being `first`, built as Python values. A value that no Python
        object can hold (a date past the year 9999, a duration of 10**15
        seconds) stops the file with a DatasetError naming its row and column."""
        try:
            return enumerate(rows.to_pylist(), first)
        except (*self._errors, OverflowError) as error:
            raise DatasetError(
                make_error("bad_parquet", reason=_unreadable_value(rows, first, error))
            ) from None


def _unreadable_value(rows, first: int, error: Exception) -> str:
    """Where in `rows` the value is that cannot be read, and why (for `bad_parquet`)."""
    for name, column in zip(rows.schema.names, rows.columns, strict=True):
        for index in range(len(column)):
            try:
                column[index].as_py()
            except (ValueError, OverflowError):
                where = f"row {first + index:,}, column `{clip(name)}`"
                return f"{where}: a {column.type} value out of range"
    return str(error)


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
