"""Runs one job on a training worker: claim, heartbeat, train, finish.

The Celery task (`jobs.tasks.train_job`) only calls `run_job`. Training itself
is `jobs.training.run_training`, plain Python; this module connects it to the
ledger: every event it emits is stored (fenced on this run's attempt) and
sent live, and the stop check answers cancels and lost leases.
"""

import logging
import queue
import threading
import time
import traceback
from pathlib import Path

from django.conf import settings

from jobs import config as cfg
from jobs.models import JobStatus
from jobs.services import artifacts, catalog, ledger

logger = logging.getLogger(__name__)


class RunControl:
    """Why this run should stop, if it should: the user cancelled, or the run lost the job."""

    # The trainer asks every step; Redis is asked at most this often, so a
    # cancel lands within about a second without a round trip per step.
    FLAG_INTERVAL_S = 0.5

    def __init__(self, job_id, attempt: int):
        self.job_id, self.attempt = job_id, attempt
        self.cancelled = threading.Event()
        self.lost = threading.Event()
        self.flag_checked_at = 0.0

    def should_stop(self) -> bool:
        if self.lost.is_set() or self.cancelled.is_set():
            return True
        now = time.monotonic()
        if now - self.flag_checked_at >= self.FLAG_INTERVAL_S:
            self.flag_checked_at = now
            if ledger.cancel_requested(self.job_id):
                self.cancelled.set()
        return self.cancelled.is_set()


class Heartbeat(threading.Thread):
    """Renews the lease while the run lasts (a step, an evaluation or a save can
    take minutes) and notices a cancel or a lost job from the database."""

    def __init__(self, control: RunControl):
        super().__init__(name=f"lease-{control.job_id}", daemon=True)
        self.control = control
        self.done = threading.Event()

    def run(self) -> None:
        from django.db import close_old_connections

        interval = settings.TAILOR_HEARTBEAT_SECONDS
        while not self.done.wait(interval):
            try:
                status = ledger.renew_lease(self.control.job_id, self.control.attempt)
            except Exception:  # a database blip: try again next beat
                logger.exception("Lease renewal of job %s failed", self.control.job_id)
                continue
            finally:
                close_old_connections()
            if status is None:
                self.control.lost.set()
                return
            if status == JobStatus.CANCELLING:
                self.control.cancelled.set()

    def stop(self) -> None:
        self.done.set()
        self.join(timeout=10)


class EventSink:
    """The training engine's `on_event`: hands each event to a writer thread
    that stores it (fenced on the attempt) and sends it live, so the training
    step never waits for the database or Redis. Events keep their order;
    `close` waits until every one is written."""

    def __init__(self, control: RunControl):
        self.control = control
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.writer = threading.Thread(
            target=self._write_all, name=f"events-{control.job_id}", daemon=True
        )
        self.writer.start()

    def __call__(self, event: dict) -> None:
        if not self.control.lost.is_set():
            self.queue.put(event)

    def close(self) -> None:
        self.queue.put(None)
        self.writer.join()

    def _write_all(self) -> None:
        from django.db import connection

        try:
            while (event := self.queue.get()) is not None:
                if not self.control.lost.is_set():
                    self._write(event)
        finally:
            connection.close()

    def _write(self, event: dict) -> None:
        job_id, attempt = self.control.job_id, self.control.attempt
        try:
            kind = event["kind"]
            if kind == "metric":
                ledger.record_metric(job_id, attempt, event)
            elif kind == "started":
                ledger.record_start(
                    job_id, attempt, total_steps=event["total_steps"],
                    resumed_from_step=event["resumed_from_step"],
                )  # fmt: skip
            elif kind == "checkpoint":
                ledger.record_checkpoint(job_id, attempt, event)
            elif kind == "log":
                ledger.record_log(job_id, attempt, event["message"])
        except ledger.LostJob:
            logger.warning("Job %s: attempt %s lost the job; stopping", job_id, attempt)
            self.control.lost.set()
        except Exception:  # a database blip must not stop training: the point is lost
            logger.exception("Job %s: could not store a %s event", job_id, event.get("kind"))


