"""Runs one job on a training worker: claim, heartbeat, train, finish.

The Celery task (`jobs.tasks.train_job`) only calls `run_job`. Training itself
is `jobs.training.run_training`, plain Python; this module connects it to the
ledger: every event it emits is stored (fenced on this run's attempt) and
sent live, and the stop check answers cancels and lost leases.
"""

import logging
import queue
import shutil
import threading
import time
import traceback
from pathlib import Path

from django.conf import settings

from jobs import config as cfg
from jobs.models import EventKind, ExportStatus, JobStatus
from jobs.services import artifacts, catalog, housekeeping, ledger, trackers, worker_files
from studio.services import disk, leases, object_store
from studio.services.db_retry import retry_database
from studio.services.paths import inside
from usage.device import training_device
from usage.services import device_time

logger = logging.getLogger(__name__)


class RunControl:
    """Why this run should stop, if it should: the user cancelled, or the run
    lost the job (its lease was taken, or it stalled). Fed by the lease keeper
    (the database) and the cancel flag (Redis)."""

    # The trainer asks every step; Redis is asked at most this often, so a
    # cancel lands within about a second without a round trip per step.
    FLAG_INTERVAL_S = 0.5

    def __init__(self, job_id, attempt: int, *, hard_stop=None):
        self.job_id, self.attempt = job_id, attempt
        self.hard_stop = hard_stop
        self.cancelled = threading.Event()
        self.flag_checked_at = 0.0
        self.cancel_seen_at: float | None = None
        self.keeper = leases.LeaseKeeper(
            leases.kind("training"), job_id, attempt,
            on_status=self.renewed, on_stalled=hard_stop,
        )  # fmt: skip
        self.lost = self.keeper.lost

    def should_stop(self) -> bool:
        """Asked after every optimizer step: a step is progress."""
        self.keeper.progressed()
        if self.lost.is_set() or self.cancelled.is_set():
            return True
        now = time.monotonic()
        if now - self.flag_checked_at >= self.FLAG_INTERVAL_S:
            self.flag_checked_at = now
            if ledger.cancel_requested(self.job_id):
                self.cancelled.set()
        return self.cancelled.is_set()

    def may_write(self) -> bool:
        """Asked before a checkpoint or the adapter is saved: a run that lost
        its lease writes no file (one query per save, not per step)."""
        if self.lost.is_set():
            return False
        # The training thread's connection idles between saves: a database
        # restarted meanwhile is reconnected to, not taken for a lost lease.
        return retry_database(lambda: ledger.still_owned(self.job_id, self.attempt))

    def renewed(self, status: str) -> None:
        """After each lease renewal (the keeper's thread): the attempt's device
        time advances (usage/), then the status is looked at."""
        try:
            device_time.advance(self.job_id, self.attempt)
        except Exception:  # a database blip: the next beat advances it
            logger.exception("Job %s: could not advance its device time", self.job_id)
        self.on_status(status)

    def on_status(self, status: str) -> None:
        """The job's status after each lease renewal. A cancel the run has not
        obeyed within the grace (a hung step) ends the run by force."""
        if status != JobStatus.CANCELLING:
            return
        self.cancelled.set()
        now = time.monotonic()
        if self.cancel_seen_at is None:
            self.cancel_seen_at = now
        elif now - self.cancel_seen_at > settings.TAILOR_CANCEL_GRACE_SECONDS:
            logger.error("Job %s ignored its cancel for %s s; ending it", self.job_id,
                         settings.TAILOR_CANCEL_GRACE_SECONDS)  # fmt: skip
            self.lost.set()
            leases.end_lost_run(
                leases.kind("training"), self.job_id, self.attempt, why="cancel_timeout"
            )
            self.keeper.done.set()
            if self.hard_stop is not None:
                self.hard_stop()


