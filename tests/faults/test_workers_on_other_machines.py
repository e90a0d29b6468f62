"""Training workers on machines of their own, the files in an S3-compatible
store (issue 17).

Real processes only: moto's server on loopback is the store (tests/s3.py);
this test process is the web, with its MEDIA_ROOT; each Celery training
worker gets an empty MEDIA_ROOT of its own, as on another machine, and
shares only the database, Redis and the store with the web and the others.
A job trains on one machine and the web serves its adapter; another is
SIGKILLed on a second machine after its first uploaded checkpoint and
resumes from it on a third.
"""

import io
import urllib.request
import zipfile
from pathlib import Path

import pytest

from jobs.models import Checkpoint, FineTuneJob, MetricPoint
from tests.builders import api_client, ready_sample
from tests.faults.checks import current, events, one_live_run_at_a_time
from tests.processes import (
    PRODUCTION_TRAIN,
    CeleryWorker,
    Stopwatch,
    job_when_finished,
    studio,
    wait_for,
    wait_until_step,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.integration,
    pytest.mark.training,
    pytest.mark.faults,
]


def gpu_machine(tmp_path: Path, s3, name: str) -> tuple[CeleryWorker, Path]:
    """A training worker as on a machine of its own: the store's settings and
    an empty MEDIA_ROOT nobody else reads."""
    media = tmp_path / name
    media.mkdir()
    worker = CeleryWorker(
        "train", f"fault-{name}", args=PRODUCTION_TRAIN, env={**s3.env, "MEDIA_ROOT": str(media)}
    )
    return worker, media


def create_through_the_api(client, dataset, **training) -> FineTuneJob:
    body = {
        "data": {"dataset": str(dataset.pk)},
        "model": {"base_model": "tailor-tiny", "method": "lora"},
        "training": {"batch_size": 8, "logging_steps": 1, **training},
    }
    response = client.post("/api/v1/jobs/", body, format="json")
    assert response.status_code == 201, response.content
    return FineTuneJob.objects.get(pk=response.json()["id"])


def downloaded_adapter(client, job) -> set[str]:
    """The names in the adapter archive the web hands out (a redirect to a
    presigned URL of the store, followed as a browser would)."""
    response = client.get(f"/api/v1/jobs/{job.pk}/adapter/")
    assert response.status_code == 302, response.content
    with urllib.request.urlopen(response["Location"], timeout=30) as answer:
        archive = zipfile.ZipFile(io.BytesIO(answer.read()))
    return {name.split("/", 1)[1] for name in archive.namelist()}


def test_jobs_train_on_machines_of_their_own_and_a_killed_one_resumes_on_a_third_from_the_store(
    s3, alice, demo_models, settings, tmp_path, record_property
):
    web = Path(settings.MEDIA_ROOT)
    dataset = ready_sample(alice)
    client = api_client(alice)
    (one, first_media), (two, second_media), (three, third_media) = (
        gpu_machine(tmp_path, s3, name) for name in ("gpu-1", "gpu-2", "gpu-3")
    )
    clock = Stopwatch("workers on other machines", record_property)

    # One machine at a time takes the train queue, so that each job runs
    # where the test says (beat and the maintenance worker stay up throughout).
    with studio(tmp_path, one):
        first = create_through_the_api(client, dataset, max_steps=4, save_every=2)
        trained = job_when_finished(first)
        clock.lap("job 1 trained on machine 1")
        one.stop()
        two.start()
        try:
            second = create_through_the_api(client, dataset, max_steps=12, save_every=3)
            wait_until_step(second, 3, checkpoint=3)
            two.kill()
            killed = Stopwatch("training machine 2 SIGKILLed", record_property)
            newest = Checkpoint.objects.filter(job=second).order_by("-step").first()
            uploaded = s3.keys(f"jobs/{second.pk}/attempt-1/checkpoints/checkpoint-{newest.step}/")
            three.start()
            wait_for(lambda: current(second).attempt == 2, 60, "machine 3 to claim job 2")
            killed.lap("attempt 2 running on machine 3")
            resumed = job_when_finished(second)
            killed.lap("job 2 succeeded on machine 3")
        finally:
            two.stop()
            three.stop()

    # Job 1: trained on a machine of its own, served by the web, which never had it.
    assert (trained.status, trained.worker) == ("succeeded", one.name), trained.error_message
    assert trained.adapter_path == str(first_media / f"jobs/{first.pk}/attempt-1/adapter")
    assert not (web / f"jobs/{first.pk}/attempt-1").exists()
    assert {"adapter_config.json", "adapter_model.safetensors", "tailor_config.json"} <= (
        downloaded_adapter(client, trained)
    )
    # Job 2: resumed on machine 3 from the checkpoint the killed machine uploaded.
    assert (resumed.status, resumed.attempt, resumed.worker) == ("succeeded", 2, three.name)
    checkpoint = f"jobs/{second.pk}/attempt-1/checkpoints/checkpoint-{newest.step}"
    assert f"{checkpoint}/trainer_state.json" in uploaded
    # Attempt 2 started at the uploaded checkpoint's step, not at 0.
    assert [e.message for e in events(resumed, "Resuming from")] == [
        f"Resuming from checkpoint-{newest.step}."
    ]
    second_steps = list(
        MetricPoint.objects.filter(job=resumed, kind="train", attempt=2)
        .order_by("step")
        .values_list("step", flat=True)
    )
    assert second_steps == list(range(newest.step + 1, 13))
    # Machine 3 had only the store to read it from: machine 2's folder is its own.
    assert (third_media / checkpoint / "trainer_state.json").is_file()
    assert (second_media / checkpoint / "trainer_state.json").is_file()
    assert resumed.adapter_path == str(third_media / f"jobs/{second.pk}/attempt-2/adapter")
    assert "adapter_model.safetensors" in downloaded_adapter(client, resumed)
    one_live_run_at_a_time(resumed)
