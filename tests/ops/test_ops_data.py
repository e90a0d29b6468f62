"""What /ops/, GET /api/v1/ops/ and /metrics tell, and to whom: staff only.

No worker runs here: rows are written as the services and the ledger leave
them, heartbeats as a worker writes them (ops/workers.py), in the real Redis.
"""

import json
import time

import pytest
from django.db import connection
from django.test import override_settings
from prometheus_client.parser import text_string_to_metric_families

from jobs.models import FineTuneJob, JobStatus
from jobs.services import ledger
from ops import snapshot, storage, workers
from studio.services.tokens import create_token
from tests.builders import api_client, make_job, ready_sample

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("demo_models")]


@pytest.fixture(autouse=True)
def _no_heartbeats():
    """Each test starts with no worker records of its own making (the
    session's real workers, if any run, write theirs again within a beat)."""
    yield
    for name in ("gpu-1@box", "gone@box"):
        workers.forget(name)


def heartbeat(name: str, **fields) -> dict:
    record = {"name": name, "pid": 4242, "queues": ["train"], "concurrency": 1,
              "started_at": "2026-01-01T00:00:00+00:00", "uptime_seconds": 3600.0,
              "host": "box", "torch": "2.13.0", "cuda": "12.8", "memory_total": 64 * 2**30,
              "gpus": [{"name": "NVIDIA H200", "memory_used": 30 * 2**30,
                        "memory_total": 141 * 2**30}],
              "memory_used": 3 * 2**30, "loaded": None, "at": "2026-01-01T01:00:00+00:00",
              **fields}  # fmt: skip
    workers.write(record)
    return record


def queued(owner, dataset, name: str) -> FineTuneJob:
    job = make_job(owner, dataset, name=name)
    FineTuneJob.objects.filter(pk=job.pk).update(status=JobStatus.QUEUED, queued_at=job.created_at)
    return job


def test_a_page_for_staff_only(client, alice, olga):
    client.force_login(alice)
    assert client.get("/ops/").status_code == 404
    assert client.get("/ops/?section=queues").status_code == 404
    client.force_login(olga)
    response = client.get("/ops/")
    assert response.status_code == 200
    assert b"<h1>Operations</h1>" in response.content


def test_the_page_shows_queued_jobs_in_order_with_their_owners(client, alice, bob, olga):
    first = queued(alice, ready_sample(alice), "alice-first")
    second = queued(bob, ready_sample(bob), "bob-second")
    client.force_login(olga)
    page = client.get("/ops/?section=queues").content.decode()
    assert page.index("alice-first") < page.index("bob-second")
    data = snapshot.queues()
    assert [(j["id"], j["position"], j["owner"]) for j in data["queued_jobs"]] == [
        (str(first.pk), 1, "alice"), (str(second.pk), 2, "bob"),
    ]  # fmt: skip
    train = next(q for q in data["queues"] if q["name"] == "train")
    assert train["waiting"]["training"] == 2
    assert train["oldest_waiting_seconds"] is not None


def test_a_worker_shows_with_the_job_the_ledger_says_it_runs(client, alice, olga):
    job = queued(alice, ready_sample(alice), "on-the-gpu")
    ledger.claim(job.pk, "gpu-1@box")
    heartbeat("gpu-1@box")
    found = next(w for w in snapshot.fleet()["workers"] if w["name"] == "gpu-1@box")
    assert found["reporting"] is True
    assert found["running"] == [{"kind": "training", "id": str(job.pk)}]
    client.force_login(olga)
    page = client.get("/ops/?section=workers").content.decode()
    assert 'data-worker="gpu-1@box"' in page
    assert "NVIDIA H200" in page
    assert "30.0 GiB of 141.0 GiB" in page
    assert f'href="/jobs/{job.pk}/"' in page


@override_settings(TAILOR_WORKER_HEARTBEAT_SECONDS=1)
def test_a_worker_that_stops_reporting_turns_red_until_its_record_expires(client, olga):
    heartbeat("gone@box")
    time.sleep(workers.STALE_AFTER_BEATS + 0.3)
    found = next(w for w in workers.read_all() if w["name"] == "gone@box")
    assert found["reporting"] is False
    assert found["last_beat_seconds_ago"] is None
    client.force_login(olga)
    page = client.get("/ops/?section=workers").content.decode()
    assert '<tr data-worker="gone@box" class="ops-stale">' in page
    row = page[page.index('data-worker="gone@box"') :]
    assert "stopped reporting" in row
    workers.client().delete(workers.record_key("gone@box"))  # as its expiry would
    assert "gone@box" not in [w["name"] for w in workers.read_all()]
    assert not workers.client().sismember(workers.INDEX_KEY, "gone@box")


