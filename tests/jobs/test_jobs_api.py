"""/api/v1/jobs/ and /api/v1/models/: create, follow, cancel, retry, download.

Real database and Redis; no worker: jobs are created through the API and
their progress is written directly, as a worker would.
"""

import io
import zipfile

import pytest
import yaml
from rest_framework.test import APIClient

from jobs.models import Checkpoint, FineTuneJob, JobEvent, JobStatus, MetricPoint
from jobs.services.lifecycle import check_start_job, create_job
from tests.api_errors import error_message, field_errors
from tests.builders import api_client, make_job, ready_sample

pytestmark = pytest.mark.django_db

JOBS = "/api/v1/jobs/"


@pytest.fixture
def alice_job(alice, routing):
    return make_job(alice, routing)


def document(dataset, **sections) -> dict:
    return {
        "data": {"dataset": str(dataset.pk)},
        "model": {"base_model": "tailor-tiny", "method": "qlora"},
        "preset": "quick",
        **sections,
    }


def make_lora_job(owner, dataset) -> FineTuneJob:
    return create_job(owner, check_start_job(owner, document(dataset, model={
        "base_model": "tailor-tiny", "method": "lora",
    })), start=False)  # fmt: skip


def set_status(job, status, **fields) -> None:
    FineTuneJob.objects.filter(pk=job.pk).update(status=status, **fields)


# --- creating ---------------------------------------------------------------------------


def test_a_configuration_document_creates_a_queued_job_and_sends_its_task(
    alice_api, routing, django_capture_on_commit_callbacks
):
    body = document(routing, name="Routing, fast", training={"learning_rate": 0.002})
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_api.post(JOBS, body, format="json")
    assert response.status_code == 201, response.json()
    job = response.json()
    assert (job["status"], job["status_label"]) == ("queued", "Queued")
    assert job["name"] == "Routing, fast"
    assert (job["base_model"], job["method"], job["preset"]) == ("tailor-tiny", "qlora", "quick")
    assert job["dataset"] == str(routing.pk)
    assert job["config"]["training"]["learning_rate"] == 0.002
    # The rest comes from the preset: 1,200 training rows in batches of 16.
    assert job["config"]["training"]["batch_size"] == 16
    assert job["total_steps"] == job["plan"]["total_steps"] == 75
    assert FineTuneJob.objects.get(pk=job["id"]).task_id != ""


def test_the_flat_shape_makes_the_same_configuration_as_the_document(alice_api, routing):
    flat = alice_api.post(
        JOBS,
        {
            "dataset": str(routing.pk),
            "base_model": "tailor-tiny",
            "method": "lora",
            "preset": "quick",
            "name": "Routing",
            "hyperparameters": {"learning_rate": 0.002, "rank": 8, "epochs": 2},
            "start": False,
        },
        format="json",
    )
    assert flat.status_code == 201, flat.json()
    nested = alice_api.post(
        JOBS,
        {
            "data": {"dataset": str(routing.pk)},
            "model": {"base_model": "tailor-tiny", "method": "lora"},
            "preset": "quick",
            "name": "Routing",
            "lora": {"rank": 8},
            "training": {"learning_rate": 0.002, "epochs": 2},
            "start": False,
        },
        format="json",
    )
    assert nested.status_code == 201, nested.json()
    # The second job of one name is numbered; the rest is the same configuration.
    first, second = flat.json()["config"], nested.json()["config"]
    assert (first.pop("name"), second.pop("name")) == ("Routing", "Routing (2)")
    assert first == second
    assert flat.json()["config"]["lora"]["rank"] == 8
    assert flat.json()["config"]["model"]["method"] == "lora"


