"""The worker's side of a job, in process: claim, train for real, store, finish.

No Celery here: `run_job` is called directly, as the task would. Real
database (transactional: the lease heartbeat runs on its own connection),
real Redis, real training of tailor-tiny on a slice of the routing sample.
"""

import threading
import time
import zipfile

import pytest

from jobs import worker
from jobs.models import FineTuneJob, JobStatus, MetricPoint
from jobs.services.lifecycle import cancel_job, check_start_job, create_job
from tests.processes import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.training]

SHORT = {"max_steps": 6, "batch_size": 8, "logging_steps": 1, "save_every": 3}


def queued_job(owner, dataset, *, base_model="tailor-tiny", method="lora", **training):
    document = {
        "data": {"dataset": str(dataset.pk)},
        "model": {"base_model": base_model, "method": method},
        "training": {**SHORT, **training},
    }
    job = create_job(owner, check_start_job(owner, document), start=False)
    FineTuneJob.objects.filter(pk=job.pk).update(status=JobStatus.QUEUED)
    return job


def test_a_run_stores_every_logged_step_and_ends_with_a_zipped_adapter(alice, routing):
    job = queued_job(alice, routing)
    assert worker.run_job(str(job.pk), "here") == "succeeded"
    job.refresh_from_db()
    assert (job.status, job.current_step, job.total_steps, job.attempt) == ("succeeded", 6, 6, 1)
    steps = list(MetricPoint.objects.filter(job=job, kind="train").values_list("step", flat=True))
    assert steps == [1, 2, 3, 4, 5, 6]
    assert all(p.train_loss > 0 for p in MetricPoint.objects.filter(job=job, kind="train"))
    assert job.trained_tokens > 0 and job.final_metrics["train_loss"] > 0
    # The attempt's own folder holds what it wrote; the row says where.
    attempt_folder = job.folder / "attempt-1"
    assert job.adapter_path == str(attempt_folder / "adapter")
    with zipfile.ZipFile(attempt_folder / "adapter.zip") as archive:
        names = {name.split("/", 1)[1] for name in archive.namelist()}
    assert {"adapter_config.json", "adapter_model.safetensors", "tailor_config.json"} <= names
    assert job.adapter_bytes == (attempt_folder / "adapter.zip").stat().st_size
    assert sorted(p.name for p in (attempt_folder / "checkpoints").glob("checkpoint-*")) == [
        "checkpoint-3",
        "checkpoint-6",
    ]
    messages = list(job.events.values_list("message", flat=True))
    assert messages[-1] == "Training finished; the adapter is ready to download."
    assert "Saved a checkpoint at step 3." in messages


def test_a_cancel_during_training_stops_at_the_next_step_and_keeps_a_checkpoint(alice, routing):
    job = queued_job(alice, routing, max_steps=200, save_every=2)

    def cancel_after_a_few_steps():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if MetricPoint.objects.filter(job=job, step__gte=3).exists():
                cancel_job(FineTuneJob.objects.get(pk=job.pk))
                return
            time.sleep(0.05)

    canceller = threading.Thread(target=cancel_after_a_few_steps)
    canceller.start()
    outcome = worker.run_job(str(job.pk), "here")
    canceller.join()
    job.refresh_from_db()
    assert (outcome, job.status) == ("cancelled", "cancelled")
    assert 3 <= job.current_step < 200
    assert job.checkpoints.exists()
    assert (
        job.events.filter(kind="status")
        .last()
        .message.startswith(f"Cancelled at step {job.current_step}; checkpoint of step ")
    )
    assert not (job.folder / "attempt-1" / "adapter.zip").exists()
    assert not (job.folder / "attempt-1" / "adapter").exists()


def test_a_base_model_that_cannot_be_loaded_fails_the_job_with_a_plain_reason(
    alice, routing, settings, tmp_path
):
    job = queued_job(alice, routing)
    settings.MODELS_ROOT = tmp_path / "no-models-here"
    assert worker.run_job(str(job.pk), "here") == "failed"
    job.refresh_from_db()
    assert (job.status, job.error_code) == ("failed", "model_load")
    assert job.error_message.startswith("The base model could not be loaded")
    assert "Traceback" in job.error_traceback


def test_a_job_that_is_not_queued_is_left_alone(alice, routing):
    job = queued_job(alice, routing)
    FineTuneJob.objects.filter(pk=job.pk).update(status=JobStatus.CANCELLED)
    assert worker.run_job(str(job.pk), "here") == "not-claimed"
    assert not MetricPoint.objects.filter(job=job).exists()


def test_a_finished_lora_job_exports_a_merged_model_that_loads_without_peft(
    alice, routing, tmp_path
):
    from transformers import AutoModelForCausalLM

    from jobs.services.artifacts import merged_archive, request_export

    job = queued_job(alice, routing, max_steps=2)
    assert worker.run_job(str(job.pk), "here") == "succeeded"
    job.refresh_from_db()
    request_export(job)  # the task is sent after commit; here the runner is called directly
    if worker.run_export(str(job.pk)) == "not-queued":
        # The session's test worker took the task first: it runs the same function.
        wait_for(
            lambda: FineTuneJob.objects.get(pk=job.pk).export_status in ("ready", "failed"),
            120,
            "the worker's export",
        )
    job.refresh_from_db()
    assert job.export_status == "ready", job.export_error
    archive = merged_archive(job)
    assert archive is not None and archive.name == "merged-model.zip"
    with zipfile.ZipFile(archive) as zipped:
        names = {name.split("/", 1)[1] for name in zipped.namelist()}
    assert "config.json" in names and "adapter_config.json" not in names
    assert archive.parent == job.folder / f"export-{job.export_attempt}"
    assert [p.name for p in archive.parent.iterdir()] == ["merged-model.zip"]
    unpacked = tmp_path / "unpacked"
    zipfile.ZipFile(archive).extractall(unpacked)
    merged = AutoModelForCausalLM.from_pretrained(unpacked / "merged-model")
    assert merged.config.model_type == "llama"
