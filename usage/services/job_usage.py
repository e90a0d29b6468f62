"""A job's device time and cost, every attempt together, and how far its
estimate was from them: what the job page and the job's API answer show.

An attempt still running counts up to its last lease renewal
(device_time.py); a job that never ran has no usage (None).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from jobs.human import human_duration
from usage.services import device_time, prices


@dataclass(frozen=True)
class JobUsage:
    seconds: float
    cost: Decimal
    # Some attempt ran on a device with a price: the cost is worth showing.
    priced: bool

    def as_dict(self) -> dict:
        """The API's `usage`: device_seconds, cost (in `currency`) and currency."""
        return {
            "device_seconds": round(self.seconds, 1),
            "cost": float(round(self.cost, 4)),
            "currency": prices.currency(),
        }

    def in_words(self) -> str:
        """ "4 min 51 s · $0.08" (the cost only when it has a price)."""
        time = human_duration(self.seconds)
        return f"{time} · {prices.money(self.cost)}" if self.priced else time


def usage_of_jobs(job_ids) -> dict:
    """{job id: JobUsage} for the jobs that ran (one query for them all)."""
    return {
        job_id: JobUsage(spent.seconds, spent.cost, spent.priced)
        for job_id, spent in device_time.spent_by_job(job_ids).items()
    }


def usage_of(job) -> JobUsage | None:
    return usage_of_jobs([job.pk]).get(job.pk)


def against_estimate(job, usage: JobUsage) -> str:
    """The estimate beside what the job took: "estimated 46 s · $0.01; took
    4 min 51 s · $0.08, 6.3× the estimate" ("took …" alone with no estimate)."""
    took = f"took {usage.in_words()}"
    estimated = (job.estimate or {}).get("seconds")
    if not estimated:
        return took[:1].upper() + took[1:]
    guess = human_duration(estimated)
    cost = (job.estimate or {}).get("cost")
    if cost is not None and usage.priced:
        guess += f" · {prices.money(cost, job.estimate.get('currency'))}"
    return f"estimated {guess}; {took}, {_times(usage.seconds / estimated)} the estimate"


def _times(ratio: float) -> str:
    """6.3×, 12×, 0.05×: two significant figures or so, never "0.0×"."""
    if ratio >= 10:
        return f"{ratio:,.0f}×"
    return f"{ratio:.1f}×" if ratio >= 0.1 else f"{ratio:.2f}×"


def job_page_figures(job) -> dict:
    """The job page's Device time card, once the job is over and ran:
    `device_time` and `device_time_vs_estimate` ("" otherwise)."""
    usage = usage_of(job) if job.is_finished else None
    if usage is None:
        return {"device_time": "", "device_time_vs_estimate": ""}
    return {
        "device_time": usage.in_words(),
        "device_time_vs_estimate": against_estimate(job, usage),
    }
