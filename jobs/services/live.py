"""Live messages about jobs, sent to channel-layer groups after the database write.

The database is the log; these messages are the doorbell that also carries
the data. A job's page listens on `job_group(id)`; the jobs list listens on
`owner_group(user id)`. Each stored point goes out with the job's figures
as stored after it (`publish_point`): the page's summary beside the point,
the list's summary to the lists; the page renders `page_summary` on load, so
a reload shows what the live page showed. Every send goes through the
process's long-lived publisher (`studio.events`), and a failed send never
fails the caller.

Anything sent here may be lost, so a reader converges on the database by
asking again with its cursor (`stored_since`): the step it holds points
through and the newest attempt they came from. A point is one (attempt, step,
kind) row, and a resumed attempt deletes earlier attempts' points past its
checkpoint (`ledger.record_start`), so a cursor from an older attempt may be
answered with a rewind before the points.
"""

from dataclasses import dataclass
from typing import Literal, TypedDict

from django.db.models import Count, Max, Q

from studio.events import publish


class MetricPayload(TypedDict):
    attempt: int
    step: int
    kind: Literal["train", "eval"]
    epoch: float
    train_loss: float | None
    val_loss: float | None
    accuracy: float | None
    reward_margin: float | None
    preference_accuracy: float | None
    learning_rate: float | None
    grad_norm: float | None
    tokens_per_second: float | None
    tokens: int
    elapsed: float
    eta: float | None
    total_steps: int


class EventPayload(TypedDict):
    id: int
    created_at: str
    kind: str
    level: str
    message: str
    to_status: str


def job_group(job_id) -> str:
    return f"job-{job_id}"


def owner_group(user_id) -> str:
    return f"jobs-of-{user_id}"


# Operators' jobs list shows everyone's jobs: it listens here.
STAFF_GROUP = "jobs-of-staff"


def list_group(user) -> str:
    return STAFF_GROUP if user.is_staff else owner_group(user.pk)


def metric_payload(point, total_steps: int) -> MetricPayload:
    return {
        "attempt": point.attempt,
        "step": point.step,
        "kind": point.kind,
        "epoch": point.epoch,
        "train_loss": point.train_loss,
        "val_loss": point.val_loss,
        "accuracy": point.accuracy,
        "reward_margin": point.reward_margin,
        "preference_accuracy": point.preference_accuracy,
        "learning_rate": point.learning_rate,
        "grad_norm": point.grad_norm,
        "tokens_per_second": point.tokens_per_second,
        "tokens": point.tokens,
        "elapsed": point.elapsed,
        "eta": point.eta,
        "total_steps": total_steps,
    }


def event_payload(event) -> EventPayload:
    return {
        "id": event.pk,
        "created_at": event.created_at.isoformat(),
        "kind": event.kind,
        "level": event.level,
        "message": event.message,
        "to_status": event.to_status,
    }


@dataclass(frozen=True)
class StoredPoints:
    """What a reader with a cursor is missing, and what the database holds in all."""

    rewind_to: int | None  # drop held points of attempts <= the cursor's past this step
    after_step: int  # the points to send are those after this step
    count: int  # every stored point of the job...
    last_step: int  # ...through this step (-1: none)


def stored_since(job, *, after_step: int, attempt: int = 0) -> StoredPoints:
    """Where a reader holding points through `after_step`, the newest of them
    from `attempt` (0: unknown), stands against the database; one query.

    When a later attempt resumed from an earlier step, the points of attempts
    up to `attempt` now end at the highest step still stored for them: what
    the reader holds of those attempts past it is gone (`rewind_to`), and the
    points to send start there, since the later attempt's points below the
    reader's cursor are new to it.
    """
    from jobs.models import MetricPoint

    stored = MetricPoint.objects.filter(job=job).aggregate(
        count=Count("id"),
        last_step=Max("step"),
        last_of_attempt=Max("step", filter=Q(attempt__lte=attempt)),
    )
    last_step = -1 if stored["last_step"] is None else stored["last_step"]
    rewind_to = None
    if 0 < attempt < job.attempt:
        kept = stored["last_of_attempt"]
        kept = -1 if kept is None else kept
        if kept < after_step:
            rewind_to = kept
    return StoredPoints(
        rewind_to=rewind_to,
        after_step=after_step if rewind_to is None else rewind_to,
        count=stored["count"],
        last_step=last_step,
    )


