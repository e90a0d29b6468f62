"""Live messages about jobs, sent to channel-layer groups after the database write.

The database is the log; these messages are the doorbell that also carries
the data. A job's page listens on `job_group(id)`; the jobs list listens on
`owner_group(user id)`. Every send goes through the process's long-lived
publisher (`studio.events`), and a failed send never fails the caller.
"""

from typing import Literal, TypedDict

from studio.events import publish


class MetricPayload(TypedDict):
    step: int
    kind: Literal["train", "eval"]
    epoch: float
    train_loss: float | None
    val_loss: float | None
    accuracy: float | None
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
        "step": point.step,
        "kind": point.kind,
        "epoch": point.epoch,
        "train_loss": point.train_loss,
        "val_loss": point.val_loss,
        "accuracy": point.accuracy,
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


def publish_metric(job_id, payload: MetricPayload):
    return publish(job_group(job_id), {"type": "job.metric", "point": payload})


def publish_event(event):
    return publish(job_group(event.job_id), {"type": "job.event", "event": event_payload(event)})


def publish_summary(job_id) -> None:
    from jobs.models import FineTuneJob
    from jobs.services.lifecycle import job_summary

    job = FineTuneJob.objects.filter(pk=job_id).first()
    if job is None:
        return
    message = {"type": "job.summary", "job": job_summary(job)}
    publish(job_group(job_id), message)
    publish(owner_group(job.owner_id), message)
    publish(STAFF_GROUP, message)
