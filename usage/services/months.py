"""Calendar months (UTC), as the usage pages, their CSVs and the API name
them (`?month=2026-12`), and why one cannot be read.

The quotas count the same months (quotas/services/limits.py `month_start`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from django.utils import timezone

FIRST_YEAR = 2000
# Why a month cannot be read, each as the end of "The month must …" (pages)
# and "Must …" (the API's `month` field).
MONTH_ERRORS = {
    "format": "be written YYYY-MM, like {example}",
    "too_early": f"be {FIRST_YEAR}-01 or later",
    "future": "not be after this month, {example}",
}


class BadMonth(ValueError):
    """A `?month=` that names no month to report; `code` is a key of MONTH_ERRORS."""

    def __init__(self, code: str, example: str):
        self.code = code
        self.fragment = MONTH_ERRORS[code].format(example=example)
        super().__init__(self.sentence)

    @property
    def sentence(self) -> str:
        return f"The month must {self.fragment}."

    @property
    def field_message(self) -> str:
        return f"Must {self.fragment}."


@dataclass(frozen=True, order=True)
class Month:
    year: int
    month: int

    @classmethod
    def of(cls, moment: datetime | None = None) -> Month:
        moment = (moment or timezone.now()).astimezone(UTC)
        return cls(moment.year, moment.month)

    @classmethod
    def parse(cls, text: str | None, now: datetime | None = None) -> Month:
        """`text` ("2026-12"; empty: this month) as a month no later than this one."""
        current = cls.of(now)
        if not text:
            return current
        found = re.fullmatch(r"(\d{4})-(\d{2})", text.strip())
        if found is None or not 1 <= int(found[2]) <= 12:
            raise BadMonth("format", current.key)
        month = cls(int(found[1]), int(found[2]))
        if month.year < FIRST_YEAR:
            raise BadMonth("too_early", current.key)
        if month > current:
            raise BadMonth("future", current.key)
        return month

    @property
    def key(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def label(self) -> str:
        return self.start.strftime("%B %Y")

    @property
    def start(self) -> datetime:
        return datetime(self.year, self.month, 1, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        return self.following.start

    @property
    def following(self) -> Month:
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    @property
    def previous(self) -> Month:
        return Month(self.year - (self.month == 1), (self.month - 2) % 12 + 1)

    def next_one(self, now: datetime | None = None) -> Month | None:
        """The month after, if it has begun."""
        following = self.following
        return following if following <= Month.of(now) else None

    def until(self, now: datetime | None = None) -> datetime:
        """The month's end, or now while it runs."""
        return min(self.end, now or timezone.now())
