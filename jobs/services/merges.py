"""Merging adapters: the checks of a merge and the job that makes it.

A merge is an ordinary job (objective "merge"): its configuration's `merge`
section names the source jobs, their weights, PEFT's combination and its
density; the training worker runs it (jobs/training/merge.py) with the
sources' adapter folders, and its result is served, listed and downloaded
as any fine-tune's. It keeps the first source as its parent, and that
source's dataset (a job has one; the merge's evaluation reads it).

Which adapters merge: two to MAX_SOURCES succeeded jobs of the user's own,
each with an adapter (not a full fine-tune), of one base model, one task
and one adapter kind; text generation only (a classifier's adapter carries
a trained head PEFT cannot combine); for `linear`, one rank.
"""

from __future__ import annotations

import uuid

from datasets_app.models import DatasetStatus
from jobs import config as cfg
from jobs.models import FineTuneJob, JobStatus
from jobs.numbers import NumberError, read_number
from jobs.services import catalog
from jobs.services.drafts import JobDraft
from jobs.services.lifecycle import create_job
from jobs.vocabulary import ADAPTER_NAMES, CAUSAL_LM, Adapter, ObjectiveName
from usage.services import prices

MIN_SOURCES = 2
# Each source's adapter is held in memory beside the base while they merge.
MAX_SOURCES = 8
MAX_WEIGHT = 10
# Loading the base and each adapter, merging, saving: seconds on tailor-tiny
# on 2 CPU cores; a larger base's load is the weight bytes at a disk's pace.
_SETUP_SECONDS = 20
_SECONDS_PER_SOURCE = 2
_LOAD_BYTES_PER_SECOND = 200 * 1024**2


def _refused(field: str, message: str) -> cfg.ConfigError:
    return cfg.ConfigError([cfg.FieldError(field, message)])


def _source_ids(sources) -> list[str]:
    if isinstance(sources, str):
        sources = [part for part in sources.replace(",", " ").split() if part]
    if not isinstance(sources, list | tuple) or not all(isinstance(s, str) for s in sources):
        raise _refused("merge.sources", "must be a list of job ids.")
    ids = [s.strip() for s in sources if s.strip()]
    if len(ids) < MIN_SOURCES:
        raise _refused("merge.sources", "choose at least two jobs whose adapters to merge.")
    if len(ids) > MAX_SOURCES:
        raise _refused(
            "merge.sources", f"choose at most {MAX_SOURCES} jobs; this merge names {len(ids)}."
        )
    if len(set(ids)) != len(ids):
        raise _refused("merge.sources", "names a job twice; list each job once.")
    return ids


def _source_jobs(user, ids: list[str]) -> list[FineTuneJob]:
    """The user's own jobs of `ids`, in order; any other id is "no such job"
    (named by its place in the list: the answer never echoes another's id)."""
    wanted = {}
    for number, job_id in enumerate(ids, 1):
        try:
            wanted[job_id] = uuid.UUID(job_id)
        except ValueError:
            raise _refused(
                "merge.sources", f"job {number} in the list: no such job of yours."
            ) from None
    found = (
        FineTuneJob.objects.filter(owner=user, pk__in=wanted.values())
        .select_related("base_model", "dataset")
        .in_bulk()
    )
    for number, pk in enumerate(wanted.values(), 1):
        if pk not in found:
            raise _refused("merge.sources", f"job {number} in the list: no such job of yours.")
    return [found[wanted[job_id]] for job_id in ids]


def _adapter_rank(job: FineTuneJob) -> int:
    """The rank of the adapter `job` made (a merge's is its sources' largest)."""
    if job.objective == ObjectiveName.MERGE:
        return int((job.final_metrics or {}).get("rank") or 0)
    return int((job.config.get("lora") or {}).get("rank") or 0)


def _source_errors(jobs: list[FineTuneJob], combination: str) -> list[str]:
    errors = []
    for job in jobs:
        if job.status != JobStatus.SUCCEEDED or not job.adapter_path:
            errors.append(
                f"“{job.name}” is {job.get_status_display().lower()}: only a succeeded "
                "job's adapter can be merged."
            )
        elif job.method == Adapter.FULL:
            errors.append(
                f"“{job.name}” is a full fine-tune, which has no adapter to merge; "
                "choose LoRA or QLoRA jobs."
            )
    if errors:
        return errors
    first = jobs[0]
    if len({job.base_model_id for job in jobs}) > 1:
        bases = ", ".join(sorted({job.base_model_id for job in jobs}))
        errors.append(f"the jobs have different base models ({bases}); merge adapters of one base.")
    if len({job.method for job in jobs}) > 1:
        kinds = ", ".join(sorted({ADAPTER_NAMES.get(job.method, job.method) for job in jobs}))
        errors.append(
            f"the jobs trained different adapter kinds ({kinds}); merge adapters of one kind."
        )
    if any(job.task != CAUSAL_LM for job in jobs):
        errors.append(
            "classifiers cannot be merged: each carries its own trained label head, which "
            "PEFT's weighted merge cannot combine. Choose text generation jobs."
        )
    ranks = [_adapter_rank(job) for job in jobs]
    if not errors and combination == "linear" and len(set(ranks)) > 1:
        errors.append(
            f"a linear merge needs adapters of one rank; these have ranks "
            f"{', '.join(str(r) for r in ranks)}. Choose TIES or DARE, or jobs of one rank."
        )
    dataset = first.dataset
    if not errors and (dataset.deleted_at is not None or dataset.status != DatasetStatus.READY):
        errors.append(
            f"the dataset of “{first.name}” (the first job) was deleted or is not ready; "
            "list another job first: a merge keeps its first job's dataset."
        )
    return errors