def test_the_page_reads_a_bounded_number_of_queries(client, olga, alice):
    dataset = ready_sample(alice)
    for index in range(3):
        queued(alice, dataset, f"few-{index}")
    client.force_login(olga)
    client.get("/ops/")  # warm caches (content types, sessions)

    def queries_of(url: str) -> list[str]:
        seen = []

        def count(execute, sql, params, many, context):
            seen.append(sql)
            return execute(sql, params, many, context)

        with connection.execute_wrapper(count):
            response = client.get(url)
        assert response.status_code == 200
        return seen

    few = queries_of("/ops/")
    for index in range(60):
        queued(alice, dataset, f"many-{index}")
    many = queries_of("/ops/")
    page = client.get("/ops/").content.decode()
    assert len(few) > 10  # counted: the page reads the ledger
    assert len(many) == len(few)
    assert "and 13 more" in page  # 63 queued, 50 listed


def test_storage_is_measured_by_kind_and_by_user(tmp_path, alice, bob):
    dataset = ready_sample(bob)
    job = make_job(alice, ready_sample(alice), name="sized")
    files = {
        f"jobs/{job.pk}/attempt-1/checkpoints/checkpoint-5/optimizer.pt": 1000,
        f"jobs/{job.pk}/attempt-1/adapter/adapter_model.safetensors": 300,
        f"jobs/{job.pk}/attempt-1/adapter.zip": 200,
        f"jobs/{job.pk}/export-1/model.safetensors": 5000,
        f"jobs/{job.pk}/merged.zip": 700,
        f"jobs/{job.pk}/data/train.jsonl": 40,
        f"datasets/{dataset.pk}/r1/records.jsonl": 60,
        "stray.tmp": 9,
    }
    for path, size in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(b"x" * size)
    result = storage.survey(tmp_path)
    assert result["by_kind"] == {"datasets": 100, "checkpoints": 1000, "adapters": 500,
                                 "exports": 5700, "other": 9}  # fmt: skip
    assert result["users"] == [{"username": "alice", "bytes": 7240},
                               {"username": "bob", "bytes": 60}]  # fmt: skip
    assert result["files"] == 8
    assert result["total"] == 7309


def test_the_api_is_for_staff_tokens(alice, olga):
    assert api_client(alice).get("/api/v1/ops/").status_code == 403
    response = api_client(olga).get("/api/v1/ops/")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"queues", "workers", "training", "serving", "maintenance", "storage",
                         "jobs_by_state"}  # fmt: skip
    assert [q["name"] for q in body["queues"]["queues"]] == [
        "default", "train", "infer", "evaluate", "maintenance",
    ]  # fmt: skip


def test_the_api_is_in_the_schema(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").content.decode()
    assert "/api/v1/ops/" in schema


def test_metrics_for_staff_sessions_staff_tokens_and_the_scraper_token(client, alice, olga):
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    alice_secret = create_token(alice, "scripts").secret
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {alice_secret}").status_code == 403
    olga_secret = create_token(olga, "grafana").secret
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {olga_secret}").status_code == 200
    with override_settings(TAILOR_METRICS_TOKEN="scrape-me-42"):
        scraped = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me-42")
    assert scraped.status_code == 200
    client.force_login(alice)
    assert client.get("/metrics").status_code == 403


def test_metrics_name_queues_workers_jobs_gpu_memory_and_latencies(client, alice, olga):
    queued(alice, ready_sample(alice), "waiting")
    heartbeat("gpu-1@box")
    client.force_login(olga)
    client.get("/ops/")  # one timed request at least
    text = client.get("/metrics").content.decode()
    assert 'tailor_queue_depth{queue="train"}' in text
    assert 'tailor_work_waiting{kind="training",queue="train"} 1.0' in text
    assert 'tailor_worker_up{host="box",worker="gpu-1@box"} 1.0' in text
    assert 'tailor_jobs{state="queued"} 1.0' in text
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    gpu = (("gpu", "0"), ("name", "NVIDIA H200"), ("worker", "gpu-1@box"))
    assert samples[("tailor_worker_gpu_memory_used_bytes", gpu)] == 30 * 2**30
    assert samples[("tailor_worker_gpu_memory_total_bytes", gpu)] == 141 * 2**30
    assert (
        'tailor_http_request_duration_seconds_count{method="GET",route="ops/",status="2xx"}' in text
    )
    assert "tailor_disk_free_bytes" in text


def test_the_surveys_result_is_kept_with_its_time(olga, client, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    (tmp_path / "stray.bin").write_bytes(b"x" * 2048)
    storage.measure_and_store()
    kept = json.loads(workers.client().get(storage.SURVEY_KEY))
    assert kept["by_kind"]["other"] == 2048
    client.force_login(olga)
    page = client.get("/ops/?section=storage").content.decode()
    assert f"Measured at {kept['measured_at']}" in page
    assert "2 KiB" in page
