"""ValidationReport: what one validation found, as data."""

from dataclasses import asdict, dataclass, field

from datasets_app.engine.errors import DatasetWarning, RowError


@dataclass
class ValidationReport:
    """What one validation found.

    A row with a problem of its own (not JSON, a missing field, a bad role) is
    an invalid row; a problem with the file as a whole (unreadable, no format,
    over a cap) is a file error and stops the reading. `errors` lists the
    first `error_limit` row problems, then every file error; `error_count`
    counts them all. `skippable`: the report is not ok only because of
    invalid rows, and some rows are fine, so validating again with
    skip_invalid_rows gives a usable dataset. When that skip was asked for and
    the rest is fine, the report is ok: `skipped_rows` rows were left out,
    `skipped` lists their problems (as `errors` would have) and `errors` is
    empty.
    """

    ok: bool
    file_type: str | None
    format: str | None
    task: str | None
    columns: list[str]
    rows_seen: int
    num_rows: int
    error_count: int
    errors: list[RowError] = field(default_factory=list)
    warnings: list[DatasetWarning] = field(default_factory=list)
    stats: dict = field(default_factory=dict)
    invalid_rows: int = 0
    skippable: bool = False
    skipped_rows: int = 0
    skipped: list[RowError] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)
