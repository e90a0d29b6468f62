"""What the inference worker runs: generations and evaluations.

The Celery tasks (`serving.tasks`) only call these functions. The process
keeps one `ModelPool` for its whole life: base models load once, adapters
attach to them by name, and the least recently used models are evicted under
TAILOR_SERVING_MEMORY_MB. Generation streams to `generation_group(id)`: the
texts so far, at most every PROGRESS_INTERVAL_S, then the stored results.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import time
from pathlib import Path

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from jobs.models import FineTuneJob, ModelTask
from jobs.services import catalog, sweeps, worker_files
from jobs.services.lifecycle import flags_client
from jobs.vocabulary import PREFERENCE_OBJECTIVES, Adapter
from serving.errors import ServingFailure, detail_of, failure, sentence
from serving.models import Evaluation, EvaluationStatus, Generation, GenerationStatus
from serving.services import generations
from studio.events import publish
from studio.services import leases, object_store
from studio.services.db_retry import retry_database
from studio.services.paths import inside

logger = logging.getLogger(__name__)

# 25 messages a second at most: smooth on screen, light on Redis whatever
# the model's speed.
PROGRESS_INTERVAL_S = 0.04
# The stop check runs every generated token; Redis is asked at most this often.
CANCEL_CHECK_INTERVAL_S = 0.25


@functools.cache
def model_pool():
    """This process's pool (created on first use: importing stays light)."""
    from serving.engine import ModelPool

    return ModelPool(settings.TAILOR_SERVING_MEMORY_MB * 2**20)


# --- what to load ---------------------------------------------------------------------------


def adapter_labels(job: FineTuneJob) -> tuple[str, ...]:
    path = worker_files.here(job, job.adapter_path) / "tailor_labels.json"
    if not inside(job.folder, path):
        return ()
    try:
        return tuple(json.loads(path.read_text()))
    except (OSError, ValueError):
        return ()


def job_pane(job: FineTuneJob):
    """The engine's pane for a fine-tuned model: its base as it was trained
    (4-bit for QLoRA) with its adapter; a full fine-tune is a model of its own.

    Raises ServingFailure when the recorded adapter lies outside the job's
    folder: the worker loads nothing from anywhere else.
    """
    from serving.engine import AdapterSpec, ModelSpec, PaneSpec

    adapter = worker_files.here(job, job.adapter_path)
    if not inside(job.folder, adapter):
        raise failure(
            "model_load", "adapter_outside", model=job.fine_tuned_model,
            detail=f"the adapter is recorded at {job.adapter_path}",
        )  # fmt: skip
    fetch_adapter_once(job)
    labels = adapter_labels(job) if job.task == ModelTask.SEQUENCE_CLASSIFICATION else ()
    if job.method == Adapter.FULL:
        return PaneSpec(ModelSpec(str(adapter), job.task, False, labels))
    quantized = job.method == Adapter.QLORA and job.task == ModelTask.CAUSAL_LM
    base = ModelSpec(catalog.model_source(job.base_model), job.task, quantized, labels)
    return PaneSpec(base, AdapterSpec(f"ft_{job.pk.hex}", str(adapter)))


# Adapters this process has made present (object storage). A recorded
# adapter's files never change (a new attempt writes a folder of its own), so
# one fetch per process is enough: a generation does not ask the store again.
_fetched_adapters: set[tuple[str, str]] = set()


def fetch_adapter_once(job: FineTuneJob) -> None:
    """The job's adapter folder, present on this worker before it is loaded."""
    key = (str(job.pk), job.adapter_path)
    if key in _fetched_adapters:
        return
    try:
        worker_files.fetch_adapter(job)
    except object_store.StorageError as exc:
        raise failure(
            "model_load", "adapter_missing", model=job.fine_tuned_model, detail=str(exc)
        ) from exc
    _fetched_adapters.add(key)


def engine_panes(generation: Generation) -> list:
    """One engine pane per generation pane. The base pane matches the first
    adapter's base (quantisation, labels), so base and fine-tuned answers come
    from the same loaded model."""
    from serving.engine import ModelSpec, PaneSpec

    jobs = FineTuneJob.objects.in_bulk([p["job"] for p in generation.panes if p["job"]])
    missing = [p["model"] for p in generation.panes if p["job"] and p["job"] not in
               {str(job_id) for job_id in jobs}]  # fmt: skip
    if missing:
        raise failure("bad_input", "model_deleted", model=missing[0])
    fine_tuned = {str(job_id): job_pane(job) for job_id, job in jobs.items()}
    adapters = [fine_tuned[p["job"]] for p in generation.panes if p["job"] in fine_tuned]
    first_adapter = next((pane for pane in adapters if pane.adapter is not None), None)
    if first_adapter is not None:
        base = PaneSpec(first_adapter.model)
    else:
        base = PaneSpec(
            ModelSpec(catalog.model_source(generation.base_model), generation.task, False, ())
        )
    return [fine_tuned[p["job"]] if p["job"] else base for p in generation.panes]