def run_job(job_id: str, worker: str) -> str:
    """Claim and run one job to its end. Returns what happened, in a word.

    Never raises for a problem of the job itself: those end as `failed` with a
    plain reason (and the traceback for staff).
    """
    from jobs import training

    job = ledger.claim(job_id, worker)
    if job is None:
        return "not-claimed"
    control = RunControl(job.pk, job.attempt)
    sink = EventSink(control)
    heartbeat = Heartbeat(control)
    heartbeat.start()
    try:
        validation = job.validation_file if job.validation_file.exists() else None
        paths = training.RunPaths(
            model_source=catalog.model_source(job.base_model),
            train_file=job.train_file,
            validation_file=validation,
            output_dir=job.folder,
        )
        resume = training.latest_checkpoint(job.folder) if job.attempt > 1 else None
        if resume is not None:
            sink({"kind": "log", "message": f"Resuming from {Path(resume).name}."})
        result = training.run_training(
            cfg.read_document(job.config), paths, task=job.task,
            on_event=sink, should_stop=control.should_stop, resume_from=resume,
        )  # fmt: skip
    except training.TrainingFailure as exc:
        failure = (exc.code, exc.message, traceback.format_exc())
    except Exception as exc:
        logger.exception("Job %s failed", job.pk)
        message = f"Training stopped with an error: {type(exc).__name__}: {exc}"[:2000]
        failure = ("training", message, traceback.format_exc())
    else:
        failure = None
    finally:
        sink.close()  # every event stored before the final status
    try:
        # The lease is held until the end: zipping a large model takes a while.
        return _finish(job, control, result=None if failure else result, failure=failure)
    finally:
        heartbeat.stop()


def _finish(job, control: RunControl, *, result, failure) -> str:
    if control.lost.is_set():
        return "lost"
    if failure is None and result.stopped:
        ledger.finish_cancelled(job.pk, job.attempt, step=result.final_step)
        return "cancelled"
    if failure is None:
        try:
            archive = artifacts.zip_folder(result.adapter_dir, job.folder / artifacts.ADAPTER_ZIP)
        except OSError as exc:
            message = f"The adapter was trained but could not be saved: {exc}."
            failure = ("training", message, traceback.format_exc())
    if failure is not None:
        code, message, trace = failure
        ledger.finish_failed(job.pk, job.attempt, code=code, message=message, traceback=trace)
        return "failed"
    ledger.finish_succeeded(
        job.pk, job.attempt, metrics=result.metrics, adapter_path=str(result.adapter_dir),
        adapter_bytes=archive.stat().st_size, trained_tokens=result.trained_tokens,
        final_step=result.final_step,
    )  # fmt: skip
    return "succeeded"


def run_export(job_id: str) -> str:
    """Merge a LoRA adapter into its base and zip the full model (lora jobs only)."""
    from jobs import training
    from jobs.models import FineTuneJob

    # A conditional claim, like training's: a repeated message does nothing.
    if not FineTuneJob.objects.filter(pk=job_id, export_status="queued").update(
        export_status="running"
    ):
        return "not-queued"
    job = FineTuneJob.objects.select_related("base_model").get(pk=job_id)
    try:
        merged = training.export_merged(
            Path(job.adapter_path), catalog.model_source(job.base_model),
            job.folder / "merged", task=job.task,
        )  # fmt: skip
        archive = artifacts.zip_folder(merged, job.folder / artifacts.MERGED_ZIP)
    except Exception as exc:
        logger.exception("Export of job %s failed", job_id)
        FineTuneJob.objects.filter(pk=job_id).update(
            export_status="failed", export_error=f"{type(exc).__name__}: {exc}"[:2000]
        )
        _export_event(job, "The merged model could not be exported: see the error.", "error")
        return "failed"
    FineTuneJob.objects.filter(pk=job_id).update(
        export_status="ready", export_path=str(archive), export_error=""
    )
    _export_event(job, "The merged model is ready to download.", "info")
    return "ready"


def _export_event(job, message: str, level: str) -> None:
    from django.db import transaction

    from jobs.services import live
    from jobs.services.lifecycle import record_event

    with transaction.atomic():
        record_event(job, "log", message, level=level)
    live.publish_summary(job.pk)