class EventSink:
    """The training engine's `on_event`: hands each event to a writer thread
    that stores it (fenced on the attempt) and sends it live, so the training
    step never waits for the database or Redis. Events keep their order;
    `close` waits until every one is written. A write that fails because the
    database is away is retried until it is back (studio/services/db_retry.py)."""

    def __init__(self, control: RunControl):
        self.control = control
        self.uploads = worker_files.CheckpointUploads()
        self.trained_seconds = 0.0  # the run's wall time less its checkpoint uploads
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.writer = threading.Thread(
            target=self._write_all, name=f"events-{control.job_id}", daemon=True
        )
        self.writer.start()

    def __call__(self, event: dict) -> None:
        # Loading a model or tokenising logs lines: progress too.
        self.control.keeper.progressed()
        if self.control.lost.is_set():
            return
        if event["kind"] == "checkpoint" and not self._upload(event):
            return
        self.queue.put(event)

    def _upload(self, event: dict) -> bool:
        """Push a checkpoint the trainer has just completed, before its event
        is queued to be recorded (the trainer's thread: no save runs meanwhile).
        One the store refused is not recorded, and the run goes on: a resume
        starts from the newest one that was stored."""
        try:
            self.uploads.push(Path(event["path"]))
        except object_store.StorageError as exc:
            logger.warning("Job %s: checkpoint not stored: %s", self.control.job_id, exc)
            self.queue.put({"kind": "log", "message": (
                f"The checkpoint of step {event['step']:,} could not be uploaded to the object "
                "store, so it is not kept for a resume; training goes on."
            )})  # fmt: skip
            return False
        self.control.keeper.progressed()  # an upload of a large checkpoint takes a while
        return True

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
        kind = event["kind"]
        try:
            if kind == "metric":
                write = lambda: ledger.record_metric(job_id, attempt, event)  # noqa: E731
            elif kind == "started":
                write = lambda: ledger.record_start(  # noqa: E731
                    job_id, attempt, total_steps=event["total_steps"],
                    resumed_from_step=event["resumed_from_step"],
                )  # fmt: skip
            elif kind == "checkpoint":

                def write():
                    ledger.record_checkpoint(job_id, attempt, event)
                    # Recorded: the store may now drop what the trainer rotated out.
                    self.uploads.forget_rotated()

            elif kind == "log":
                write = lambda: ledger.record_log_event(job_id, attempt, event)  # noqa: E731
            else:
                return
            retry_database(write)
        except ledger.LostJob:
            logger.warning("Job %s: attempt %s lost the job; stopping", job_id, attempt)
            self.control.lost.set()
        except Exception:  # the database stayed away past the retry time
            logger.exception("Job %s: could not store a %s event", job_id, kind)


def run_job(job_id: str, worker: str, *, hard_stop=None) -> str:
    """Claim and run one job to its end. Returns what happened, in a word.

    Never raises for a problem of the job itself: those end as `failed` with a
    plain reason (and the traceback for staff). `hard_stop` ends the process
    when the run hangs (a Celery task passes `leases.end_process`).
    """
    from jobs import training

    device = training_device()
    job = retry_database(lambda: ledger.claim(job_id, worker, device=device))
    if job is None:
        return "not-claimed"
    control = RunControl(job.pk, job.attempt, hard_stop=hard_stop)
    sink = EventSink(control)
    control.keeper.start()
    try:
        fetched = object_store.Transfer()
        worker_files.fetch_data(job, fetched)
        validation = job.validation_file if job.validation_file.exists() else None
        config = cfg.read_document(job.config)
        paths = training.RunPaths(
            model_source=catalog.model_source(job.base_model),
            train_file=job.train_file,
            validation_file=validation,
            output_dir=job.attempt_folder(job.attempt),
            start_adapters=worker_files.start_adapters(job, config),
        )
        found = worker_files.resume_from(job, fetched) if job.attempt > 1 else None
        resume = found[1] if found is not None else None
        if note := worker_files.fetched_note(fetched):
            sink({"kind": "log", **note})
        if resume is not None:
            sink({"kind": "log", "message": f"Resuming from {resume.name}."})
        started = time.monotonic()
        result = training.run_training(
            config, paths, task=job.task,
            on_event=sink, should_stop=control.should_stop, may_write=control.may_write,
            resume_from=resume, tracker_settings=trackers.tracker_settings(),
        )  # fmt: skip
        sink.trained_seconds = time.monotonic() - started - sink.uploads.transfer.seconds
    except training.TrainingFailure as exc:
        failure = (exc.code, exc.message, traceback.format_exc())
    except object_store.StorageError as exc:
        failure = _storage_failure(exc)
    except OSError as exc:
        failure = _disk_failure(exc) or _unexpected(job, exc)
    except Exception as exc:
        failure = _unexpected(job, exc)
    else:
        failure = None
    finally:
        sink.close()  # every event stored before the final status
    try:
        # The lease is held until the end: zipping a large model takes a while.
        return _finish(job, control, sink, result=None if failure else result, failure=failure)
    finally:
        control.keeper.stop()