# --- generations -----------------------------------------------------------------------------


class Stream:
    """Sends the texts so far to the generation's group, throttled, in order."""

    def __init__(self, generation_id):
        self.generation_id = str(generation_id)
        self.group = generations.generation_group(generation_id)
        self.seq = 0
        self.sent_at = 0.0
        self.pending: list[str] | None = None

    def send(self, kind: str, **data) -> None:
        self.seq += 1
        publish(self.group, {"type": kind, "seq": self.seq, "id": self.generation_id, **data})

    def progress(self, texts: list[str]) -> None:
        self.pending = list(texts)
        now = time.monotonic()
        if now - self.sent_at >= PROGRESS_INTERVAL_S:
            self.flush()
            self.sent_at = now

    def flush(self) -> None:
        if self.pending is not None:
            self.send("generation.progress", texts=self.pending)
            self.pending = None


class StopCheck:
    """Stops generating when the asker cancels, or when every pane has met a
    stop sequence (its text is cut there)."""

    def __init__(self, generation_id, stops: list[str], panes: int):
        self.key = generations.cancel_flag_key(generation_id)
        self.stops = stops
        self.stopped = [False] * panes
        self.cancelled = False
        self.checked_at = 0.0

    def cut(self, texts: list[str]) -> list[str]:
        if not self.stops:
            return texts
        cut = []
        for index, text in enumerate(texts):
            ends = [text.find(stop) for stop in self.stops if stop in text]
            if ends:
                self.stopped[index] = True
            cut.append(text[: min(ends)] if ends else text)
        return cut

    def __call__(self) -> bool:
        if self.stops and all(self.stopped):
            return True
        now = time.monotonic()
        if now - self.checked_at >= CANCEL_CHECK_INTERVAL_S:
            self.checked_at = now
            try:
                self.cancelled = bool(flags_client().exists(self.key))
            except Exception as exc:  # Redis away: keep generating rather than fail
                logger.warning("Could not read the cancel flag: %s", exc)
        return self.cancelled


def run_generation(generation_id: str, worker: str, *, hard_stop=None) -> str:
    """Answer one stored request; returns how it ended. Leased work: the
    lease is kept while tokens come, and the results are written only while
    this run holds the row."""
    kind = leases.kind("generation")
    attempt = retry_database(
        lambda: leases.claim(kind, generation_id, worker, started_at=timezone.now())
    )
    if attempt is None:
        return "not-claimed"  # given up by its asker, or taken by another worker
    keeper = leases.LeaseKeeper(kind, generation_id, attempt, on_stalled=hard_stop)
    keeper.start()
    try:
        return _answer(generation_id, attempt, keeper)
    finally:
        keeper.stop()


def _answer(generation_id: str, attempt: int, keeper) -> str:
    generation = Generation.objects.select_related("base_model").get(pk=generation_id)
    stream = Stream(generation_id)
    stream.send("generation.started", panes=generation.panes)
    stop = StopCheck(generation_id, generation.params.get("stop") or [], len(generation.panes))

    def on_progress(texts):
        keeper.progressed()
        stream.progress(stop.cut(texts))

    status, error, detail, results = GenerationStatus.SUCCEEDED, "", "", []
    try:
        from serving.engine import GenerationParams, classify, generate

        panes = engine_panes(generation)
        if generation.task == ModelTask.SEQUENCE_CLASSIFICATION:
            answers = classify(model_pool(), panes, text=generation.text)
        else:
            params = {k: v for k, v in generation.params.items() if k != "stop"}
            answers = generate(
                model_pool(),
                panes,
                messages=generation.messages or None,
                prompt=None if generation.messages else generation.text,
                params=GenerationParams(**params),
                on_progress=on_progress,
                should_stop=stop,
            )
        results = [_result_dict(answer, stop, index) for index, answer in enumerate(answers)]
        if stop.cancelled:
            status = GenerationStatus.CANCELLED
    except ServingFailure as exc:
        status, error, detail = GenerationStatus.FAILED, exc.message, exc.detail
    except Exception as exc:
        logger.exception("Generation %s failed", generation_id)
        status, error, detail = GenerationStatus.FAILED, sentence("worker_error"), detail_of(exc)
    written = retry_database(
        lambda: leases.owned(leases.kind("generation"), generation_id, attempt).update(
            status=status, results=results, error=error, error_detail=detail,
            finished_at=timezone.now(), lease_expires_at=None, **_tokens(results),
        )
    )  # fmt: skip
    if not written:
        return "lost"  # the reaper already told the asker
    stream.flush()
    # The group's listeners show `error_detail` (and each result's) to staff only.
    stream.send("generation.done", status=status, error=error, error_detail=detail, results=results)
    with contextlib.suppress(Exception):  # the flag expires by itself
        flags_client().delete(stop.key)
    return status