def test_start_false_creates_the_job_without_queueing_it(alice_api, routing):
    response = alice_api.post(JOBS, {**document(routing), "start": False}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["status"] == "created"
    assert response.json()["queued_at"] is None


def test_a_learning_rate_out_of_range_is_refused_and_no_job_is_created(alice_api, routing):
    response = alice_api.post(
        JOBS, document(routing, training={"learning_rate": 0.5}), format="json"
    )
    assert response.status_code == 400
    assert field_errors(response) == {
        "training.learning_rate": ["must be more than 0 and at most 0.1."]
    }
    assert not FineTuneJob.objects.exists()


def test_unknown_fields_are_refused_each_by_its_name(alice_api, routing):
    response = alice_api.post(
        JOBS,
        document(routing, training={"learning_rat": 0.001}, extras={"a": 1}),
        format="json",
    )
    assert response.status_code == 400
    assert field_errors(response) == {
        "training.learning_rat": ["is not a known field."],
        "extras": ["is not a configuration section."],
    }
    flat = alice_api.post(
        JOBS,
        {"dataset": str(routing.pk), "base_model": "tailor-tiny", "hyperparameters": {"lr": 1}},
        format="json",
    )
    assert flat.status_code == 400
    assert field_errors(flat) == {"hyperparameters.lr": ["is not a training or lora field."]}
    assert not FineTuneJob.objects.exists()


def test_qlora_on_minilm_is_refused_with_the_reason(alice, alice_api, demo_models):
    sentiment = ready_sample(alice, "sentiment")
    response = alice_api.post(
        JOBS,
        {"dataset": str(sentiment.pk), "base_model": "minilm-l6", "method": "qlora"},
        format="json",
    )
    assert response.status_code == 400
    assert field_errors(response) == {
        "model.method": [
            "MiniLM L6 (classifier, 22.7M) cannot be loaded in 4 bits here (bitsandbytes' "
            "4-bit layers fail during training of this encoder on CPU); choose LoRA."
        ]
    }
    assert not FineTuneJob.objects.exists()


def test_another_users_dataset_is_no_such_dataset(bob, alice_api, demo_models):
    bobs = ready_sample(bob)
    response = alice_api.post(JOBS, document(bobs), format="json")
    assert response.status_code == 400
    assert field_errors(response) == {"data.dataset": ["no such dataset."]}
    assert not FineTuneJob.objects.exists()


def test_a_start_flag_that_is_not_a_boolean_is_refused(alice_api, routing):
    response = alice_api.post(JOBS, {**document(routing), "start": "later"}, format="json")
    assert response.status_code == 400
    assert field_errors(response) == {"start": ["must be true or false."]}


def test_an_uploaded_yaml_file_creates_the_same_configuration_as_the_json(alice_api, routing):
    body = {**document(routing, training={"learning_rate": 0.002}), "start": False}
    first = alice_api.post(JOBS, body, format="json").json()
    download = alice_api.get(f"{JOBS}{first['id']}/config/")
    assert download.status_code == 200
    assert download["Content-Type"] == "text/yaml; charset=utf-8"
    assert download["Content-Disposition"] == (
        f'attachment; filename="support-ticket-routing-tailor-tiny-quick-{first["id"][:8]}.yaml"'
    )
    assert yaml.safe_load(download.content) == first["config"]

    upload = io.BytesIO(download.content)
    upload.name = "tailor-job.yaml"
    second = alice_api.post(JOBS, {"config_file": upload, "start": "false"}, format="multipart")
    assert second.status_code == 201, second.json()
    assert second.json()["status"] == "created"
    assert second.json()["id"] != first["id"]
    again = second.json()["config"]
    assert again.pop("name") == f"{first['config'].pop('name')} (2)"  # numbered, not shared
    assert again == first["config"]


def test_form_fields_beside_an_uploaded_file_override_it(alice_api, routing):
    upload = io.BytesIO(yaml.safe_dump(document(routing, lora={"rank": 32})).encode())
    upload.name = "job.yaml"
    response = alice_api.post(
        JOBS,
        {
            "config_file": upload,
            "name": "Rank 8",
            "method": "lora",
            "hyperparameters": '{"rank": 8}',
            "start": "false",
        },
        format="multipart",
    )
    assert response.status_code == 201, response.json()
    config = response.json()["config"]
    assert (config["name"], config["model"]["method"], config["lora"]["rank"]) == (
        "Rank 8", "lora", 8,
    )  # fmt: skip


def test_an_unreadable_yaml_file_is_refused_with_its_line(alice_api, routing):
    upload = io.BytesIO(b"data:\n  dataset: [unclosed\n")
    upload.name = "job.yaml"
    response = alice_api.post(JOBS, {"config_file": upload}, format="multipart")
    assert response.status_code == 400
    assert field_errors(response) == {"config_file": ["is not valid YAML (line 3)."]}


def test_the_estimate_shows_the_resolved_configuration_without_creating_a_job(alice_api, routing):
    response = alice_api.post(f"{JOBS}estimate/", document(routing), format="json")
    assert response.status_code == 200, response.json()
    draft = response.json()
    assert set(draft) == {"config", "plan", "estimate"}
    assert draft["config"]["data"]["dataset"] == str(routing.pk)
    assert draft["plan"]["total_steps"] == draft["estimate"]["steps"] == 75
    assert draft["estimate"]["memory_bytes"] > 0
    assert not FineTuneJob.objects.exists()
    bad = alice_api.post(f"{JOBS}estimate/", document(routing, lora={"rank": 0}), format="json")
    assert bad.status_code == 400
    assert field_errors(bad) == {"lora.rank": ["must be at least 1 and at most 256."]}


# --- reading ----------------------------------------------------------------------------


def test_the_list_is_paginated_and_filters_by_status(alice, alice_api, routing):
    created = make_job(alice, routing)
    cancelled = make_job(alice, routing)
    set_status(cancelled, JobStatus.CANCELLED)
    everything = alice_api.get(JOBS).json()
    assert everything["count"] == 2
    assert [job["id"] for job in everything["results"]] == [str(cancelled.pk), str(created.pk)]
    only = alice_api.get(f"{JOBS}?status=cancelled").json()
    assert [job["id"] for job in only["results"]] == [str(cancelled.pk)]
    page = alice_api.get(f"{JOBS}?per_page=1&page=2").json()
    assert [job["id"] for job in page["results"]] == [str(created.pk)]
    assert page["next"] is None and page["previous"] is not None
    bad = alice_api.get(f"{JOBS}?status=done")
    assert bad.status_code == 400
    assert field_errors(bad) == {
        "status": [
            "Must be one of created, queued, running, cancelling, succeeded, failed, cancelled."
        ]
    }


def test_a_job_shows_its_progress_configuration_and_links(alice_api, alice_job):
    set_status(
        alice_job, JobStatus.FAILED, current_step=17, train_loss=1.25, error_code="oom",
        error_message="Out of memory.", error_traceback="Traceback …",
    )  # fmt: skip
    job = alice_api.get(f"{JOBS}{alice_job.pk}/").json()
    assert job["id"] == str(alice_job.pk)
    assert (job["status"], job["status_label"]) == ("failed", "Failed")
    assert (job["current_step"], job["total_steps"], job["progress_percent"]) == (17, 75, 22)
    assert job["train_loss"] == 1.25
    assert job["error"] == {"code": "oom", "message": "Out of memory."}
    assert job["fine_tuned_model"].startswith("ft:tailor-tiny:alice::")
    assert job["task"] == "causal-lm"
    assert job["validation_dataset"] is None
    assert job["config"] == alice_job.config
    base = f"http://testserver{JOBS}{alice_job.pk}/"
    assert job["links"]["self"] == base
    assert job["links"]["metrics"] == f"{base}metrics/"
    assert job["links"]["events"] == f"{base}events/"
    assert job["links"]["checkpoints"] == f"{base}checkpoints/"
    assert job["links"]["config_yaml"] == f"{base}config/"
    assert job["links"]["adapter"] is None
    for key in ("created_at", "queued_at", "started_at", "finished_at", "estimate", "plan"):
        assert key in job


def test_staff_see_the_traceback_of_a_failed_job(olga, alice_job):
    set_status(alice_job, JobStatus.FAILED, error_code="oom", error_message="Out of memory.",
               error_traceback="Traceback …")  # fmt: skip
    job = api_client(olga).get(f"{JOBS}{alice_job.pk}/").json()
    assert job["error"] == {
        "code": "oom",
        "message": "Out of memory.",
        "traceback": "Traceback …",
    }


def test_metrics_after_a_step_come_in_step_order(alice_api, alice_job):
    for step in (30, 10, 20):
        MetricPoint.objects.create(job=alice_job, attempt=1, step=step, train_loss=step / 10)
    MetricPoint.objects.create(job=alice_job, attempt=1, step=20, kind="eval", val_loss=1.5)
    response = alice_api.get(f"{JOBS}{alice_job.pk}/metrics/?after_step=10")
    assert response.status_code == 200
    body = response.json()
    assert [(p["step"], p["kind"]) for p in body["results"]] == [
        (20, "eval"), (20, "train"), (30, "train"),
    ]  # fmt: skip
    assert body["next"] is None
    assert body["results"][0]["val_loss"] == 1.5
    assert body["results"][2]["train_loss"] == 3.0
    assert body["results"][2]["total_steps"] == 75


def test_a_metrics_page_ends_on_a_whole_step(alice_api, alice_job):
    MetricPoint.objects.create(job=alice_job, attempt=1, step=10, train_loss=2.0)
    MetricPoint.objects.create(job=alice_job, attempt=1, step=20, kind="eval", val_loss=1.5)
    MetricPoint.objects.create(job=alice_job, attempt=1, step=20, train_loss=1.4)
    first = alice_api.get(f"{JOBS}{alice_job.pk}/metrics/?limit=2").json()
    assert [p["step"] for p in first["results"]] == [10]
    assert first["next"] == f"http://testserver{JOBS}{alice_job.pk}/metrics/?after_step=10&limit=2"
    second = alice_api.get(first["next"]).json()
    assert [(p["step"], p["kind"]) for p in second["results"]] == [(20, "eval"), (20, "train")]
    assert second["next"] is None


def test_events_after_an_id_come_in_order(alice_api, alice_job):
    created = JobEvent.objects.get(job=alice_job)
    assert created.message == "Created from Support ticket routing."
    log = JobEvent.objects.create(job=alice_job, kind="log", message="Tokenising 1,200 rows.")
    warning = JobEvent.objects.create(
        job=alice_job, kind="log", level="warning", message="Loss is rising."
    )
    everything = alice_api.get(f"{JOBS}{alice_job.pk}/events/").json()
    assert [e["id"] for e in everything["results"]] == [created.pk, log.pk, warning.pk]
    assert everything["results"][0]["to_status"] == "created"
    later = alice_api.get(f"{JOBS}{alice_job.pk}/events/?after={created.pk}&limit=1").json()
    assert later["results"] == [
        {
            "id": log.pk,
            "created_at": log.created_at.isoformat(),
            "kind": "log",
            "level": "info",
            "message": "Tokenising 1,200 rows.",
            "to_status": "",
        }
    ]
    assert later["next"].endswith(f"/events/?after={log.pk}&limit=1")
    bad = alice_api.get(f"{JOBS}{alice_job.pk}/events/?after=first")
    assert bad.status_code == 400
    assert field_errors(bad) == {"after": ["Must be a whole number."]}


def test_checkpoints_are_listed_by_step(alice_api, alice_job):
    Checkpoint.objects.create(job=alice_job, attempt=1, step=40, path="/x/40", val_loss=1.1)
    Checkpoint.objects.create(job=alice_job, attempt=1, step=20, path="/x/20", train_loss=1.9)
    checkpoints = alice_api.get(f"{JOBS}{alice_job.pk}/checkpoints/").json()
    assert [(c["step"], c["attempt"], c["train_loss"], c["val_loss"]) for c in checkpoints] == [
        (20, 1, 1.9, None),
        (40, 1, None, 1.1),
    ]
    assert "path" not in checkpoints[0]


# --- acting -------------------------------------------------------------------------------


def test_cancelling_a_created_job_cancels_it_and_a_second_cancel_is_a_conflict(
    alice_api, alice_job
):
    response = alice_api.post(f"{JOBS}{alice_job.pk}/cancel/")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert response.json()["finished_at"] is not None
    again = alice_api.post(f"{JOBS}{alice_job.pk}/cancel/")
    assert again.status_code == 409
    assert error_message(again) == "The job has already finished (cancelled)."


def test_retrying_a_cancelled_job_creates_a_new_job_with_its_configuration(alice_api, alice_job):
    refused = alice_api.post(f"{JOBS}{alice_job.pk}/retry/")
    assert refused.status_code == 409
    assert error_message(refused) == "Only a finished job can be retried; cancel it first."
    alice_api.post(f"{JOBS}{alice_job.pk}/cancel/")
    response = alice_api.post(f"{JOBS}{alice_job.pk}/retry/")
    assert response.status_code == 201, response.json()
    retry = response.json()
    assert retry["id"] != str(alice_job.pk)
    assert retry["status"] == "queued"
    assert retry["retry_of"] == str(alice_job.pk)
    assert retry["config"] == alice_job.config
    assert FineTuneJob.objects.count() == 2


def test_the_adapter_is_a_conflict_until_the_job_has_succeeded(alice_api, alice_job):
    response = alice_api.get(f"{JOBS}{alice_job.pk}/adapter/")
    assert response.status_code == 409
    assert error_message(response) == (
        "The job is created; its adapter can be downloaded once it has succeeded."
    )


def test_a_succeeded_jobs_adapter_downloads_as_a_zip(alice_api, alice_job):
    # The zip lies beside the adapter the succeeding attempt recorded.
    archive = alice_job.attempt_folder(1) / "adapter.zip"
    archive.parent.mkdir(parents=True)
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("adapter/adapter_config.json", '{"r": 16}')
    set_status(alice_job, JobStatus.SUCCEEDED, adapter_path=str(archive.parent / "adapter"))
    response = alice_api.get(f"{JOBS}{alice_job.pk}/adapter/", HTTP_ACCEPT="application/zip")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == (
        f'attachment; filename="support-ticket-routing-tailor-tiny-quick-{alice_job.pk.hex[:8]}'
        '-adapter.zip"'
    )
    content = b"".join(response.streaming_content)
    with zipfile.ZipFile(io.BytesIO(content)) as zipped:
        assert zipped.read("adapter/adapter_config.json") == b'{"r": 16}'
    links = alice_api.get(f"{JOBS}{alice_job.pk}/").json()["links"]
    assert links["adapter"] == f"http://testserver{JOBS}{alice_job.pk}/adapter/"


def test_only_a_succeeded_lora_or_qlora_job_can_be_exported(alice, alice_api, routing):
    qlora = make_job(alice, routing)
    refused = alice_api.post(f"{JOBS}{qlora.pk}/export/")
    assert refused.status_code == 409
    assert error_message(refused) == (
        "Only a succeeded job's adapter can be merged into a full model; this job is created."
    )
    set_status(qlora, JobStatus.SUCCEEDED)
    # The base is loaded un-quantised for the merge (jobs/training/export.py).
    assert alice_api.post(f"{JOBS}{qlora.pk}/export/").status_code == 202
    lora = make_lora_job(alice, routing)
    none_yet = alice_api.get(f"{JOBS}{lora.pk}/export/")
    assert none_yet.status_code == 409
    assert error_message(none_yet) == (
        "The job has no merged model: POST here to export one (LoRA or QLoRA)."
    )
    set_status(lora, JobStatus.SUCCEEDED)
    queued = alice_api.post(f"{JOBS}{lora.pk}/export/")
    assert queued.status_code == 202
    assert queued.json() == {"status": "queued", "error": ""}
    waiting = alice_api.get(f"{JOBS}{lora.pk}/export/")
    assert (waiting.status_code, waiting.json()) == (202, {"status": "queued", "error": ""})


def test_a_ready_export_downloads_the_merged_model(alice, alice_api, routing):
    lora = make_lora_job(alice, routing)
    merged = lora.folder / "merged-model.zip"
    merged.write_bytes(b"PK\x05\x06" + bytes(18))
    set_status(lora, JobStatus.SUCCEEDED, export_status="ready", export_path=str(merged))
    response = alice_api.get(f"{JOBS}{lora.pk}/export/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert b"".join(response.streaming_content) == merged.read_bytes()


def test_a_job_cannot_be_replaced(alice_api, alice_job):
    # Deleting is allowed (see "deleting" below), and PATCH changes the owner's
    # tags, note and star (tests/jobs/test_organise.py); replacing a job is not.
    response = alice_api.put(f"{JOBS}{alice_job.pk}/", {}, format="json")
    assert response.status_code == 405
    assert FineTuneJob.objects.filter(pk=alice_job.pk).exists()


# --- who may -------------------------------------------------------------------------------


def test_bob_lists_none_of_alices_jobs(bob_api, alice_job):
    assert bob_api.get(JOBS).json()["results"] == []


@pytest.mark.parametrize(
    ("method", "endpoint"),
    [
        ("get", ""),
        ("post", "cancel/"),
        ("post", "retry/"),
        ("get", "metrics/"),
        ("get", "events/"),
        ("get", "checkpoints/"),
        ("get", "adapter/"),
        ("get", "config/"),
        ("get", "export/"),
        ("post", "export/"),
    ],
    ids=lambda value: value.rstrip("/") or "detail",
)
def test_bob_gets_404_on_every_endpoint_of_alices_job(bob_api, alice_job, method, endpoint):
    response = getattr(bob_api, method)(f"{JOBS}{alice_job.pk}/{endpoint}")
    assert response.status_code == 404
    assert error_message(response) == "No such job."
    assert FineTuneJob.objects.get(pk=alice_job.pk).status == "created"


def test_the_api_answers_a_session_or_a_token_and_nothing_else(alice_client, alice_job):
    assert alice_client.get(JOBS).json()["count"] == 1
    anonymous = APIClient().get(JOBS)
    assert anonymous.status_code == 401
    forged = APIClient()
    forged.credentials(HTTP_AUTHORIZATION="Bearer tlr_not-a-token")
    assert forged.get(JOBS).status_code == 401


# --- the model catalog -----------------------------------------------------------------------


def test_the_catalog_lists_models_and_filters_by_task(alice_api, demo_models):
    everything = alice_api.get("/api/v1/models/").json()
    ids = [model["id"] for model in everything]
    assert ids[:2] == ["tailor-tiny", "minilm-l6"]
    assert "qwen2.5-0.5b-instruct" in ids
    classifiers = alice_api.get("/api/v1/models/?task=sequence-classification").json()
    assert [model["id"] for model in classifiers] == ["minilm-l6", "distilbert-base-uncased"]
    bad = alice_api.get("/api/v1/models/?task=vision")
    assert bad.status_code == 400
    assert field_errors(bad) == {
        "task": [
            "Must be one of causal-lm, sequence-classification, generation, classification, "
            "preference, feedback."
        ]
    }


def test_a_model_shows_its_availability_memory_and_recommended_settings(alice_api, demo_models):
    tiny = alice_api.get("/api/v1/models/tailor-tiny/").json()
    assert tiny["display_name"] == "Tailor Tiny (demo, 3.6M)"
    assert (tiny["task"], tiny["source_kind"], tiny["supports_4bit"]) == (
        "causal-lm", "bundled", True,
    )  # fmt: skip
    assert tiny["availability"] == {
        "code": "ready",
        "label": "On this machine",
        "detail": "Bundled with Tailor.",
    }
    assert set(tiny["memory_estimate_bytes"]) == {"qlora", "lora", "full"}
    assert tiny["recommended"] == {
        "learning_rate": 0.003,
        "batch_size": 16,
        "target_modules": ["all-linear"],
    }
    minilm = alice_api.get("/api/v1/models/minilm-l6/").json()
    assert minilm["availability"]["code"] == "ready"
    assert set(minilm["memory_estimate_bytes"]) == {"lora", "full"}
    assert minilm["quantization_note"] == (
        "bitsandbytes' 4-bit layers fail during training of this encoder on CPU"
    )
    dotted = alice_api.get("/api/v1/models/qwen2.5-0.5b-instruct/")
    assert dotted.status_code == 200
    assert dotted.json()["availability"]["code"] in ("ready", "download")
    missing = alice_api.get("/api/v1/models/gpt-5/")
    assert missing.status_code == 404
    assert error_message(missing) == "No such model in the catalog."


def test_a_long_username_and_suffix_still_give_a_model_name_that_fits(
    django_user_model, demo_models
):
    import uuid

    from jobs.services.lifecycle import _fine_tuned_name

    owner = django_user_model.objects.create_user("u" * 150, password="x")
    draft = check_start_job(owner, document(ready_sample(owner, "support-routing")))
    job = create_job(owner, draft, start=False, suffix="s" * 64)
    assert job.fine_tuned_model == f"ft:tailor-tiny:{'u' * 150}:{'s' * 64}:{job.pk.hex[:8]}"
    # A long catalog id as well: the owner's part gives way, the rest stays whole.
    job_id = uuid.uuid4()
    name = _fine_tuned_name(owner, "m" * 100, job_id, "s" * 64)
    assert len(name) == 300
    assert name.startswith(f"ft:{'m' * 100}:uuu")
    assert name.endswith(f"u:{'s' * 64}:{job_id.hex[:8]}")


def resumed_from_step_4(job) -> None:
    """What the ledger leaves after attempt 2 resumed from step 4's checkpoint:
    attempt 1's points through step 4, then attempt 2's."""
    FineTuneJob.objects.filter(pk=job.pk).update(attempt=2, status=JobStatus.RUNNING)
    for step in (1, 2, 3, 4):
        MetricPoint.objects.create(job=job, attempt=1, step=step, train_loss=5 - step / 10)
    for step in (5, 6, 7, 8):
        MetricPoint.objects.create(job=job, attempt=2, step=step, train_loss=3 - step / 10)


def test_a_metrics_cursor_from_a_replaced_attempt_is_told_where_to_rewind(alice_api, alice_job):
    resumed_from_step_4(alice_job)
    url = f"{JOBS}{alice_job.pk}/metrics/"
    # A script read attempt 1's steps 1-10 before the resume.
    body = alice_api.get(f"{url}?after_step=10&attempt=1").json()
    assert body["rewind_to"] == 4
    assert [(p["attempt"], p["step"]) for p in body["results"]] == [(2, 5), (2, 6), (2, 7), (2, 8)]
    assert body["results"][0]["train_loss"] == 2.5
    assert body["next"] is None

    # With the newest attempt it read, the cursor is current: nothing to rewind.
    body = alice_api.get(f"{url}?after_step=8&attempt=2").json()
    assert body == {"results": [], "next": None, "rewind_to": None}
    # A cursor that never passed the resume step loses nothing either.
    body = alice_api.get(f"{url}?after_step=3&attempt=1").json()
    assert body["rewind_to"] is None
    assert [(p["attempt"], p["step"]) for p in body["results"]][:2] == [(1, 4), (2, 5)]
    # Without `attempt`, the answer is what it always was.
    body = alice_api.get(f"{url}?after_step=6").json()
    assert body["rewind_to"] is None
    assert [p["step"] for p in body["results"]] == [7, 8]


def test_the_next_page_after_a_rewind_carries_the_newest_attempt(alice_api, alice_job):
    resumed_from_step_4(alice_job)
    first = alice_api.get(f"{JOBS}{alice_job.pk}/metrics/?after_step=10&attempt=1&limit=2").json()
    assert first["rewind_to"] == 4
    assert [p["step"] for p in first["results"]] == [5, 6]
    assert first["next"] == (
        f"http://testserver{JOBS}{alice_job.pk}/metrics/?after_step=6&attempt=2&limit=2"
    )
    second = alice_api.get(first["next"]).json()
    assert second["rewind_to"] is None
    assert [p["step"] for p in second["results"]] == [7, 8]


def test_a_metrics_attempt_must_be_a_whole_number_and_bob_gets_no_such_job(
    alice_api, bob_api, alice_job
):
    bad = alice_api.get(f"{JOBS}{alice_job.pk}/metrics/?attempt=latest")
    assert bad.status_code == 400
    assert field_errors(bad) == {"attempt": ["Must be a whole number."]}
    foreign = bob_api.get(f"{JOBS}{alice_job.pk}/metrics/?after_step=10&attempt=1")
    assert foreign.status_code == 404
    assert error_message(foreign) == "No such job."


# --- deleting and resuming -------------------------------------------------------------------


def complete_checkpoint(job, attempt: int, step: int) -> Checkpoint:
    folder = job.attempt_folder(attempt) / "checkpoints" / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    (folder / "trainer_state.json").write_text(f'{{"global_step": {step}}}')
    return Checkpoint.objects.create(job=job, attempt=attempt, step=step, path=str(folder))


def test_deleting_a_finished_job_removes_it_with_its_files(
    alice_api, alice_job, django_capture_on_commit_callbacks
):
    complete_checkpoint(alice_job, 1, 2)
    set_status(alice_job, JobStatus.FAILED, attempt=1, error_code="disk_full")
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_api.delete(f"{JOBS}{alice_job.pk}/")
    assert response.status_code == 204 and response.content == b""
    assert not FineTuneJob.objects.filter(pk=alice_job.pk).exists()
    assert not Checkpoint.objects.filter(job_id=alice_job.pk).exists()
    assert not alice_job.folder.exists()
    assert alice_job.dataset.train_path.exists()  # the dataset and its files stay
    assert alice_api.get(f"{JOBS}{alice_job.pk}/").status_code == 404


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"status": "queued"}, "The job is queued; cancel it before deleting it."),
        ({"status": "running"}, "The job is running; cancel it before deleting it."),
        ({"status": "cancelling"}, "The job is still stopping; delete it once it is cancelled."),
        (
            {"status": "succeeded", "export_status": "running"},
            "The job's merged model is being exported; delete it once the export is over.",
        ),
    ],
)
def test_a_job_at_work_is_not_deleted(alice_api, alice_job, fields, message):
    set_status(alice_job, **fields)
    response = alice_api.delete(f"{JOBS}{alice_job.pk}/")
    assert response.status_code == 409
    assert response.json()["error"] == {"code": "conflict", "message": message}
    assert FineTuneJob.objects.filter(pk=alice_job.pk).exists()
    assert alice_job.train_file.exists()


