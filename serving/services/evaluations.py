"""Evaluations: base vs fine-tuned on a job's held-out rows.

One is requested when a job succeeds (the `job_succeeded` signal) and on
demand; the inference worker runs it (serving/worker.py) and stores the
engine's figures, which the job page shows as a table, a chart and sample
by sample.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from jobs.models import FineTuneJob, JobStatus, ModelTask
from serving.models import Evaluation, EvaluationStatus, EvaluationTrigger
from studio.services import leases

MAX_SAMPLE_SIZE = 500


class EvaluationRefused(Exception):
    def __init__(self, field: str, message: str):
        self.field, self.message = field, message
        super().__init__(message)


def can_evaluate(job: FineTuneJob) -> str | None:
    """Why this job cannot be evaluated, or None."""
    if job.status != JobStatus.SUCCEEDED or not job.adapter_path:
        return "Only a job that has succeeded can be evaluated."
    if job.method == "full":
        return (
            "A full fine-tune has no adapter to set against its base: "
            "compare them in the playground."
        )
    if not job.validation_file.exists():
        return "This job has no validation rows to evaluate on."
    return None


def read_sample_size(value) -> int:
    if value in (None, ""):
        return settings.TAILOR_EVAL_SAMPLE_SIZE
    try:
        size = int(value)
    except (TypeError, ValueError):
        raise EvaluationRefused("sample_size", "sample_size: must be a whole number.") from None
    if isinstance(value, float | bool) or not 1 <= size <= MAX_SAMPLE_SIZE:
        raise EvaluationRefused(
            "sample_size", f"sample_size: must be a whole number from 1 to {MAX_SAMPLE_SIZE}."
        )
    return size


def request_evaluation(job: FineTuneJob, *, trigger: str, sample_size: int | None = None
                       ) -> Evaluation:  # fmt: skip
    """Store a queued evaluation and send it to the inference worker after commit.

    A second request while one is queued or running returns that one.
    """
    reason = can_evaluate(job)
    if reason:
        raise EvaluationRefused("job", reason)
    kind = leases.kind("evaluation")
    for running in job.evaluations.filter(status=EvaluationStatus.RUNNING):
        # One whose worker died is taken back now, not at the reaper's next run.
        leases.reap_if_expired(kind, running.pk)
    with transaction.atomic():
        FineTuneJob.objects.select_for_update().filter(pk=job.pk).first()
        pending = job.evaluations.filter(
            status__in=(EvaluationStatus.QUEUED, EvaluationStatus.RUNNING)
        ).first()
        if pending is not None:
            return pending
        evaluation = Evaluation.objects.create(
            job=job,
            trigger=trigger,
            sample_size=sample_size or settings.TAILOR_EVAL_SAMPLE_SIZE,
        )
        leases.send_after_commit(kind, evaluation.pk)
    return evaluation


def evaluate_after_success(sender, job, **kwargs) -> None:
    """Receiver of jobs' `job_succeeded`: every finished job gets its figures."""
    # No validation rows: the page says so and offers nothing to run.
    with contextlib.suppress(EvaluationRefused):
        request_evaluation(job, trigger=EvaluationTrigger.AUTOMATIC)


def latest_evaluation(job: FineTuneJob) -> Evaluation | None:
    return job.evaluations.order_by("-created_at").first()


# --- what pages and the API show ----------------------------------------------------------


@dataclass(frozen=True)
class MetricRow:
    key: str
    label: str
    base: float | None
    fine_tuned: float | None
    higher_is_better: bool
    percent: bool  # shown as a percentage and drawn as a bar

    @property
    def change(self) -> float | None:
        if self.base is None or self.fine_tuned is None:
            return None
        return self.fine_tuned - self.base

    @property
    def improved(self) -> bool | None:
        if self.change is None or self.change == 0:
            return None
        return (self.change > 0) == self.higher_is_better

    @property
    def base_width(self) -> int:
        return _width(self.base)

    @property
    def fine_tuned_width(self) -> int:
        return _width(self.fine_tuned)


def _width(value: float | None) -> int:
    return round(100 * max(0.0, min(1.0, value))) if value is not None else 0


METRICS = {
    ModelTask.SEQUENCE_CLASSIFICATION: [
        ("accuracy", "Accuracy", True, True),
        ("macro_f1", "Macro-F1", True, True),
    ],
    ModelTask.CAUSAL_LM: [
        ("exact_match", "Exact match", True, True),
        ("rouge_l", "ROUGE-L", True, True),
        ("val_loss", "Validation loss", False, False),
        ("perplexity", "Perplexity", False, False),
    ],
}


def metric_rows(evaluation: Evaluation) -> list[MetricRow]:
    results = evaluation.results or {}
    base, tuned = results.get("base", {}), results.get("fine_tuned", {})
    return [
        MetricRow(key, label, base.get(key), tuned.get(key), higher, percent)
        for key, label, higher, percent in METRICS.get(evaluation.job.task, [])
    ]


def headline(evaluation: Evaluation) -> MetricRow | None:
    """The figure the job page leads with: accuracy, or exact match."""
    rows = metric_rows(evaluation)
    return rows[0] if rows else None


def evaluation_summary(evaluation: Evaluation) -> dict:
    """The API's and the live page's view of an evaluation."""
    results = evaluation.results or {}
    return {
        "id": str(evaluation.pk),
        "job": str(evaluation.job_id),
        "status": evaluation.status,
        "trigger": evaluation.trigger,
        "sample_size": evaluation.sample_size,
        "done": evaluation.done,
        "total": evaluation.total,
        "error": evaluation.error or None,
        "created_at": evaluation.created_at.isoformat(),
        "finished_at": evaluation.finished_at.isoformat() if evaluation.finished_at else None,
        "metrics": {
            "base": results.get("base"),
            "fine_tuned": results.get("fine_tuned"),
        },
        "labels": results.get("labels"),
        "rows": results.get("rows"),
        "samples": results.get("samples", []),
    }