def _tokens(results: list[dict]) -> dict:
    """The panes' tokens, summed: what the generation served (usage/, quotas)."""
    return {
        "prompt_tokens": sum(r.get("prompt_tokens") or 0 for r in results),
        "completion_tokens": sum(r.get("completion_tokens") or 0 for r in results),
    }


def _result_dict(answer, stop: StopCheck, index: int) -> dict:
    from dataclasses import asdict

    result = asdict(answer)
    if stop.stops:
        text = stop.cut([result["text"]])[0]
        if text != result["text"] or stop.stopped[index]:
            result["text"], result["finish_reason"] = text, "stop"
    return result


# --- evaluations -----------------------------------------------------------------------------


def _read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def run_evaluation(evaluation_id: str, worker: str = "worker", *, hard_stop=None) -> str:
    """Evaluate base and fine-tuned on the job's validation rows; store the
    figures. Leased work: progress after each sample keeps the lease, and
    every write is fenced on this run's attempt."""
    kind = leases.kind("evaluation")
    attempt = retry_database(
        lambda: leases.claim(kind, evaluation_id, worker, started_at=timezone.now())
    )
    if attempt is None:
        return "not-claimed"
    keeper = leases.LeaseKeeper(kind, evaluation_id, attempt, on_stalled=hard_stop)
    keeper.start()
    try:
        return _evaluate(evaluation_id, leases.owned(kind, evaluation_id, attempt), keeper)
    finally:
        keeper.stop()
        # A sweep that ranks by this figure moves on now, not at the reaper's next pass.
        job_id = Evaluation.objects.filter(pk=evaluation_id).values_list("job_id", flat=True)
        sweeps.job_ended(job_id.first())


def _evaluate(evaluation_id: str, owned, keeper) -> str:
    evaluation = Evaluation.objects.select_related("job", "job__base_model", "job__parent").get(
        pk=evaluation_id
    )
    job = evaluation.job

    def on_progress(done: int, total: int) -> None:
        keeper.progressed()
        owned.update(done=done, total=total)

    try:
        from serving.engine import evaluate_classification, evaluate_generation
        from serving.engine.preference import evaluate_preference

        # None stored: reading the file below fails as it always did.
        with contextlib.suppress(object_store.MissingObject):
            object_store.fetch(job.validation_file)  # the held-out rows, on this worker
        rows = _read_rows(job.validation_file)
        pane = job_pane(job)
        if pane.adapter is None:
            raise failure("bad_input", "full_fine_tune")
        evaluate = (
            evaluate_classification
            if job.task == ModelTask.SEQUENCE_CLASSIFICATION
            else evaluate_generation
        )
        more = {}
        if job.objective in PREFERENCE_OBJECTIVES:
            # Preference accuracy against the model the job started from.
            evaluate, more["parent"] = evaluate_preference, _parent_adapter(job)
        results = evaluate(
            model_pool(), pane.model, pane.adapter, rows,
            sample_size=evaluation.sample_size, on_progress=on_progress, **more,
        )  # fmt: skip
    except ServingFailure as exc:
        return _evaluation_failed(owned, exc.message, exc.detail)
    except Exception as exc:
        logger.exception("Evaluation %s failed", evaluation_id)
        return _evaluation_failed(owned, sentence("evaluation_error"), detail_of(exc))
    logger.info(
        "Evaluation of job %s on %s rows: base %s, fine-tuned %s",
        job.pk, results.get("rows"), _headline(results.get("base")),
        _headline(results.get("fine_tuned")),
    )  # fmt: skip
    written = retry_database(
        lambda: owned.update(
            status=EvaluationStatus.SUCCEEDED, results=results, done=F("total"),
            finished_at=timezone.now(), lease_expires_at=None,
        )
    )  # fmt: skip
    return "succeeded" if written else "lost"


def _parent_adapter(job: FineTuneJob):
    """The adapter a preference job started from (None: it started on the base)."""
    parent = job.parent
    if parent is None or not parent.adapter_path or parent.method == Adapter.FULL:
        return None
    return job_pane(parent).adapter


def _evaluation_failed(owned, message: str, detail: str) -> str:
    """Record the failure: `message` for everyone, `detail` for staff."""
    retry_database(
        lambda: owned.update(
            status=EvaluationStatus.FAILED, error=message, error_detail=detail,
            finished_at=timezone.now(), lease_expires_at=None,
        )
    )  # fmt: skip
    return "failed"


def _headline(figures: dict | None) -> str:
    numbers = {k: v for k, v in (figures or {}).items() if isinstance(v, float | int)}
    return ", ".join(f"{key} {value:.3f}" for key, value in numbers.items())