def latest_point(job):
    """The newest point of the job's current attempt (None before it logs one):
    its `elapsed` is the attempt's training time so far."""
    from jobs.models import MetricPoint

    return (
        MetricPoint.objects.filter(job=job, attempt=job.attempt).order_by("-elapsed", "-id").first()
    )


def time_left(job, latest) -> float | None:
    """Seconds left: none once the job is over; else the worker's estimate;
    else the attempt's measured rate (steps done over the time they took)
    applied to the steps left. A first attempt starts at step 0 at 0 s; a
    resumed one is measured from its own first point."""
    if job.is_finished:
        return None
    if job.eta_seconds is not None:
        return job.eta_seconds
    if latest is None or not job.total_steps:
        return None
    start_step, start_elapsed = 0, 0.0
    if job.attempt > 1:
        from jobs.models import MetricPoint

        first = (
            MetricPoint.objects.filter(job=job, attempt=job.attempt)
            .order_by("elapsed", "id")
            .first()
        )
        start_step, start_elapsed = first.step, first.elapsed
    done, seconds = latest.step - start_step, latest.elapsed - start_elapsed
    if done <= 0 or seconds <= 0:
        return None
    return round(seconds / done * max(0, job.total_steps - latest.step), 1)


_LOOK_IT_UP = object()


def page_summary(job, latest=_LOOK_IT_UP) -> dict:
    """The job page's figures: the list's summary and what only the page
    shows. `latest` is the current attempt's newest point when the caller
    holds it (one query less); the page renders these same values on load."""
    from jobs.services.lifecycle import job_summary

    if latest is _LOOK_IT_UP:
        latest = latest_point(job)
    return {
        **job_summary(job),
        "tokens_per_second": job.tokens_per_second,
        "best_val_loss": job.best_val_loss,
        "elapsed_seconds": None if latest is None else latest.elapsed,
        "time_left_seconds": time_left(job, latest),
    }


def publish_metric(job_id, payload: MetricPayload):
    return publish(job_group(job_id), {"type": "job.metric", "point": payload})


def publish_event(event):
    return publish(job_group(event.job_id), {"type": "job.event", "event": event_payload(event)})


def publish_point(point, total_steps: int) -> None:
    """One stored point, with every figure it moved: the job's page gets the
    point and its summary in one message, the jobs lists the job's summary
    (one read of the job per logged step)."""
    from jobs.models import FineTuneJob
    from jobs.services.lifecycle import job_summary

    payload = metric_payload(point, total_steps)
    job = FineTuneJob.objects.filter(pk=point.job_id).first()
    if job is None:
        return
    # A point of an attempt that lost the job is not the attempt's newest.
    latest = point if point.attempt == job.attempt else _LOOK_IT_UP
    message = {"type": "job.metric", "point": payload, "summary": page_summary(job, latest)}
    publish(job_group(job.pk), message)
    _publish_to_lists(job, job_summary(job))


def publish_summary(job_id) -> None:
    from jobs.models import FineTuneJob
    from jobs.services.lifecycle import job_summary

    job = FineTuneJob.objects.filter(pk=job_id).first()
    if job is None:
        return
    publish(job_group(job_id), {"type": "job.summary", "job": page_summary(job)})
    _publish_to_lists(job, job_summary(job))


def _publish_to_lists(job, summary: dict) -> None:
    message = {"type": "job.summary", "job": summary}
    publish(owner_group(job.owner_id), message)
    publish(STAFF_GROUP, message)
