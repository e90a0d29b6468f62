"""Objects for tests, made through the services as users make them.

- Datasets: `ready_sample` (a bundled sample, validated without a worker);
  file contents `chat_jsonl`, `csv_bytes` and `upload` (a Django upload);
  `dataset_when_finished` (the row once a worker has validated it).
- Jobs: `make_job` (created, not started); `finished_job` (as the ledger
  leaves a success, nothing trained); `run_to_success` (queued, and trained
  by the test worker); `queue_short_job` (a SHORT_RUN of LoRA on
  tailor-tiny); `succeeded_lora_job` (really trained here, no worker);
  `log_losses` (stored metric points, as a run logs them).
- Clients: `api_client` (DRF's test client with a fresh API token).

Import it from test modules only: it loads Django models, so the settings
must be configured first (tests/conftest.py does that when pytest starts).
"""

import csv
import io
import json
import time

from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from rest_framework.test import APIClient

from datasets_app.models import Dataset
from datasets_app.services import create_dataset, create_from_sample, run_validation
from jobs.models import FineTuneJob, JobStatus, MetricKind, MetricPoint
from jobs.services.lifecycle import check_start_job, create_job
from studio.services.tokens import create_token
from tests.processes import wait_for

SHORT_RUN = {"max_steps": 24, "batch_size": 8, "logging_steps": 1, "save_every": 3}
STEPS = SHORT_RUN["max_steps"]


# --- datasets -------------------------------------------------------------------------


def ready_sample(owner, slug: str = "support-routing") -> Dataset:
    """A bundled sample, validated here and now (or by the test worker, when
    a transactional test sent it the task first)."""
    dataset = create_from_sample(owner, slug)
    if run_validation(str(dataset.pk), dataset.revision) == "already-running":
        deadline = time.monotonic() + 60
        while dataset.status != "ready" and time.monotonic() < deadline:
            time.sleep(0.1)
            dataset.refresh_from_db()
    dataset.refresh_from_db()
    assert dataset.status == "ready", dataset.errors
    return dataset


def tickets_with_a_long_row(long_row: int | None = 41) -> bytes:
    """60 chat tickets of about 100 characters; row `long_row` (0-based) is
    4,810 characters, past what a job on the default model keeps."""
    rows = [
        {
            "messages": [
                {
                    "role": "user",
                    "content": f"Please route this ticket number {i}: the printer on floor two "
                    "is jammed again and needs a look.",
                },
                {"role": "assistant", "content": "facilities"},
            ]
        }
        for i in range(60)
    ]
    if long_row is not None:
        rows[long_row]["messages"][0]["content"] = "My laptop will not start. " * 185
    return ("\n".join(json.dumps(row) for row in rows) + "\n").encode()


def checked_upload(owner, content: bytes, name: str = "tickets.jsonl", **options) -> Dataset:
    """An uploaded file, validated here and now (no worker)."""
    dataset = create_dataset(owner, upload=upload(name, content), **options)
    run_validation(str(dataset.pk), dataset.revision)
    dataset.refresh_from_db()
    return dataset


def chat_jsonl(rows: int, *, start: int = 0) -> bytes:
    lines = []
    for i in range(start, start + rows):
        record = {
            "messages": [
                {"role": "system", "content": "You answer in one word."},
                {"role": "user", "content": f"What comes after {i}?"},
                {"role": "assistant", "content": str(i + 1)},
            ]
        }
        lines.append(json.dumps(record))
    return ("\n".join(lines) + "\n").encode()


def upload(name: str, content: bytes | str) -> SimpleUploadedFile:
    if isinstance(content, str):
        content = content.encode()
    return SimpleUploadedFile(name, content)


def csv_bytes(header: list[str], rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode()


def dataset_when_finished(dataset_id, timeout: float = 60) -> Dataset:
    """The dataset's row once a worker has validated it (ready or invalid)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dataset = Dataset.objects.get(pk=dataset_id)
        if dataset.status in ("ready", "invalid"):
            return dataset
        time.sleep(0.1)
    raise AssertionError(f"dataset {dataset_id} still {dataset.status} after {timeout} s")


# --- jobs -----------------------------------------------------------------------------


def make_job(owner, dataset: Dataset, *, model: str = "tailor-tiny", start: bool = False, **doc):
    document = {"data": {"dataset": str(dataset.pk)}, "model": {"base_model": model}, **doc}
    return create_job(owner, check_start_job(owner, document), start=start)


def finished_job(owner, dataset, *, model="tailor-tiny", name="routing", **doc) -> FineTuneJob:
    """A job as the ledger leaves it when training succeeded (the adapter's folder
    is not read by these checks); `doc` sections as make_job's."""
    job = make_job(owner, dataset, model=model, name=name, **doc)
    FineTuneJob.objects.filter(pk=job.pk).update(
        status=JobStatus.SUCCEEDED,
        adapter_path=str(job.folder / "adapter"),
        finished_at=timezone.now(),
    )
    job.refresh_from_db()
    return job


def run_to_success(owner, document: dict):
    """Create and queue a job from `document`; wait for the worker to finish it well."""
    job = create_job(owner, check_start_job(owner, document))
    wait_for(
        lambda: FineTuneJob.objects.get(pk=job.pk).status in ("succeeded", "failed"),
        300,
        "the job to finish",
    )
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error_message
    return job


def queue_short_job(owner, dataset, *, start: bool = True, **training):
    """A short LoRA run of tailor-tiny (SHORT_RUN, changed by `training`)."""
    document = {
        "data": {"dataset": str(dataset.pk)},
        "model": {"base_model": "tailor-tiny", "method": "lora"},
        "training": {**SHORT_RUN, **training},
    }
    return create_job(owner, check_start_job(owner, document), start=start)


def succeeded_lora_job(owner):
    """A really trained LoRA job (in this process, no worker), with validation rows."""
    from jobs import worker
    from serving.models import Evaluation

    document = {
        "data": {"dataset": str(ready_sample(owner).pk)},
        "model": {"base_model": "tailor-tiny", "method": "lora"},
        "training": {"max_steps": 4, "batch_size": 8, "logging_steps": 1, "save_every": 0},
    }
    job = create_job(owner, check_start_job(owner, document), start=False)
    FineTuneJob.objects.filter(pk=job.pk).update(status="queued")
    assert worker.run_job(str(job.pk), "here") == "succeeded"
    # This process trained it: the evaluation its success asked for is not under test.
    Evaluation.objects.filter(job=job).delete()
    return FineTuneJob.objects.get(pk=job.pk)


def log_losses(job, train: dict[int, float], validation: dict[int, float] | None = None):
    """Stored points of the job's first attempt: {step: training loss} and
    {step: validation loss}, 100 tokens and a second a step."""
    points = [
        MetricPoint(job=job, attempt=1, step=step, kind=MetricKind.TRAIN, train_loss=loss,
                    tokens=100 * step, elapsed=float(step))
        for step, loss in train.items()
    ] + [
        MetricPoint(job=job, attempt=1, step=step, kind=MetricKind.EVAL, val_loss=loss,
                    tokens=100 * step, elapsed=float(step))
        for step, loss in (validation or {}).items()
    ]  # fmt: skip
    MetricPoint.objects.bulk_create(points)


# --- clients --------------------------------------------------------------------------


def api_client(user):
    """A DRF test client that sends a fresh API token of `user`."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {create_token(user, 'tests').secret}")
    return client
