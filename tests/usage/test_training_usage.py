"""With the real workers: a training worker records the device time of the
job it trains (advanced while it runs, closed at its end, on its own device),
which the job's page and API and the usage page then show; the inference
worker records the tokens of each answer, summed over its panes. Real Redis,
real Celery workers, real training of tailor-tiny."""

from decimal import Decimal

import pytest
from django.urls import reverse

from jobs.models import FineTuneJob, JobStatus
from jobs.services.lifecycle import check_start_job, create_job
from serving.models import Generation
from tests.builders import SHORT_RUN, ready_sample
from tests.processes import wait_for
from usage.models import DevicePrice, DeviceUse
from usage.services.report import Month

pytestmark = [
    pytest.mark.integration,
    pytest.mark.training,
    pytest.mark.django_db(transaction=True),
]


@pytest.mark.timeout(600)
@pytest.mark.usefixtures("demo_models")
def test_a_training_worker_records_its_device_time_and_the_inference_worker_its_tokens(
    alice, alice_client, alice_api, celery_worker
):
    # The workers read prices from the database; the web's default is 0 here.
    DevicePrice.objects.create(device="cpu", price_per_hour=Decimal("3.6"))  # a cent a 10 s
    dataset = ready_sample(alice)
    document = {
        "data": {"dataset": str(dataset.pk)},
        "model": {"base_model": "tailor-tiny", "method": "lora"},
        "training": {**SHORT_RUN, "max_steps": 40},
        "name": "routing, timed",
    }
    job = create_job(alice, check_start_job(alice, document))
    # While it runs, each lease renewal (every second here) moves it on.
    wait_for(
        lambda: DeviceUse.objects.filter(job=job, ended_at__isnull=True, seconds__gt=0).exists(),
        240, "the running attempt's device time to advance",
    )  # fmt: skip
    wait_for(lambda: FineTuneJob.objects.get(pk=job.pk).is_finished, 300, "the job to finish")
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error_message

    use = DeviceUse.objects.get(job=job)
    assert (use.attempt, use.worker, use.device, use.owner) == (1, celery_worker, "cpu", alice)
    assert use.price_per_hour == Decimal("3.6")
    assert use.ended_at is not None and use.last_seen_at == use.ended_at
    # From the claim to the final status: the job's own wall time, to the second.
    took = (job.finished_at - job.started_at).total_seconds()
    assert 0 < use.seconds <= took + 1
    assert use.seconds >= took - 1

    usage = alice_api.get(f"/api/v1/jobs/{job.pk}/").json()["usage"]
    assert usage == {
        "device_seconds": round(use.seconds, 1),
        "cost": float(round(Decimal(str(use.seconds)) / 3600 * Decimal("3.6"), 4)),
        "currency": "USD",
    }  # fmt: skip
    page = alice_client.get(reverse("job-detail", args=[job.pk])).content.decode()
    assert 'data-testid="job-device-time">' in page
    assert "× the estimate" in page
    month = alice_client.get(f"/usage/?month={Month.of().key}").content.decode()
    assert f'<a href="/jobs/{job.pk}/">routing, timed</a>' in month

    # Two panes, one batched answer: the generation's tokens are both panes'.
    created = alice_api.post(
        "/api/v1/generations/",
        {"models": ["tailor-tiny", job.fine_tuned_model], "max_new_tokens": 8, "seed": 1,
         "messages": [{"role": "user", "content": "My parcel never arrived"}]},
        format="json",
    )  # fmt: skip
    assert created.status_code == 201, created.json()
    generation_id = created.json()["id"]
    wait_for(
        lambda: Generation.objects.get(pk=generation_id).status not in ("queued", "running"),
        240, "the generation",
    )  # fmt: skip
    generation = Generation.objects.get(pk=generation_id)
    assert generation.status == "succeeded", generation.error
    panes = generation.results
    assert len(panes) == 2 and all(p["prompt_tokens"] > 0 for p in panes)
    assert generation.prompt_tokens == sum(p["prompt_tokens"] for p in panes)
    assert generation.completion_tokens == sum(p["completion_tokens"] for p in panes) > 0
    # The usage page's tokens are these (the job's evaluation is not tokens served).
    answered = alice_api.get("/api/v1/usage/").json()["tokens"]
    assert (answered["prompt"], answered["completion"]) == (
        generation.prompt_tokens, generation.completion_tokens,
    )  # fmt: skip
