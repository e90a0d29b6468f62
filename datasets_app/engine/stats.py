"""Statistics and warnings, gathered one valid row at a time in bounded memory.

Lengths and turn counts are kept as {value: rows} counters, so their size is
the number of distinct values (at most the longest row's length), not the
number of rows; percentiles and histograms come out exact. Labels are capped
at LABEL_LIMIT distinct values. Duplicates: see duplicates.py.
"""

import math
from pathlib import Path

from datasets_app.engine.duplicates import DuplicateFinder
from datasets_app.engine.errors import DatasetError, DatasetWarning, RowError, make_error

LONG_ROW_CHARACTERS = 16_000
FEW_ROWS = 50
LABEL_LIMIT = 1_000
# A label is rare when it has under a fifth of the commonest label's rows, or
# under 5% of all rows: a classifier then learns to ignore it.
IMBALANCE_RATIO = 5
IMBALANCE_SHARE = 0.05
HISTOGRAM_BINS = 30
EXAMPLES = 10
_STEPS = (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10)


def _plural(count: int, one: str, many: str) -> str:
    return f"{count:,} {one if count == 1 else many}"


def bin_width(span: int, bins: int = HISTOGRAM_BINS) -> int:
    """The smallest round width (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8 × 10ⁿ) covering `span` in `bins`."""
    raw = span / bins
    if raw <= 1:
        return 1
    magnitude = 10 ** math.floor(math.log10(raw))
    for step in _STEPS:
        width = step * magnitude
        if width >= raw and width == int(width):
            return int(width)
    return 10 * magnitude  # pragma: no cover  (the 10 step always fits)


