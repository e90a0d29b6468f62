"""Where a job's adapter comes from: the objective its data asks for, the job
it starts from (`model.start_from`), and the line of parents above it.

A job may start from a succeeded job's adapter when both share the base
model and the adapter kind (a QLoRA adapter goes on training on the 4-bit
base, a LoRA one on the full-precision base; a full fine-tune has no adapter
to start from), and the parent is the user's own. The lineage a page shows
is the parent, its parent and so on, nearest first, stopping at a job the
viewer cannot see or after MAX_LINEAGE steps (a cycle cannot be made: a
parent is always older than its child, but a bound costs nothing).
"""

from __future__ import annotations

import uuid

from jobs import config as cfg
from jobs.models import FineTuneJob, JobStatus
from jobs.vocabulary import (
    OBJECTIVE_FOR_DATASET_TASK,
    OBJECTIVE_LABELS,
    Adapter,
    ObjectiveName,
)

MAX_LINEAGE = 20


def objective_for(config: cfg.JobConfig, dataset) -> str:
    """The objective a job on `dataset` trains with; ConfigError when the
    document names another (only a merge chooses its own)."""
    wanted = OBJECTIVE_FOR_DATASET_TASK.get(dataset.task, ObjectiveName.SUPERVISED)
    if config.objective and config.objective != wanted:
        raise cfg.ConfigError(
            [
                cfg.FieldError(
                    "objective",
                    f"“{dataset.name}” is {dataset.task} data, which trains with "
                    f"{OBJECTIVE_LABELS[wanted].lower()} ({wanted}), not "
                    f"{cfg.clipped(config.objective)}.",
                )
            ]
        )
    return wanted


def start_from(user, config: cfg.JobConfig, model) -> FineTuneJob | None:
    """The job `config.model.start_from` names, checked; None without one."""
    job_id = config.model.start_from
    if not job_id:
        return None

    def refuse(message: str):
        return cfg.ConfigError([cfg.FieldError("model.start_from", message)])

    try:
        uuid.UUID(str(job_id))
        parent = FineTuneJob.objects.filter(owner=user, pk=job_id).first()
    except ValueError:
        parent = None
    if parent is None:
        raise refuse("no such job of yours.")
    if parent.status != JobStatus.SUCCEEDED or not parent.adapter_path:
        raise refuse(f"“{parent.name}” has not succeeded: only a finished job's adapter trains on.")
    if parent.base_model_id != model.id:
        raise refuse(
            f"“{parent.name}” was trained on {parent.base_model_id}; this job's base is "
            f"{model.id}. An adapter trains on only with its own base."
        )
    if Adapter.FULL in (parent.method, config.model.method):
        raise refuse("a full fine-tune has no adapter to start from; choose QLoRA or LoRA.")
    if parent.method != config.model.method:
        raise refuse(
            f"“{parent.name}” trained a {parent.method_label} adapter; set the method to "
            f"{parent.method} to train it on."
        )
    return parent


def method_of(user, job_id) -> str | None:
    """The adapter kind of the user's job `job_id` (None: no such job)."""
    if not job_id:
        return None
    try:
        uuid.UUID(str(job_id))
    except ValueError:
        return None
    jobs = FineTuneJob.objects.filter(owner=user, pk=job_id)
    return jobs.values_list("method", flat=True).first()


def lineage(job: FineTuneJob, user) -> list[FineTuneJob]:
    """The job's parent, its parent, … nearest first, as far as `user` may see."""
    line: list[FineTuneJob] = []
    seen = {job.pk}
    current = job
    while current.parent_id and len(line) < MAX_LINEAGE and current.parent_id not in seen:
        parent = (
            FineTuneJob.objects.for_user(user)
            .select_related("dataset", "base_model")
            .filter(pk=current.parent_id)
            .first()
        )
        if parent is None:
            break
        line.append(parent)
        seen.add(parent.pk)
        current = parent
    return line


def merge_sources(job: FineTuneJob, user) -> list[dict]:
    """A merge's sources as its page lists them: {"job" (None once deleted or
    not the viewer's to see), "id", "weight"}, in merge order."""
    merge = (job.config or {}).get("merge") or {}
    ids = [str(source) for source in merge.get("sources") or []]
    weights = merge.get("weights") or [1.0] * len(ids)
    seen = FineTuneJob.objects.for_user(user).filter(pk__in=ids).in_bulk(field_name="pk")
    found = {str(pk): source for pk, source in seen.items()}
    return [
        {"job": found.get(source), "id": source, "weight": weight}
        for source, weight in zip(ids, weights, strict=False)
    ]


def page_context(job: FineTuneJob, user) -> dict:
    """What the job page shows of where its adapter comes from."""
    is_merge = job.objective == ObjectiveName.MERGE
    return {
        "objective_label": OBJECTIVE_LABELS.get(job.objective, job.objective),
        "lineage": lineage(job, user),
        "is_merge": is_merge,
        "merge_sources": merge_sources(job, user) if is_merge else [],
        "merge_combination": ((job.config or {}).get("merge") or {}).get("combination", ""),
    }


def start_choices(user, model, method: str) -> list[FineTuneJob]:
    """The user's succeeded jobs whose adapter a new job on `model` with
    `method` may start from (what `start_from` accepts), newest first."""
    if method == Adapter.FULL:
        return []
    return list(
        FineTuneJob.objects.filter(
            owner=user, status=JobStatus.SUCCEEDED, base_model=model, method=method
        )
        .exclude(adapter_path="")
        .select_related("dataset")
        .order_by("-finished_at")[:100]
    )
