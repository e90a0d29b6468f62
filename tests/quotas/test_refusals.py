"""Over a hard limit, each door refuses with a clear 4xx naming the limit and
the use: the native API (studio/api_errors.py's shape), /v1/ (OpenAI's), the
wizard and the datasets page. Real database and Redis; no worker."""

import json

import pytest

from jobs.models import FineTuneJob, JobStatus
from quotas.models import QuotaOverride
from studio.services.tokens import create_token
from tests.builders import make_job, ready_sample, upload

pytestmark = pytest.mark.django_db

QUEUED_FULL = (
    "Queued jobs limit reached: you have 1 queued job, your limit. Wait for one to start, "
    "or cancel one."
)


@pytest.fixture
def queue_full(alice, demo_models):
    """Alice may queue one job, and has one queued."""
    QuotaOverride.objects.create(user=alice, queued_jobs=1)
    dataset = ready_sample(alice)
    job = make_job(alice, dataset)
    FineTuneJob.objects.filter(pk=job.pk).update(status=JobStatus.QUEUED)
    return dataset


def test_the_native_api_refuses_a_job_over_a_limit_with_403_and_its_error_shape(
    alice, alice_api, queue_full
):
    response = alice_api.post(
        "/api/v1/jobs/",
        {"data": {"dataset": str(queue_full.pk)}, "model": {"base_model": "tailor-tiny"}},
        format="json",
    )
    assert response.status_code == 403
    assert response.json() == {"error": {"code": "quota_exceeded", "message": QUEUED_FULL}}
    assert FineTuneJob.objects.filter(owner=alice).count() == 1


def test_v1_fine_tuning_refuses_a_job_over_a_limit_in_openais_shape(client, alice, queue_full):
    secret = create_token(alice, "tests").secret
    response = client.post(
        "/v1/fine_tuning/jobs",
        json.dumps({"model": "tailor-tiny", "training_file": f"file-{queue_full.pk.hex}"}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
    )
    assert response.status_code == 403
    assert response.json() == {"error": {
        "message": QUEUED_FULL, "type": "insufficient_quota", "param": None,
        "code": "quota_exceeded",
    }}  # fmt: skip


def test_the_wizard_refuses_start_over_a_limit_and_says_why(alice_client, queue_full):
    response = alice_client.post(
        "/jobs/new/",
        {"data.dataset": str(queue_full.pk), "model.base_model": "tailor-tiny",
         "model.method": "lora", "preset": "quick"},
    )  # fmt: skip
    assert response.status_code == 403, response.content[:500]
    assert QUEUED_FULL in response.content.decode()
    assert FineTuneJob.objects.count() == 1


def test_an_upload_past_the_storage_limit_is_refused_on_the_api_and_the_page(
    alice, alice_api, alice_client
):
    QuotaOverride.objects.create(user=alice, storage_bytes=100)
    body = b'{"messages": [{"role": "user", "content": "hi"}, ' + b" " * 200 + b"]}\n"
    message = (
        f"Storage limit reached: you use 0 bytes and this upload adds {len(body)} bytes, over "
        "your limit of 100 bytes. Delete datasets or jobs you no longer need, or ask an "
        "operator for more."
    )
    response = alice_api.post(
        "/api/v1/datasets/", {"file": upload("big.jsonl", body)}, format="multipart"
    )
    assert response.status_code == 403
    assert response.json() == {
        "error": {"code": "quota_exceeded", "message": message, "field": "file"}
    }
    page = alice_client.post("/datasets/upload/", {"file": upload("big.jsonl", body)})
    assert page.status_code == 422
    assert message in page.content.decode()
    assert not alice.datasets.exists()