def histogram(counts: dict[int, int]) -> dict:
    """Bins of a round width: counts[i] rows have edges[i] <= value < edges[i + 1]."""
    low, high = min(counts), max(counts)
    width = bin_width(high - low + 1)
    low -= low % width
    bins = (high - low) // width + 1
    binned = [0] * bins
    for value, count in counts.items():
        binned[(value - low) // width] += count
    return {"edges": [low + width * index for index in range(bins + 1)], "counts": binned}


def percentile(ordered: list[tuple[int, int]], rows: int, fraction: float) -> int:
    """The nearest-rank percentile of a sorted [(value, count)] list."""
    rank = max(1, math.ceil(fraction * rows))
    seen = 0
    for value, count in ordered:
        seen += count
        if seen >= rank:
            return value
    return ordered[-1][0]


def summary(counts: dict[int, int], rows: int, *, decimals: int) -> dict:
    ordered = sorted(counts.items())
    total = sum(value * count for value, count in ordered)
    return {
        "min": ordered[0][0],
        "max": ordered[-1][0],
        "mean": round(total / rows, decimals),
        "p50": percentile(ordered, rows, 0.5),
        "p95": percentile(ordered, rows, 0.95),
        "histogram": histogram(counts),
    }


class DatasetStats:
    """Collects what the report says about the valid rows: statistics and warnings."""

    def __init__(self, *, task: str, where: str, label_column: str | None, spill_parent: Path):
        self.task = task
        self.where = where
        self.label_column = label_column
        self.lengths: dict[int, int] = {}
        self.turns: dict[int, int] = {}
        self.roles = {"system": 0, "user": 0, "assistant": 0}
        self.labels: dict[str, int] = {}
        self.long_rows = 0
        self.long_lines: list[int] = []
        self.longest = (0, 0)
        self.empty_rows = 0
        self.empty_lines: list[int] = []
        self.first_empty_field: str | None = None
        self.duplicates = DuplicateFinder(spill_parent)

    def add(self, record: dict, size: int, line: int, empty: str | None, data: bytes) -> None:
        """Count one valid row: its canonical record, text size, line, empty field and JSON line."""
        lengths = self.lengths
        lengths[size] = lengths.get(size, 0) + 1
        if self.task == "generation":
            messages = record["messages"]
            turns = len(messages)
            self.turns[turns] = self.turns.get(turns, 0) + 1
            roles = self.roles
            for message in messages:
                roles[message["role"]] += 1
        else:
            label = record["label"]
            labels = self.labels
            if label not in labels and len(labels) >= LABEL_LIMIT:
                raise DatasetError(
                    make_error("too_many_labels", limit=LABEL_LIMIT, column=self.label_column)
                )
            labels[label] = labels.get(label, 0) + 1
        if size > LONG_ROW_CHARACTERS:
            self.long_rows += 1
            if len(self.long_lines) < EXAMPLES:
                self.long_lines.append(line)
            if size > self.longest[0]:
                self.longest = (size, line)
        if empty is not None:
            self.empty_rows += 1
            if len(self.empty_lines) < EXAMPLES:
                self.empty_lines.append(line)
            if self.first_empty_field is None:
                self.first_empty_field = empty
        self.duplicates.add(hash(data), line)

    def close(self) -> None:
        self.duplicates.close()

    def finish(self, rows: int) -> tuple[dict, list[DatasetWarning], list[RowError]]:
        """The stats dict, the warnings and any file-level errors (one label), for `rows` rows."""
        warnings = self._warnings(rows)
        errors = []
        if self.task == "classification" and len(self.labels) == 1:
            (label,) = self.labels
            errors.append(make_error("one_label", label=label, rows=_plural(rows, "row", "rows")))
        if not rows:
            return {}, warnings, errors
        stats = {
            "rows": rows,
            "length": {"unit": "characters", **summary(self.lengths, rows, decimals=1)},
        }
        if self.task == "generation":
            turns = summary(self.turns, rows, decimals=2)
            stats["turns"] = {
                "mean": turns["mean"],
                "max": turns["max"],
                "histogram": turns["histogram"],
            }
            stats["roles"] = dict(self.roles)
        else:
            stats["labels"] = [
                {"label": label, "count": count} for label, count in self._labels_by_count()
            ]
        return stats, warnings, errors

    def _labels_by_count(self) -> list[tuple[str, int]]:
        return sorted(self.labels.items(), key=lambda item: (-item[1], item[0]))

    def _warnings(self, rows: int) -> list[DatasetWarning]:
        where = self.where
        warnings = []
        repeats, examples = self.duplicates.finish()
        if repeats:
            line, original = examples[0]
            if repeats == 1:
                text = (
                    f"1 row repeats an earlier row exactly "
                    f"({where} {line:,}, a copy of {where} {original:,})."
                )
            else:
                text = (
                    f"{repeats:,} rows repeat an earlier row exactly "
                    f"(the first, {where} {line:,}, is a copy of {where} {original:,})."
                )
            warnings.append(
                DatasetWarning("duplicate_rows", text, repeats, [line for line, _ in examples])
            )
        if self.empty_rows:
            first = f"{where} {self.empty_lines[0]:,}, `{self.first_empty_field}`"
            if self.empty_rows == 1:
                text = f"1 row has an empty field ({first})."
            else:
                text = f"{self.empty_rows:,} rows have an empty field (the first: {first})."
            warnings.append(DatasetWarning("empty_field", text, self.empty_rows, self.empty_lines))
        if self.long_rows:
            size, line = self.longest
            if self.long_rows == 1:
                text = (
                    f"1 row is over {LONG_ROW_CHARACTERS:,} characters "
                    f"({where} {line:,}, {size:,} characters)"
                )
            else:
                text = (
                    f"{self.long_rows:,} rows are over {LONG_ROW_CHARACTERS:,} characters "
                    f"(the longest, {where} {line:,}, has {size:,})"
                )
            text += (
                "; long rows take more memory in training and may be cut to the model's "
                "context length."
            )
            warnings.append(DatasetWarning("long_rows", text, self.long_rows, self.long_lines))
        if len(self.labels) >= 2:
            ordered = self._labels_by_count()
            commonest, rarest = ordered[0], ordered[-1]
            if rarest[1] * IMBALANCE_RATIO < commonest[1] or rarest[1] < IMBALANCE_SHARE * rows:
                text = (
                    f"The labels are imbalanced: the rarest, {rarest[0]!r}, has "
                    f"{_plural(rarest[1], 'row', 'rows')} ({rarest[1] / rows:.1%}); the commonest, "
                    f"{commonest[0]!r}, has {commonest[1]:,} ({commonest[1] / rows:.1%})."
                )
                warnings.append(DatasetWarning("label_imbalance", text, rarest[1], []))
        if 0 < rows < FEW_ROWS:
            text = (
                f"Only {_plural(rows, 'row', 'rows')}: fine-tuning needs at least {FEW_ROWS}, "
                "and a few hundred is better."
            )
            warnings.append(DatasetWarning("few_rows", text, rows, []))
        return warnings
