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

from audit.models import Action
from audit.services import record
from jobs.models import FineTuneJob, JobStatus, ModelTask
from jobs.numbers import NumberError, read_number
from jobs.vocabulary import PREFERENCE_OBJECTIVES, Adapter
from serving.models import Evaluation, EvaluationStatus, EvaluationTrigger
from studio import figures
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
    if job.method == Adapter.FULL:
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
        return read_number(value, whole=True, lowest=1, highest=MAX_SAMPLE_SIZE)
    except NumberError as refused:
        # The job page's form asks for it; its words, not a field path.
        raise EvaluationRefused("sample_size", f"The number of rows {refused.message}") from None


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
        rows = f"{job.name}: {evaluation.sample_size:,} rows"
        record(Action.CREATE, evaluation, target_name=rows, detail={"trigger": trigger})
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


# (name, higher is better, drawn as a bar); each name's label and how its
# value reads are studio/figures.py's.
METRICS = {
    ModelTask.SEQUENCE_CLASSIFICATION: [
        ("accuracy", True, True),
        ("macro_f1", True, True),
    ],
    ModelTask.CAUSAL_LM: [
        ("exact_match", True, True),
        ("rouge_l", True, True),
        ("val_loss", False, False),
        ("perplexity", False, False),
    ],
}


# Preference jobs (DPO, KTO) against the model they started from
# (serving/engine/preference.py): whichever their model task.
PREFERENCE_METRICS = [("preference_accuracy", True, True), ("mean_margin", True, False)]


def metric_rows(evaluation: Evaluation) -> list[MetricRow]:
    results = evaluation.results or {}
    base, tuned = results.get("base", {}), results.get("fine_tuned", {})
    job = evaluation.job
    rows = (
        PREFERENCE_METRICS if job.objective in PREFERENCE_OBJECTIVES else METRICS.get(job.task, [])
    )
    return [
        MetricRow(key, figures.label(key), base.get(key), tuned.get(key), higher, percent)
        for key, higher, percent in rows
    ]


def headline(evaluation: Evaluation) -> MetricRow | None:
    """The figure the job page leads with: accuracy, or exact match."""
    rows = metric_rows(evaluation)
    return rows[0] if rows else None


def evaluation_summary(evaluation: Evaluation, *, staff: bool = False) -> dict:
    """The API's view of an evaluation; `error_detail` (the exception behind
    its error) for `staff` only."""
    results = evaluation.results or {}
    summary = {
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
    if staff and evaluation.error_detail:
        summary["error_detail"] = evaluation.error_detail
    return summary


# --- a classifier's figures, class by class -------------------------------------------------

# A confusion cell's background, by its count against the matrix's largest
# (in tenths), and the text colour that reads on it at 4.5:1 or better
# (WCAG AA): tailor.css draws `shade-0` … `shade-10` from one ramp, light
# tints under dark text, then dark blues under white text.
SHADES = 10


@dataclass(frozen=True)
class ConfusionTable:
    title: str
    rows: list[dict]  # {"label", "cells": [{"count", "shade", "right"}]}
    total: int


def confusion_tables(evaluation: Evaluation) -> list[ConfusionTable]:
    """The base's and the fine-tune's confusion matrices (rows: true label)."""
    results = evaluation.results or {}
    labels = results.get("labels") or []
    tables = []
    for key, title in (("base", "Base"), ("fine_tuned", "Fine-tuned")):
        matrix = (results.get(key) or {}).get("confusion")
        if not labels or not matrix:
            continue
        peak = max((max(row) for row in matrix), default=0) or 1
        rows = [
            {"label": label, "cells": [
                {"count": count, "shade": round(SHADES * count / peak), "right": i == j}
                for j, count in enumerate(row)
            ]}
            for i, (label, row) in enumerate(zip(labels, matrix, strict=False))
        ]  # fmt: skip
        tables.append(ConfusionTable(title, rows, sum(sum(row) for row in matrix)))
    return tables


@dataclass(frozen=True)
class ClassRow:
    label: str
    rows: int  # validation rows whose true label this is
    base_f1: float | None
    fine_tuned_f1: float | None

    @property
    def change(self) -> float | None:
        if self.base_f1 is None or self.fine_tuned_f1 is None:
            return None
        return self.fine_tuned_f1 - self.base_f1


def _f1(matrix: list[list[int]], index: int) -> float | None:
    """F1 of one class: 2TP / (rows of the class + rows predicted as it)."""
    actual = sum(matrix[index])
    predicted = sum(row[index] for row in matrix)
    if actual + predicted == 0:
        return None
    return 2 * matrix[index][index] / (actual + predicted)


def class_rows(evaluation: Evaluation) -> list[ClassRow]:
    """Each class's rows and F1, base against fine-tuned (from the confusion matrices)."""
    results = evaluation.results or {}
    labels = results.get("labels") or []
    base = (results.get("base") or {}).get("confusion")
    tuned = (results.get("fine_tuned") or {}).get("confusion")
    if not labels or not tuned or len(tuned) != len(labels):
        return []
    return [
        ClassRow(
            label,
            sum(tuned[i]),
            _f1(base, i) if base and len(base) == len(labels) else None,
            _f1(tuned, i),
        )
        for i, label in enumerate(labels)
    ]