def _weights(weights, count: int) -> list[float]:
    if weights in (None, "", []):
        return []
    if isinstance(weights, str):
        weights = [part for part in weights.replace(",", " ").split() if part]
    if not isinstance(weights, list | tuple):
        raise _refused("merge.weights", "must be a list of numbers, one per job.")
    if len(weights) != count:
        raise _refused(
            "merge.weights",
            f"needs one weight per job: {count} jobs, {len(weights)} weights "
            "(or none, for equal weights).",
        )
    read = []
    for number, weight in enumerate(weights, 1):
        try:
            read.append(float(read_number(weight, whole=False, lowest=0, highest=MAX_WEIGHT,
                                          lowest_open=True)))  # fmt: skip
        except NumberError as error:
            raise _refused("merge.weights", f"weight {number} {error.message}") from None
    return read


def check_merge(user, *, sources, weights=None, combination="linear", density=0.5,
                name: str = "") -> JobDraft:  # fmt: skip
    """A merge of `sources` (job ids, in order) checked for `user`, as a draft
    `create_merge` stores. Raises cfg.ConfigError naming every bad field;
    writes nothing."""
    errors: list[cfg.FieldError] = []
    if not isinstance(combination, str) or combination not in cfg.MERGE_COMBINATIONS:
        errors.append(cfg.FieldError(
            "merge.combination", f"must be one of {', '.join(cfg.MERGE_COMBINATIONS)}.",
        ))  # fmt: skip
    try:
        density = float(read_number(density, whole=False, lowest=0, highest=1, lowest_open=True))
    except NumberError as error:
        errors.append(cfg.FieldError("merge.density", error.message))
    if name is not None and not isinstance(name, str):
        errors.append(cfg.FieldError("name", "must be text."))
    name = (name or "").strip() if isinstance(name, str) else ""
    ids = jobs = None
    try:
        ids = _source_ids(sources)
        jobs = _source_jobs(user, ids)
    except cfg.ConfigError as error:
        errors.extend(error.errors)
    if ids is not None:
        try:
            weights = _weights(weights, len(ids))
        except cfg.ConfigError as error:
            errors.extend(error.errors)
    if jobs is not None and (found := _source_errors(jobs, combination)):
        errors.extend(cfg.FieldError("merge.sources", message) for message in found)
    if errors:
        raise cfg.ConfigError(errors)
    return _draft(jobs, weights, combination, density, name)


def _draft(jobs, weights, combination, density, name) -> JobDraft:
    first = jobs[0]
    model = first.base_model
    config = cfg.JobConfig(
        name=name[:200] or ("Merge of " + " + ".join(job.name for job in jobs))[:200],
        preset="quick",
        objective=ObjectiveName.MERGE,
    )
    config.data.dataset = str(first.dataset_id)
    config.model.base_model = model.id
    config.model.method = first.method
    config.lora.rank = max(_adapter_rank(job) for job in jobs) or config.lora.rank
    config.merge = cfg.MergeConfig(
        sources=[str(job.pk) for job in jobs], weights=weights, combination=combination,
        density=density,
    )  # fmt: skip
    steps = len(jobs) + 1  # one per adapter loaded, one for the merge (training/merge.py)
    plan = cfg.Plan(
        rows=0, tokens_per_row=0, tokens_per_epoch=0, sequences_per_epoch=0, rows_per_step=0,
        steps_per_epoch=steps, total_steps=steps, total_tokens=0,
    )  # fmt: skip
    return JobDraft(
        config=config, model=model, dataset=first.dataset, validation_dataset=None,
        plan=plan, estimate=merge_estimate(model, len(jobs)), parent=first,
    )  # fmt: skip


def merge_memory_bytes(parameters: int, *, gpu: bool) -> int:
    """Memory of an un-quantised base: 2 bytes a parameter in bfloat16 on a
    GPU, 4 in float32 on a CPU (jobs/training/loading.py compute_dtype_name)."""
    return parameters * (2 if gpu else 4)


def merge_estimate(model, sources: int) -> dict:
    """A merge's estimate, in the shape of a training job's (estimates.estimate)."""
    devices = prices.training_devices()
    gpu = any(device != prices.CPU for device in devices)
    seconds = round(
        _SETUP_SECONDS + _SECONDS_PER_SOURCE * sources
        + catalog.weight_bytes(model.parameters) / _LOAD_BYTES_PER_SECOND
    )  # fmt: skip
    return {
        "tokens": 0,
        "steps": sources + 1,
        "seconds": seconds,
        "memory_bytes": merge_memory_bytes(model.parameters, gpu=gpu),
        "runs": 0,
        "basis": "loading the base and each adapter; nothing trains",
        **prices.priced_estimate(seconds),
    }


def merge_again(user, job: FineTuneJob) -> JobDraft:
    """A merge job's sources and settings checked again (a retry)."""
    merge = job.config["merge"]
    return check_merge(
        user, sources=merge["sources"], weights=merge["weights"],
        combination=merge["combination"], density=merge["density"], name=job.name,
    )  # fmt: skip


def create_merge(user, draft: JobDraft) -> FineTuneJob:
    """Store and queue the merge job of a checked draft (audited by create_job).
    QuotaExceeded (quotas/) when a hard limit refuses it."""
    return create_job(user, draft, start=True)
