"""How much one dataset may hold: the caps validate() enforces on every file type.

A file that passes a cap ends invalid with a sentence naming it. The studio
passes the operator's settings (`DatasetLimits.from_settings`); these
defaults are the same as the settings' defaults, for scripts and tests.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class DatasetLimits:
    # Records (and unreadable rows) read from one file.
    max_rows: int = 2_000_000
    # One row: a JSONL line, a CSV row, a JSON element, a Parquet row's values.
    max_row_bytes: int = 1_000_000
    # The canonical records written for one file.
    max_records_bytes: int = 2 * 1024**3
    # The canonical records may be at most this many times the file's size.
    max_expansion: int = 100

    @classmethod
    def from_settings(cls, settings) -> "DatasetLimits":
        """The limits an operator set (Django's settings, or anything with the same names)."""
        return cls(
            max_rows=settings.DATASET_MAX_ROWS,
            max_row_bytes=settings.DATASET_MAX_ROW_BYTES,
            max_records_bytes=settings.DATASET_MAX_RECORDS_BYTES,
            max_expansion=settings.DATASET_MAX_EXPANSION,
        )

    def records_bytes_for(self, file_bytes: int) -> tuple[int, str]:
        """The most canonical bytes a file of `file_bytes` may give, and the error
        code that names the cap that binds."""
        expanded = file_bytes * self.max_expansion
        if expanded < self.max_records_bytes:
            return expanded, "records_expand"
        return self.max_records_bytes, "records_too_large"
