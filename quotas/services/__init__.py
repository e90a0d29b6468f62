"""Quotas and fair share: limits.py (which limit applies, use, hard checks),
fair_share.py (the waiting line, release, where a queued job stands)."""

from quotas.services.fair_share import (
    QueueStanding,
    Standings,
    release,
    release_after_commit,
    standing,
    waiting_line,
)
from quotas.services.limits import (
    Limits,
    QuotaExceeded,
    check_generation,
    check_new_job,
    check_queue,
    check_storage,
    limits_for,
)

__all__ = [
    "Limits", "QueueStanding", "QuotaExceeded", "Standings", "check_generation", "check_new_job",
    "check_queue", "check_storage", "limits_for", "release", "release_after_commit", "standing",
    "waiting_line",
]  # fmt: skip
