"""Quotas and fair share: limits.py (which limit applies, use, hard checks),
fair_share.py (the waiting line, release), standings.py (where a queued job
stands), places.py (the line as last published, live)."""

from quotas.services.fair_share import release, release_after_commit, waiting_line
from quotas.services.limits import (
    Limits,
    QuotaExceeded,
    check_generation,
    check_new_job,
    check_queue,
    check_storage,
    limits_for,
)
from quotas.services.standings import QueueStanding, Standings, standing

__all__ = [
    "Limits", "QueueStanding", "QuotaExceeded", "Standings", "check_generation", "check_new_job",
    "check_queue", "check_storage", "limits_for", "release", "release_after_commit", "standing",
    "waiting_line",
]  # fmt: skip