# What an analyst is told of an unforeseen error; the exception is in the traceback (operators).
UNEXPECTED_MESSAGE = (
    "Training stopped with an unexpected error in the worker. Retry the job; if it "
    "fails again, tell an operator: they can see the error on this job's page."
)


def _unexpected(job, exc: Exception) -> tuple[str, str, str]:
    logger.exception("Job %s failed", job.pk)
    return ("training", UNEXPECTED_MESSAGE, traceback.format_exc())


DISK_FULL_MESSAGE = (
    "The disk is full: the run could not write its files. Nothing partial was kept; "
    "free some space (delete old jobs and datasets), then resume the job: it continues "
    "from its newest complete checkpoint."
)


def _disk_failure(exc: BaseException) -> tuple[str, str, str] | None:
    """A full disk, in plain words; None for other errors."""
    if not disk.is_disk_full(exc):
        return None
    return ("disk_full", DISK_FULL_MESSAGE, traceback.format_exc())


def _storage_failure(exc: object_store.StorageError) -> tuple[str, str, str]:
    """The object store could not be reached or refused a file, in plain words
    (the store's own sentence names its address: it goes to the traceback,
    which only operators see)."""
    logger.error("Object store: %s", exc)
    return (
        "storage",
        "The worker could not read or store the job's files in the object store. Resume the "
        "job once the store is reachable; an operator can see the error on this job's page.",
        traceback.format_exc(),
    )


def _recognise_disk_full(job, failure: tuple[str, str, str]) -> tuple[str, str, str]:
    """A failed write the error did not name as a full disk, recognised:
    safetensors names errno 28 only in its message, and torch.save (the
    optimizer's state) raises an opaque RuntimeError, leaving the disk full
    to its last block."""
    code, _, trace = failure
    if code != "training":
        return failure
    if disk.mentions_disk_full(trace) or disk.nearly_full(job.attempt_folder(job.attempt)):
        return ("disk_full", DISK_FULL_MESSAGE, trace)
    return failure


def _remove_partial_files(job) -> None:
    """What the failed attempt left half-written (its complete checkpoints
    stay: Resume continues from the newest)."""
    for path in housekeeping.partial_files(job.attempt_folder(job.attempt)):
        housekeeping.remove(path)


def _finish(job, control: RunControl, sink: EventSink, *, result, failure) -> str:
    if control.lost.is_set():
        return "lost"
    if failure is None and result.stopped:
        retry_database(lambda: ledger.finish_cancelled(job.pk, job.attempt, step=result.final_step))
        return "cancelled"
    if failure is None:
        try:
            archive = artifacts.zip_folder(
                result.adapter_dir, result.adapter_dir.parent / artifacts.ADAPTER_ZIP,
                progressed=control.keeper.progressed,
            )  # fmt: skip
            # Stored before the row says the job succeeded: the web serves them.
            worker_files.push_final(result.adapter_dir, archive, transfer=sink.uploads.transfer)
            if note := worker_files.stored_note(sink.uploads.transfer, sink.trained_seconds):
                retry_database(lambda: ledger.record_log(job.pk, job.attempt, **note))
        except ledger.LostJob:
            return "lost"
        except object_store.StorageError as exc:
            failure = _storage_failure(exc)
        except OSError as exc:
            failure = _disk_failure(exc) or (
                "training",
                "The adapter was trained but could not be saved on the worker; "
                "an operator can see why on this job's page.",
                traceback.format_exc(),
            )
    if failure is not None:
        failure = _recognise_disk_full(job, failure)
        _remove_partial_files(job)
        code, message, trace = failure
        retry_database(
            lambda: ledger.finish_failed(
                job.pk, job.attempt, code=code, message=message, traceback=trace
            )
        )
        return "failed"
    done = retry_database(
        lambda: ledger.finish_succeeded(
            job.pk, job.attempt, metrics=result.metrics, adapter_path=str(result.adapter_dir),
            adapter_bytes=archive.stat().st_size, trained_tokens=result.trained_tokens,
            final_step=result.final_step,
        )
    )  # fmt: skip
    return "succeeded" if done else "lost"


