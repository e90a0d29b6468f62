"""Statistics and warnings, gathered one valid row at a time in bounded memory.

Lengths and turn counts are kept as {value: rows} counters, so their size is
the number of distinct values (at most the longest row's length), not the
number of rows; percentiles and histograms come out exact. Labels are capped
at LABEL_LIMIT distinct values. Preference pairs and feedback rows count their
prompt's turns, and how often the chosen answer is the longer one or how many
answers are good and bad. Duplicates: see duplicates.py.
"""

import heapq
import math
from pathlib import Path

from datasets_app.engine.duplicates import DuplicateFinder
from datasets_app.engine.errors import (
    DatasetError,
    DatasetWarning,
    RowError,
    make_error,
    make_note,
    make_warning,
)
from datasets_app.engine.tokens import TokenizerUnavailable, TokenRule
from jobs.vocabulary import CLASSIFICATION, FEEDBACK, PREFERENCE

LONG_ROW_CHARACTERS = 16_000
FEW_ROWS = 50
LABEL_LIMIT = 1_000
# A label is rare when it has under a fifth of the commonest label's rows, or
# under 5% of all rows: a classifier then learns to ignore it.
IMBALANCE_RATIO = 5
IMBALANCE_SHARE = 0.05
# DPO learns "longer is better" when nearly every chosen answer is the longer
# one (and the reverse): warned past these shares, once there are enough
# pairs for a share to mean something.
LONGER_CHOSEN_SHARE = 0.9
SHORTER_CHOSEN_SHARE = 0.1
LENGTH_BIAS_PAIRS = 10
# How a feedback row's label is counted and shown.
FEEDBACK_WORDS = {True: "good", False: "bad"}
HISTOGRAM_BINS = 30
EXAMPLES = 10
# Rows tokenized in one call: the tokenizer's batches are cheaper per row,
# and a batch's records stay a few megabytes at most.
TOKEN_BATCH = 256
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

    def __init__(
        self,
        *,
        task: str,
        where: str,
        label_column: str | None,
        spill_parent: Path,
        tokens: TokenRule | TokenizerUnavailable | None = None,
    ):
        """`tokens`: the rule that measures rows in tokens, or why there is none
        (the report then says its lengths are in characters), or None (characters,
        nothing said)."""
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
        # Conversations of a system message and a reply, with no user message.
        self.no_user_rows = 0
        self.no_user_lines: list[int] = []
        # Preference pairs whose chosen answer is longer (shorter) than the rejected one.
        self.chosen_longer = 0
        self.chosen_shorter = 0
        self.duplicates = DuplicateFinder(spill_parent)
        self.token_rule = tokens if isinstance(tokens, TokenRule) else None
        self.token_problem = tokens if isinstance(tokens, TokenizerUnavailable) else None
        self.token_lengths: dict[int, int] = {}
        # The longest rows in tokens, as a min-heap of (tokens, -line): examples
        # for the warning about rows a job will cut, whatever length it cuts at.
        self.longest_in_tokens: list[tuple[int, int]] = []
        self.pending: list[tuple[dict, int]] = []

    def _count_tokens(self) -> None:
        pending, self.pending = self.pending, []
        counts = self.token_rule.count([record for record, _ in pending])
        lengths, longest = self.token_lengths, self.longest_in_tokens
        for (_, line), tokens in zip(pending, counts, strict=True):
            lengths[tokens] = lengths.get(tokens, 0) + 1
            if len(longest) < EXAMPLES:
                heapq.heappush(longest, (tokens, -line))
            elif tokens > longest[0][0]:
                heapq.heapreplace(longest, (tokens, -line))

    # Per row: one function, as a helper's call would cost more than its branch.
    def add(self, record: dict, size: int, line: int, empty: str | None, data: bytes) -> None:  # noqa: PLR0912
        """Count one valid row: its canonical record, text size, line, empty field and JSON line."""
        lengths = self.lengths
        lengths[size] = lengths.get(size, 0) + 1
        task = self.task
        if task != CLASSIFICATION:
            # A conversation, or the prompt of a pair or of a feedback row.
            messages = record["messages"]
            turns = len(messages)
            self.turns[turns] = self.turns.get(turns, 0) + 1
            roles = self.roles
            for message in messages:
                roles[message["role"]] += 1
            if task == PREFERENCE:
                chosen, rejected = len(record["chosen"]), len(record["rejected"])
                if chosen > rejected:
                    self.chosen_longer += 1
                elif chosen < rejected:
                    self.chosen_shorter += 1
            elif task == FEEDBACK:
                word = FEEDBACK_WORDS[record["label"]]
                self.labels[word] = self.labels.get(word, 0) + 1
            # The only two-turn shape that opens with a system message (normalise.py).
            elif turns == 2 and messages[0]["role"] == "system":
                self.no_user_rows += 1
                if len(self.no_user_lines) < EXAMPLES:
                    self.no_user_lines.append(line)
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
        if self.token_rule is not None:
            self.pending.append((record, line))
            if len(self.pending) >= TOKEN_BATCH:
                self._count_tokens()

    def close(self) -> None:
        self.duplicates.close()

    def finish(self, rows: int) -> tuple[dict, list[DatasetWarning], list[RowError]]:
        """The stats dict, the warnings and any file-level errors (one label), for `rows` rows."""
        if self.pending:
            self._count_tokens()
        warnings = self._warnings(rows)
        errors = []
        if self.task == CLASSIFICATION and len(self.labels) == 1:
            (label,) = self.labels
            errors.append(make_error("one_label", label=label, rows=_plural(rows, "row", "rows")))
        if not rows:
            return {}, warnings, errors
        stats = {
            "rows": rows,
            "length": {"unit": "characters", **summary(self.lengths, rows, decimals=1)},
        }
        if self.token_rule is not None:
            limit = self.token_rule.max_length(stats["length"])
            cut, _ = self._rows_over(limit)
            stats["tokens"] = {
                "unit": "tokens",
                "model": self.token_rule.model,
                "max_length": limit,
                "rows_cut": cut,
                **summary(self.token_lengths, rows, decimals=1),
            }
            warning = self._cut_warning(limit)
            if warning is not None:
                warnings.append(warning)
        elif self.token_problem is not None:
            stats["length_note"] = make_note(
                "lengths_in_characters",
                model=self.token_problem.model,
                reason=self.token_problem.reason,
            )
        if self.task != CLASSIFICATION:
            # Of a conversation, or of the prompt a pair or a feedback row answers.
            turns = summary(self.turns, rows, decimals=2)
            stats["turns"] = {
                "mean": turns["mean"],
                "max": turns["max"],
                "histogram": turns["histogram"],
            }
            stats["roles"] = dict(self.roles)
        if self.task == PREFERENCE:
            stats["preference"] = {
                "chosen_longer": self.chosen_longer,
                "chosen_shorter": self.chosen_shorter,
                "chosen_longer_share": round(self.chosen_longer / rows, 4),
            }
        if self.task in (CLASSIFICATION, FEEDBACK):
            stats["labels"] = [
                {"label": label, "count": count} for label, count in self._labels_by_count()
            ]
        return stats, warnings, errors

    def _rows_over(self, limit: int) -> tuple[int, list[tuple[int, int]]]:
        """How many rows are longer than `limit` tokens, and (tokens, line) of the
        longest of them, longest first."""
        cut = sum(count for tokens, count in self.token_lengths.items() if tokens > limit)
        examples = sorted(
            ((tokens, -negative_line) for tokens, negative_line in self.longest_in_tokens
             if tokens > limit),
            key=lambda example: (-example[0], example[1]),
        )  # fmt: skip
        return cut, examples

    def _cut_warning(self, limit: int) -> DatasetWarning | None:
        cut, examples = self._rows_over(limit)
        if not cut:
            return None
        size, line = examples[0]
        return make_warning(
            "rows_cut", count=cut, lines=sorted(line for _, line in examples), where=self.where,
            line=line, size=size, limit=limit, model=self.token_rule.model,
        )  # fmt: skip

    def _labels_by_count(self) -> list[tuple[str, int]]:
        return sorted(self.labels.items(), key=lambda item: (-item[1], item[0]))

    def _warnings(self, rows: int) -> list[DatasetWarning]:
        where = self.where
        warnings = []
        repeats, examples = self.duplicates.finish()
        if repeats:
            line, original = examples[0]
            lines = [line for line, _ in examples]
            warnings.append(
                make_warning(
                    "duplicate_rows", count=repeats, lines=lines, where=where, line=line,
                    original=original,
                )
            )  # fmt: skip
        if self.empty_rows:
            warnings.append(
                make_warning(
                    "empty_field", count=self.empty_rows, lines=self.empty_lines, where=where,
                    line=self.empty_lines[0], field=self.first_empty_field,
                )
            )  # fmt: skip
        if self.no_user_rows:
            warnings.append(
                make_warning(
                    "no_user_message", count=self.no_user_rows, lines=self.no_user_lines,
                    where=where, line=self.no_user_lines[0],
                )
            )  # fmt: skip
        if self.long_rows and self.token_rule is None:
            size, line = self.longest
            warnings.append(
                make_warning(
                    "long_rows", count=self.long_rows, lines=self.long_lines, where=where,
                    line=line, size=size, limit=LONG_ROW_CHARACTERS,
                )
            )  # fmt: skip
        if self.task == PREFERENCE:
            warnings.extend(self._length_bias_warnings(rows))
        elif self.task == FEEDBACK:
            warnings.extend(self._feedback_warnings(rows))
        elif len(self.labels) >= 2:
            ordered = self._labels_by_count()
            commonest, rarest = ordered[0], ordered[-1]
            if rarest[1] * IMBALANCE_RATIO < commonest[1] or rarest[1] < IMBALANCE_SHARE * rows:
                warnings.append(
                    make_warning(
                        "label_imbalance", count=rarest[1], rarest=rarest[0],
                        share=rarest[1] / rows, commonest=commonest[0],
                        commonest_rows=commonest[1], commonest_share=commonest[1] / rows,
                    )
                )  # fmt: skip
        if 0 < rows < FEW_ROWS:
            warnings.append(make_warning("few_rows", count=rows, least=FEW_ROWS))
        return warnings

    def _length_bias_warnings(self, rows: int) -> list[DatasetWarning]:
        if rows < LENGTH_BIAS_PAIRS:
            return []
        longer = self.chosen_longer
        if longer > LONGER_CHOSEN_SHARE * rows:
            return [make_warning("chosen_longer", count=longer, rows=rows, share=longer / rows)]
        if longer < SHORTER_CHOSEN_SHARE * rows:
            return [make_warning("chosen_shorter", count=longer, rows=rows, share=longer / rows)]
        return []

    def _feedback_warnings(self, rows: int) -> list[DatasetWarning]:
        """Good and bad answers out of balance, by the rule labels follow; a side
        with no answers at all is the most imbalanced."""
        good, bad = self.labels.get("good", 0), self.labels.get("bad", 0)
        rarest, count = ("bad", bad) if bad <= good else ("good", good)
        commonest = max(good, bad)
        if count * IMBALANCE_RATIO < commonest or count < IMBALANCE_SHARE * rows:
            return [
                make_warning(
                    "feedback_imbalance", count=count, rows=rows, share=count / rows, rarest=rarest
                )
            ]
        return []