@pytest.mark.parametrize(
    ("method", "endpoint"), [("delete", ""), ("post", "resume/")], ids=["delete", "resume"]
)
def test_bob_may_not_delete_or_resume_alices_job(alice_job, bob_api, method, endpoint):
    response = getattr(bob_api, method)(f"{JOBS}{alice_job.pk}/{endpoint}")
    assert response.status_code == 404
    assert error_message(response) == "No such job."
    assert FineTuneJob.objects.get(pk=alice_job.pk).status == "created"


def test_an_operator_may_delete_anyones_job(alice_job, olga, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        assert api_client(olga).delete(f"{JOBS}{alice_job.pk}/").status_code == 204
    assert not FineTuneJob.objects.filter(pk=alice_job.pk).exists()


def test_resume_queues_a_job_that_failed_on_a_full_disk_as_its_next_attempt(
    alice_api, alice_job, settings, django_capture_on_commit_callbacks
):
    complete_checkpoint(alice_job, 2, 4)
    set_status(
        alice_job, JobStatus.FAILED, attempt=2, max_attempts=3, error_code="disk_full",
        error_message="The disk is full.", error_traceback="OSError", current_step=5,
    )  # fmt: skip
    with django_capture_on_commit_callbacks(execute=False) as sent:
        response = alice_api.post(f"{JOBS}{alice_job.pk}/resume/")
    assert response.status_code == 202
    body = response.json()
    assert (body["id"], body["status"], body["error"], body["attempt"]) == (
        str(alice_job.pk), "queued", None, 2,
    )  # fmt: skip
    job = FineTuneJob.objects.get(pk=alice_job.pk)
    assert job.max_attempts == 2 + settings.TAILOR_JOB_MAX_ATTEMPTS
    assert (job.error_message, job.error_traceback, job.finished_at) == ("", "", None)
    assert job.events.last().message == "Resumed: queued to continue from its checkpoint of step 4."
    assert len(sent) >= 1  # the task is sent after commit


@pytest.mark.parametrize(
    "fields, message",
    [
        (
            {"status": "failed", "error_code": "out_of_memory"},
            "The job failed with out_of_memory, which would happen again: only a full disk, a "
            "lost worker or a storage outage can be resumed. Retry it as a new job once its "
            "configuration or data is fixed.",
        ),
        ({"status": "succeeded"}, "Only a failed job can be resumed; this one is succeeded."),
        ({"status": "running"}, "Only a failed job can be resumed; this one is running."),
    ],
)
def test_only_a_job_that_failed_through_no_fault_of_its_own_resumes(
    alice_api, alice_job, fields, message
):
    set_status(alice_job, **fields)
    response = alice_api.post(f"{JOBS}{alice_job.pk}/resume/")
    assert response.status_code == 409
    assert error_message(response) == message
    assert FineTuneJob.objects.get(pk=alice_job.pk).status == fields["status"]


@pytest.mark.parametrize("path", [f"{JOBS}estimate/", JOBS, "/api/v1/generations/"])
def test_a_json_body_nested_too_deep_is_a_400_not_a_crash(alice_api, path):
    deep = '{"data": {"dataset": ' + "[" * 100_000 + "]" * 100_000 + "}}"
    response = alice_api.post(path, deep, content_type="application/json")
    assert response.status_code == 400
    assert error_message(response) == "JSON parse error - the body is nested too deep."


# --- the job's shape ---------------------------------------------------------------------


@pytest.mark.parametrize("reader", ["owner", "staff"])
def test_a_jobs_fast_shape_is_exactly_what_drfs_model_serializer_answers(
    alice, olga, routing, reader
):
    # FineTuneJobSerializer builds its answer by hand for speed (bench/load.py);
    # DRF's own ModelSerializer path is the reference, for jobs in every state.
    from django.utils import timezone
    from rest_framework import serializers
    from rest_framework.renderers import JSONRenderer
    from rest_framework.test import APIRequestFactory

    from jobs.serializers import FineTuneJobSerializer

    make_job(alice, routing)  # a job just created
    failed = make_job(alice, routing)
    set_status(
        failed, JobStatus.FAILED, error_code="dataset", error_message="Row 3 has no label.",
        error_traceback="Traceback …", current_step=7, total_steps=20, train_loss=1.25,
        started_at=timezone.now(), finished_at=timezone.now(),
    )  # fmt: skip
    succeeded = make_job(alice, routing)
    archive = succeeded.attempt_folder(1) / "adapter.zip"
    archive.parent.mkdir(parents=True)
    archive.write_bytes(b"PK")
    set_status(
        succeeded, JobStatus.SUCCEEDED, adapter_path=str(archive.parent / "adapter"),
        final_metrics={"val_loss": 0.5}, queued_at=timezone.now(),
    )  # fmt: skip
    retried = make_job(alice, routing)
    FineTuneJob.objects.filter(pk=retried.pk).update(retry_of=failed, validation_dataset=routing)

    request = APIRequestFactory().get(JOBS, HTTP_HOST="localhost")
    request.user = alice if reader == "owner" else olga
    jobs = list(FineTuneJob.objects.filter(owner=alice).select_related("base_model"))
    assert len(jobs) == 4
    for job in jobs:
        serializer = FineTuneJobSerializer(context={"request": request})
        fast = JSONRenderer().render(serializer.to_representation(job))
        reference = JSONRenderer().render(
            serializers.ModelSerializer.to_representation(serializer, job)
        )
        assert fast == reference, job.status
    page = JSONRenderer().render(FineTuneJobSerializer(jobs, many=True, context={
        "request": request
    }).data)  # fmt: skip
    assert b"http://localhost/api/v1/jobs/" in page