def run_export(job_id: str, worker: str = "worker", *, hard_stop=None) -> str:
    """Merge a LoRA or QLoRA adapter into its un-quantised base and zip the full model.

    Leased work like training: a claim with a fencing token, a lease held
    while it runs, and every file under the attempt's own folder, so a lost
    run never overwrites what a newer attempt wrote."""
    from jobs import training
    from jobs.models import FineTuneJob

    kind = leases.kind("export")
    attempt = retry_database(lambda: leases.claim(kind, job_id, worker))
    if attempt is None:
        return "not-queued"  # a repeated message, or an export already over
    job = FineTuneJob.objects.select_related("base_model").get(pk=job_id)
    keeper = leases.LeaseKeeper(kind, job.pk, attempt, on_stalled=hard_stop)
    keeper.start()
    folder = job.export_folder(attempt)
    try:
        adapter = worker_files.here(job, job.adapter_path)
        if not inside(job.folder, adapter):
            raise ValueError("the adapter is recorded outside the job's folder")
        worker_files.fetch_adapter(job)
        merged = training.export_merged(
            adapter, catalog.model_source(job.base_model),
            folder / "merged", task=job.task,
        )  # fmt: skip
        keeper.progressed()
        archive = artifacts.zip_folder(
            merged, folder / artifacts.MERGED_ZIP, progressed=keeper.progressed
        )
        # The merged folder was only the zip's source: the archive is what is served.
        shutil.rmtree(merged, ignore_errors=True)
        worker_files.push_final(archive)  # stored before the row says it is ready
    except Exception as exc:
        logger.exception("Export of job %s failed", job_id)
        shutil.rmtree(folder, ignore_errors=True)
        disk = isinstance(exc, OSError) and _disk_failure(exc)
        error = disk[1] if disk else _export_failure_message(exc)
        written = retry_database(
            lambda: leases.owned(kind, job_id, attempt).update(
                export_status=ExportStatus.FAILED, export_error=error, export_lease_expires_at=None
            )
        )
        if written:
            export_event(job, "The merged model could not be exported: see the error.", "error")
        return "failed"
    finally:
        keeper.stop()
    written = retry_database(
        lambda: leases.owned(kind, job_id, attempt).update(
            export_status=ExportStatus.READY, export_path=str(archive), export_error="",
            export_lease_expires_at=None,
        )
    )  # fmt: skip
    if not written:
        shutil.rmtree(folder, ignore_errors=True)
        return "lost"
    _remove_older_exports(job, keep=attempt)
    export_event(job, "The merged model is ready to download.", "info")
    return "ready"


def _remove_older_exports(job, *, keep: int) -> None:
    for folder in job.folder.glob("export-*"):
        if folder.name != f"export-{keep}":
            shutil.rmtree(folder, ignore_errors=True)


def _export_failure_message(exc: Exception) -> str:
    """What everyone is told of a failed export: the engine's plain sentence,
    else a plain one; the error itself is in the worker's log, for operators."""
    from jobs.training import TrainingFailure

    if isinstance(exc, TrainingFailure):
        return exc.message
    if isinstance(exc, object_store.StorageError):
        return (
            "The merged model could not be read or stored in the object store. Try again once "
            "the store is reachable; the worker's log has the error."
        )
    return (
        "The merge stopped with an unexpected error in the worker. Try again; if it fails "
        "again, tell an operator: the worker's log has the error."
    )


def export_event(job, message: str, level: str) -> None:
    from django.db import transaction

    from jobs.services import live
    from jobs.services.lifecycle import record_event

    with transaction.atomic():
        record_event(job, EventKind.LOG, message, level=level)
    live.publish_summary(job.pk)
