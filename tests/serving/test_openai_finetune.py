"""/v1/files and /v1/fine_tuning/jobs, the OpenAI fine-tuning API, as OpenAI clients use it.

One test takes the real `openai` package through a whole fine-tune against
the real ASGI app under uvicorn, with real Celery workers validating the
file, training tailor-tiny on 48 rows and answering with the result. The
others go through Django's test client, with files validated in the test's
own process and jobs left unstarted: every error, the ownership rule, the
pages and the shapes (checked by the openai package's own types).
"""

import json
import time
import uuid
from datetime import timedelta
from pathlib import Path

import openai
import pytest
from django.core.files import File
from django.test import Client
from django.utils import timezone
from openai.types import FileObject
from openai.types.fine_tuning import FineTuningJob, FineTuningJobEvent
from openai.types.fine_tuning.jobs import FineTuningJobCheckpoint

from datasets_app.models import Dataset
from datasets_app.services import create_dataset, run_validation
from jobs.models import CatalogModel, Checkpoint, FineTuneJob, JobEvent, JobStatus, MetricPoint
from jobs.services.lifecycle import check_start_job
from serving.openai import fine_tuning
from studio.services.tokens import create_token
from tests.builders import make_job
from tests.samples import routing_rows, write_jsonl

TERMINAL = {"succeeded", "failed", "cancelled"}


def error(message, *, type="invalid_request_error", param=None, code=None) -> dict:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def routing_file(folder: Path, *, rows: int = 48, skip: int = 0, name="routing.jsonl") -> Path:
    """`rows` chat rows of the routing sample: 48 rows train in a few steps."""
    return write_jsonl(folder / name, routing_rows("train", skip + rows)[skip:])


def uploaded(owner, path: Path) -> Dataset:
    """A dataset as an upload leaves it, before any worker has validated it."""
    with path.open("rb") as handle:
        return create_dataset(owner, upload=File(handle, name=path.name))


def ready(owner, path: Path) -> Dataset:
    dataset = uploaded(owner, path)
    assert run_validation(str(dataset.pk), dataset.revision) == "ready"
    dataset.refresh_from_db()
    return dataset


def file_id(dataset) -> str:
    return f"file-{dataset.pk.hex}"


def job_id(job) -> str:
    return f"ftjob-{job.pk.hex}"


class Api:
    """Django's test client with a token, speaking JSON."""

    def __init__(self, client: Client, user):
        self.client = client
        self.auth = {"HTTP_AUTHORIZATION": f"Bearer {create_token(user, 'tests').secret}"}

    def get(self, path, **query):
        return self.client.get(path, query, **self.auth)

    def post(self, path, body=None):
        raw = body if isinstance(body, bytes) else json.dumps(body or {}).encode()
        return self.client.post(path, raw, content_type="application/json", **self.auth)

    def upload(self, path: Path, purpose="fine-tune"):
        with path.open("rb") as handle:
            form = {"file": handle}
            if purpose is not None:
                form["purpose"] = purpose
            return self.client.post("/v1/files", form, **self.auth)

    def delete(self, path):
        return self.client.delete(path, **self.auth)


@pytest.fixture
def alice_api(client, alice):
    return Api(client, alice)


@pytest.fixture
def bob_api(bob):
    return Api(Client(), bob)


@pytest.fixture
def routing_jsonl(tmp_path) -> Path:
    return routing_file(tmp_path)


# --- the whole fine-tune through the openai package, with real workers -----------------------


def wait_until(read, done, timeout: float, what: str):
    """Call `read` about once a second (the token's rate limit counts) until `done`."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value):
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"Timed out after {timeout} s waiting for {what}; last: {value}")
        time.sleep(1)


@pytest.mark.training
@pytest.mark.timeout(600)  # well under a minute alone; several on a busy machine
@pytest.mark.usefixtures("demo_models", "celery_worker")
@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_an_openai_client_uploads_fine_tunes_follows_and_uses_a_model(
    alice, live_server_url, tmp_path
):
    secret = create_token(alice, "tests").secret
    client = openai.OpenAI(
        base_url=f"{live_server_url}/v1", api_key=secret, max_retries=0, timeout=60
    )
    training = routing_file(tmp_path)

    # Upload: a dataset, validated by the worker.
    uploaded_file = client.files.create(file=training, purpose="fine-tune")
    dataset = Dataset.objects.get()
    assert uploaded_file.id == file_id(dataset)
    assert (uploaded_file.filename, uploaded_file.bytes) == (
        "routing.jsonl",
        training.stat().st_size,
    )
    processed = client.files.wait_for_processing(uploaded_file.id, poll_interval=0.5)
    assert (processed.status, processed.status_details) == ("processed", None)
    assert [f.id for f in client.files.list(purpose="fine-tune")] == [uploaded_file.id]
    assert client.files.content(uploaded_file.id).read() == training.read_bytes()

    # One epoch of 8-row steps on the 43 rows not held out: 6 steps.
    job = client.fine_tuning.jobs.create(
        model="tailor-tiny",
        training_file=uploaded_file.id,
        hyperparameters={"n_epochs": 1, "batch_size": 8},
        suffix="routing",
        seed=7,
    )
    stored = FineTuneJob.objects.get()
    assert job.id == job_id(stored)
    # Queued on commit: the worker may have claimed it before the answer was written.
    assert job.status in {"queued", "running"}
    assert (job.model, job.training_file) == ("tailor-tiny", uploaded_file.id)
    assert job.hyperparameters.n_epochs == 1 and job.hyperparameters.batch_size == 8
    assert job.hyperparameters.learning_rate_multiplier == 1.0
    assert job.method.type == "supervised"
    assert job.method.supervised.hyperparameters.batch_size == 8
    assert (job.seed, job.user_provided_suffix, job.fine_tuned_model) == (7, "routing", None)
    assert job.id in [listed.id for listed in client.fine_tuning.jobs.list(limit=1)]

    job = wait_until(
        lambda: client.fine_tuning.jobs.retrieve(job.id),
        lambda found: found.status in TERMINAL,
        300,
        "the job to finish",
    )
    assert job.status == "succeeded", job.error
    assert job.fine_tuned_model == f"ft:tailor-tiny:alice:routing:{stored.pk.hex[:8]}"
    assert job.trained_tokens > 0 and job.finished_at >= job.created_at
    assert job.error is None and job.estimated_finish is None

    # Events: newest first, losses as metrics, the rest as messages; the
    # client's own paging (by `after`) walks the same list.
    events = client.fine_tuning.jobs.list_events(job.id, limit=100)
    assert not events.has_more
    metrics = [e for e in events.data if e.type == "metrics"]
    messages = [e for e in events.data if e.type == "message"]
    assert {e.data["step"] for e in metrics if "train_loss" in e.data} == set(range(1, 7))
    assert metrics[-1].message.startswith("Step 1/6: training loss=")
    assert "Training finished; the adapter is ready to download." in [e.message for e in messages]
    assert [e.created_at for e in events.data] == sorted(
        (e.created_at for e in events.data), reverse=True
    )
    paged = list(client.fine_tuning.jobs.list_events(job.id, limit=4))
    assert [e.id for e in paged] == [e.id for e in events.data]

    checkpoints = client.fine_tuning.jobs.checkpoints.list(job.id).data
    assert checkpoints and checkpoints[0].step_number == 6
    assert checkpoints[0].fine_tuned_model_checkpoint == f"{job.fine_tuned_model}:ckpt-step-6"
    assert checkpoints[0].fine_tuning_job_id == job.id
    assert checkpoints[0].metrics.train_loss is not None

    # The fine-tuned model answers by the name the job gave it.
    answer = client.chat.completions.create(
        model=job.fine_tuned_model,
        messages=[{"role": "user", "content": "I was charged twice for my order"}],
        temperature=0,
        max_tokens=8,
    )
    assert answer.model == job.fine_tuned_model
    assert answer.choices[0].finish_reason in {"stop", "length"}
    assert answer.usage.completion_tokens > 0

    # A second job, created at once after its upload (the server waits for
    # the validation), then cancelled.
    second_file = client.files.create(
        file=routing_file(tmp_path, skip=48, name="more.jsonl"), purpose="fine-tune"
    )
    second = client.fine_tuning.jobs.create(model="tailor-tiny", training_file=second_file.id)
    assert second.status in {"queued", "running"}
    cancelled = client.fine_tuning.jobs.cancel(second.id)
    assert cancelled.status in {"running", "cancelled"}
    cancelled = wait_until(
        lambda: client.fine_tuning.jobs.retrieve(second.id),
        lambda found: found.status in TERMINAL,
        120,
        "the cancel to land",
    )
    assert cancelled.status == "cancelled"
    assert [j.id for j in client.fine_tuning.jobs.list()] == [second.id, job.id]

    # The same jobs, in the native API and on the job page.
    native = Client()
    listed = native.get("/api/v1/jobs/", HTTP_AUTHORIZATION=f"Bearer {secret}").json()
    assert {row["id"] for row in listed["results"]} == {
        str(uuid.UUID(hex=job.id[6:])),
        str(uuid.UUID(hex=second.id[6:])),
    }
    native.force_login(alice)
    page = native.get(f"/jobs/{stored.pk}/")
    assert page.status_code == 200
    assert job.fine_tuned_model in page.content.decode()


# --- files -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_uploaded_file_is_a_dataset_in_openai_shape(alice_api, routing_jsonl):
    response = alice_api.upload(routing_jsonl)
    assert response.status_code == 200
    dataset = Dataset.objects.get()
    assert (dataset.original_filename, dataset.status) == ("routing.jsonl", "uploaded")
    expected = {
        "id": file_id(dataset),
        "object": "file",
        "bytes": routing_jsonl.stat().st_size,
        "created_at": int(dataset.created_at.timestamp()),
        "expires_at": None,
        "filename": "routing.jsonl",
        "purpose": "fine-tune",
        "status": "uploaded",
        "status_details": None,
    }
    assert response.json() == expected
    FileObject.model_validate(response.json())

    run_validation(str(dataset.pk), dataset.revision)
    response = alice_api.get(f"/v1/files/{file_id(dataset)}")
    assert response.json() == {**expected, "status": "processed"}
    content = alice_api.get(f"/v1/files/{file_id(dataset)}/content")
    assert b"".join(content.streaming_content) == routing_jsonl.read_bytes()


@pytest.mark.django_db
def test_an_invalid_file_says_why_and_cannot_be_trained_on(alice, alice_api, tmp_path):
    rows = routing_rows("train", 3)
    rows[1]["messages"][0]["role"] = "robot"
    bad = uploaded(alice, write_jsonl(tmp_path / "bad.jsonl", rows))
    run_validation(str(bad.pk), bad.revision)
    details = (
        "1 problem found; nothing was imported. line 2, `messages[0].role`: must be one of "
        "system, user, assistant (got 'robot')."
    )
    response = alice_api.get(f"/v1/files/{file_id(bad)}")
    assert (response.json()["status"], response.json()["status_details"]) == ("error", details)

    response = alice_api.post(
        "/v1/fine_tuning/jobs", {"model": "tailor-tiny", "training_file": file_id(bad)}
    )
    assert (response.status_code, response.json()) == (
        400,
        error(
            f"training_file: file '{file_id(bad)}' (bad.jsonl) failed validation: {details}",
            param="training_file",
            code="invalid_file",
        ),
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("send", "message", "param"),
    [
        pytest.param(
            lambda api, routing, folder: api.upload(routing, purpose="batch"),
            "purpose: 'batch' is not supported: Tailor keeps fine-tuning data only, "
            "so send 'fine-tune'.",
            "purpose",
            id="purpose-batch",
        ),
        pytest.param(
            lambda api, routing, folder: api.upload(routing, purpose=None),
            "purpose: required; send 'fine-tune'.",
            "purpose",
            id="no-purpose",
        ),
        pytest.param(
            lambda api, routing, folder: api.post("/v1/files", {"purpose": "fine-tune"}),
            "file: required; send the file as multipart/form-data with purpose=fine-tune.",
            "file",
            id="no-file",
        ),
        pytest.param(
            lambda api, routing, folder: api.upload(write_jsonl(folder / "notes.txt", [{"a": 1}])),
            "file: 'notes.txt' has no recognised extension; "
            "use .jsonl, .json, .csv, .tsv or .parquet.",
            "file",
            id="unknown-extension",
        ),
    ],
)
def test_an_upload_needs_a_file_and_the_fine_tune_purpose(
    alice_api, routing_jsonl, tmp_path, send, message, param
):
    response = send(alice_api, routing_jsonl, tmp_path)
    assert (response.status_code, response.json()) == (400, error(message, param=param))
    assert not Dataset.objects.exists()


@pytest.mark.django_db
def test_a_file_over_the_upload_limit_is_a_413(alice_api, routing_jsonl, settings):
    settings.DATASET_MAX_UPLOAD_BYTES = 100
    response = alice_api.upload(routing_jsonl)
    assert (response.status_code, response.json()) == (
        413,
        error(
            "The file is larger than the upload limit of 100 bytes.",
            param="file",
            code="file_too_large",
        ),
    )
    assert not Dataset.objects.exists()


@pytest.mark.django_db
def test_files_are_listed_newest_first_and_paged_with_after_and_limit(
    alice, bob, alice_api, routing_jsonl
):
    datasets = [uploaded(alice, routing_jsonl) for _ in range(3)]
    uploaded(bob, routing_jsonl)
    newest_first = [file_id(d) for d in sorted(datasets, key=lambda d: (d.created_at, d.pk))][::-1]

    first = alice_api.get("/v1/files", limit=2).json()
    assert (first["object"], first["has_more"]) == ("list", True)
    assert [f["id"] for f in first["data"]] == newest_first[:2]
    rest = alice_api.get("/v1/files", limit=2, after=newest_first[1]).json()
    assert ([f["id"] for f in rest["data"]], rest["has_more"]) == (newest_first[2:], False)
    oldest = alice_api.get("/v1/files", order="asc", purpose="fine-tune").json()
    assert [f["id"] for f in oldest["data"]] == newest_first[::-1]
    assert alice_api.get("/v1/files", purpose="batch").json() == {
        "object": "list",
        "data": [],
        "has_more": False,
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "message", "param"),
    [
        ({"limit": "0"}, "limit: must be at least 1 and at most 10,000.", "limit"),
        ({"order": "newest"}, "order: must be 'asc' or 'desc'.", "order"),
        ({"after": "file-x"}, "after: 'file-x' is not an id from this list.", "after"),
    ],
    ids=["limit", "order", "after"],
)
def test_a_bad_files_list_query_is_a_400_naming_its_parameter(alice_api, query, message, param):
    response = alice_api.get("/v1/files", **query)
    assert (response.status_code, response.json()) == (400, error(message, param=param))


@pytest.mark.django_db
def test_deleting_a_file_hides_the_dataset_and_its_jobs_keep_their_data(
    alice, alice_api, routing_jsonl, demo_models
):
    dataset = ready(alice, routing_jsonl)
    job = make_job(alice, dataset)
    response = alice_api.delete(f"/v1/files/{file_id(dataset)}")
    assert response.json() == {"id": file_id(dataset), "object": "file", "deleted": True}
    dataset.refresh_from_db()
    assert dataset.deleted_at is not None
    assert alice_api.get(f"/v1/files/{file_id(dataset)}").status_code == 404
    assert job.train_file.exists()
    assert alice_api.get(f"/v1/fine_tuning/jobs/{job_id(job)}").json()["training_file"] == (
        file_id(dataset)
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "endpoint"),
    [("get", ""), ("get", "/content"), ("delete", "")],
    ids=["get", "content", "delete"],
)
def test_another_users_file_is_missing_for_bob(alice, bob_api, routing_jsonl, method, endpoint):
    dataset = ready(alice, routing_jsonl)
    response = getattr(bob_api, method)(f"/v1/files/{file_id(dataset)}{endpoint}")
    assert (response.status_code, response.json()) == (
        404,
        error(f"No such File object: '{file_id(dataset)}'.", param="id", code="file_not_found"),
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "endpoint"),
    [("get", ""), ("post", "/cancel"), ("get", "/events"), ("get", "/checkpoints")],
    ids=["get", "cancel", "events", "checkpoints"],
)
def test_another_users_job_is_missing_for_bob(
    alice, bob_api, routing_jsonl, demo_models, method, endpoint
):
    job = make_job(alice, ready(alice, routing_jsonl))
    response = getattr(bob_api, method)(f"/v1/fine_tuning/jobs/{job_id(job)}{endpoint}")
    assert (response.status_code, response.json()) == (
        404,
        error(
            f"No such fine-tuning job: '{job_id(job)}'.",
            param="fine_tuning_job_id",
            code="job_not_found",
        ),
    )
    assert FineTuneJob.objects.get(pk=job.pk).status == job.status


@pytest.mark.django_db
def test_bob_lists_none_of_alices_files_or_jobs_and_cannot_fine_tune_on_her_file(
    alice, alice_api, bob_api, routing_jsonl, demo_models
):
    dataset = ready(alice, routing_jsonl)
    job = make_job(alice, dataset)
    unknown = f"file-{uuid.uuid4().hex}"
    assert bob_api.get(f"/v1/files/{unknown}").json() == error(
        f"No such File object: '{unknown}'.", param="id", code="file_not_found"
    )
    assert bob_api.get("/v1/files").json()["data"] == []
    assert bob_api.get("/v1/fine_tuning/jobs").json()["data"] == []
    assert bob_api.get("/v1/fine_tuning/jobs", after=job_id(job)).status_code == 400

    response = bob_api.post(
        "/v1/fine_tuning/jobs", {"model": "tailor-tiny", "training_file": file_id(dataset)}
    )
    assert (response.status_code, response.json()) == (
        404,
        error(
            f"No such File object: '{file_id(dataset)}'.",
            param="training_file",
            code="file_not_found",
        ),
    )
    assert FineTuneJob.objects.count() == 1
    assert alice_api.post(f"/v1/fine_tuning/jobs/{job_id(job)}/cancel").status_code == 200


# --- creating jobs -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_job_is_created_with_the_hyperparameters_given(
    alice, alice_api, routing_jsonl, demo_models
):
    dataset = ready(alice, routing_jsonl)
    body = {
        "model": "tailor-tiny",
        "training_file": file_id(dataset),
        "hyperparameters": {"n_epochs": 2, "batch_size": 4, "learning_rate_multiplier": 0.5},
        "seed": 7,
        "suffix": "routing-v1",
        "integrations": [],
        "metadata": {"team": "support"},
    }
    response = alice_api.post("/v1/fine_tuning/jobs", body)
    assert response.status_code == 200, response.json()
    job = FineTuneJob.objects.get()
    training = job.config["training"]
    assert (training["epochs"], training["max_steps"], training["batch_size"]) == (2, 0, 4)
    assert training["learning_rate"] == pytest.approx(0.5 * 3e-3)
    assert (training["seed"], job.status, job.preset) == (7, "queued", "quick")
    assert job.fine_tuned_model == f"ft:tailor-tiny:alice:routing-v1:{job.pk.hex[:8]}"

    hyperparameters = {"n_epochs": 2, "batch_size": 4, "learning_rate_multiplier": 0.5}
    assert response.json() == {
        "id": job_id(job),
        "object": "fine_tuning.job",
        "model": "tailor-tiny",
        "created_at": int(job.created_at.timestamp()),
        "finished_at": None,
        "fine_tuned_model": None,
        "organization_id": "alice",
        "result_files": [],
        "status": "queued",
        "training_file": file_id(dataset),
        "validation_file": None,
        "hyperparameters": hyperparameters,
        "trained_tokens": None,
        "error": None,
        "seed": 7,
        "estimated_finish": None,
        "integrations": [],
        "method": {"type": "supervised", "supervised": {"hyperparameters": hyperparameters}},
        "user_provided_suffix": "routing-v1",
        "metadata": {"team": "support"},
    }
    assert job.metadata == {"team": "support"}
    parsed = FineTuningJob.model_validate(response.json())
    assert parsed.metadata == {"team": "support"}
    assert parsed.hyperparameters.n_epochs == 2
    assert parsed.method.supervised.hyperparameters.learning_rate_multiplier == 0.5


@pytest.mark.django_db
def test_auto_and_the_method_form_mean_the_quick_presets_values(
    alice, alice_api, routing_jsonl, tmp_path, demo_models
):
    dataset = ready(alice, routing_jsonl)
    held_out = ready(alice, routing_file(tmp_path, rows=8, skip=100, name="held-out.jsonl"))
    auto = {"n_epochs": "auto", "batch_size": "auto", "learning_rate_multiplier": "auto"}
    body = {
        "model": "tailor-tiny",
        "training_file": file_id(dataset),
        "validation_file": file_id(held_out),
        "method": {"type": "supervised", "supervised": {"hyperparameters": auto}},
    }
    response = alice_api.post("/v1/fine_tuning/jobs", body)
    assert response.status_code == 200, response.json()
    job = FineTuneJob.objects.get()
    preset = check_start_job(
        alice,
        {
            "preset": "quick",
            "data": {"dataset": str(dataset.pk), "validation_dataset": str(held_out.pk)},
            "model": {"base_model": "tailor-tiny"},
        },
    )
    assert job.config["training"] == preset.document["training"]
    answer = response.json()
    assert answer["hyperparameters"] == {
        "n_epochs": 1,
        "batch_size": 16,
        "learning_rate_multiplier": 1.0,
    }
    assert (answer["validation_file"], answer["seed"]) == (file_id(held_out), 42)
    assert answer["user_provided_suffix"] is None
    assert job.fine_tuned_model == f"ft:tailor-tiny:alice::{job.pk.hex[:8]}"


@pytest.mark.django_db
def test_bad_fields_are_400s_named_as_the_client_named_them(
    alice, alice_api, routing_jsonl, demo_models
):
    dataset = ready(alice, routing_jsonl)
    hp = "hyperparameters"
    in_method = "method.supervised.hyperparameters"
    whole = 'must be a whole number, or "auto".'
    one_or_more = 'must be at least 1, or "auto".'
    number = 'must be a number, or "auto".'
    positive = 'must be more than 0, or "auto".'
    cases = [
        ({hp: {"n_epochs": 0}}, f"{hp}.n_epochs", f"{hp}.n_epochs: {one_or_more}"),
        ({hp: {"n_epochs": -1}}, f"{hp}.n_epochs", f"{hp}.n_epochs: {one_or_more}"),
        ({hp: {"n_epochs": 1.5}}, f"{hp}.n_epochs", f"{hp}.n_epochs: {whole}"),
        ({hp: {"n_epochs": "3"}}, f"{hp}.n_epochs", f"{hp}.n_epochs: {whole}"),
        ({hp: {"n_epochs": True}}, f"{hp}.n_epochs", f"{hp}.n_epochs: {whole}"),
        ({hp: {"batch_size": 0}}, f"{hp}.batch_size", f"{hp}.batch_size: {one_or_more}"),
        ({hp: {"batch_size": "big"}}, f"{hp}.batch_size", f"{hp}.batch_size: {whole}"),
        (
            {hp: {"learning_rate_multiplier": 0}},
            f"{hp}.learning_rate_multiplier",
            f"{hp}.learning_rate_multiplier: {positive}",
        ),
        (
            {hp: {"learning_rate_multiplier": -2.0}},
            f"{hp}.learning_rate_multiplier",
            f"{hp}.learning_rate_multiplier: {positive}",
        ),
        (
            {hp: {"learning_rate_multiplier": False}},
            f"{hp}.learning_rate_multiplier",
            f"{hp}.learning_rate_multiplier: {number}",
        ),
        # Ranges are the configuration's, named as the client named them.
        (
            {hp: {"n_epochs": 101}},
            f"{hp}.n_epochs",
            f"{hp}.n_epochs: must be more than 0 and at most 100.",
        ),
        (
            {hp: {"batch_size": 2000}},
            f"{hp}.batch_size",
            f"{hp}.batch_size: must be at least 1 and at most 1,024.",
        ),
        (
            {hp: {"learning_rate_multiplier": 100}},
            f"{hp}.learning_rate_multiplier",
            f"{hp}.learning_rate_multiplier: gives a learning rate of 0.3, "
            "which must be more than 0 and at most 0.1.",
        ),
        (
            {"method": {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 0}}}},
            f"{in_method}.n_epochs",
            f"{in_method}.n_epochs: {one_or_more}",
        ),
        (
            {"method": {"type": "supervised", "supervised": {hp: {"batch_size": 5000}}}},
            f"{in_method}.batch_size",
            f"{in_method}.batch_size: must be at least 1 and at most 1,024.",
        ),
        (
            {
                hp: {"n_epochs": 2},
                "method": {"type": "supervised", "supervised": {hp: {"n_epochs": 3}}},
            },
            hp,
            f"{hp}: give the hyperparameters once, in method.supervised.hyperparameters "
            "(or the older top-level hyperparameters), not in both.",
        ),
        (
            {"method": {"type": "reinforcement"}},
            "method.type",
            "method.type: 'reinforcement' fine-tuning is not offered here: "
            "send 'supervised' or 'dpo'.",
        ),
        (
            {"method": {"type": "magic"}},
            "method.type",
            "method.type: must be 'supervised' or 'dpo'.",
        ),
        (
            {"method": "supervised"},
            "method",
            'method: must be an object such as {"type": "supervised"}.',
        ),
        (
            {hp: {"warmup": 3}},
            f"{hp}.warmup",
            f"{hp}.warmup: is not a hyperparameter of supervised fine-tuning "
            "(n_epochs, batch_size, learning_rate_multiplier).",
        ),
        ({hp: [3]}, hp, f'{hp}: must be an object such as {{"n_epochs": 3}}.'),
        ({"seed": "7"}, "seed", "seed: must be a whole number."),
        ({"seed": True}, "seed", "seed: must be a whole number."),
        ({"seed": -1}, "seed", "seed: must be at least 0 and at most 4,294,967,295."),
        ({"seed": 2**70}, "seed", "seed: must be at least 0 and at most 4,294,967,295."),
        (
            {hp: {"n_epochs": 10**30}},
            f"{hp}.n_epochs",
            f"{hp}.n_epochs: must be more than 0 and at most 100.",
        ),
        (
            {"suffix": "x" * 65},
            "suffix",
            "suffix: must be at most 64 characters (it has 65).",
        ),
        (
            {"suffix": "a:b"},
            "suffix",
            "suffix: may hold only letters, digits, '-', '_' and '.': "
            "it becomes part of the model name.",
        ),
        ({"suffix": 5}, "suffix", "suffix: must be text or null."),
        ({"model": "gpt-4o"}, "model", "model: 'gpt-4o' is not in the model catalog."),
        (
            {"model": "minilm-l6"},
            "model",
            "model: MiniLM L6 (classifier, 22.7M) is a text classification model; "
            "“routing” needs a text generation model.",
        ),
        (
            {"model": None},
            "model",
            "model: name a base model to fine-tune, such as 'tailor-tiny'.",
        ),
        (
            {"training_file": 12},
            "training_file",
            "training_file: must be the id of an uploaded file, such as 'file-…'.",
        ),
        (
            {"validation_file": ["file-1"]},
            "validation_file",
            "validation_file: must be the id of an uploaded file, such as 'file-…', or null.",
        ),
        ({"integrations": "wandb"}, "integrations", "integrations: must be a list."),
        (
            {"metadata": {"team": 5}},
            "metadata",
            "metadata: keys must be at most 64 characters and values text of at most 512.",
        ),
        ({"n_epochs": 2}, "n_epochs", "Unrecognized request argument supplied: n_epochs"),
    ]
    for change, param, message in cases:
        body = {"model": "tailor-tiny", "training_file": file_id(dataset), **change}
        response = alice_api.post("/v1/fine_tuning/jobs", body)
        assert (response.status_code, response.json()) == (
            400,
            error(message, param=param),
        ), change
    assert not FineTuneJob.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(
            b'{"model": ',
            "The request body is not valid JSON: Expecting value (line 1, column 11).",
            id="not-json",
        ),
        pytest.param(
            b"[1, 2]", "The request body must be a JSON object, not an array.", id="an-array"
        ),
        pytest.param(b"", "The request body is empty: send a JSON object.", id="empty"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_refused(alice_api, body, message):
    response = alice_api.post("/v1/fine_tuning/jobs", body)
    assert (response.status_code, response.json()) == (400, error(message))


@pytest.mark.django_db
def test_a_body_over_one_mebibyte_is_refused(alice_api):
    huge = {"model": "tailor-tiny", "training_file": "file-" + "0" * (1024 * 1024)}
    response = alice_api.post("/v1/fine_tuning/jobs", huge)
    assert (response.status_code, response.json()) == (
        413,
        error("The request body is larger than 1 MiB.", code="request_too_large"),
    )


@pytest.mark.django_db
def test_a_file_still_being_validated_is_waited_for_then_refused(
    alice, alice_api, routing_jsonl, monkeypatch, demo_models
):
    monkeypatch.setattr(fine_tuning, "FILE_READY_TIMEOUT_S", 0.5)
    validating = uploaded(alice, routing_jsonl)  # no worker here: it stays "uploaded"
    started = time.monotonic()
    response = alice_api.post(
        "/v1/fine_tuning/jobs", {"model": "tailor-tiny", "training_file": file_id(validating)}
    )
    assert time.monotonic() - started >= 0.5
    assert (response.status_code, response.json()) == (
        400,
        error(
            f"File '{file_id(validating)}' is still being processed (it is being validated); "
            "try again shortly.",
            param="training_file",
            code="file_not_ready",
        ),
    )
    assert not FineTuneJob.objects.exists()


@pytest.mark.django_db
def test_unknown_paths_and_methods_are_answered_in_openai_shape(alice_api):
    response = alice_api.client.put("/v1/files", **alice_api.auth)
    assert (response.status_code, response["Allow"]) == (405, "GET, POST")
    response = alice_api.delete(f"/v1/fine_tuning/jobs/ftjob-{uuid.uuid4().hex}")
    assert (response.status_code, response["Allow"]) == (405, "GET")
    response = alice_api.get("/v1/fine_tuning/jobs/ftjob-1/results")
    assert response.json() == error(
        "There is no endpoint GET /v1/fine_tuning/jobs/ftjob-1/results.", code="unknown_url"
    )
    response = alice_api.get("/v1/fine_tuning/jobs/not-a-job")
    assert response.json() == error(
        "No such fine-tuning job: 'not-a-job'.", param="fine_tuning_job_id", code="job_not_found"
    )


# --- jobs: list, cancel, statuses ----------------------------------------------------------------


@pytest.mark.django_db
def test_jobs_are_listed_newest_first_and_paged(alice, bob, alice_api, demo_models, tmp_path):
    dataset = ready(alice, routing_file(tmp_path))
    jobs = [make_job(alice, dataset) for _ in range(3)]
    make_job(bob, ready(bob, routing_file(tmp_path)))
    newest_first = [job_id(j) for j in sorted(jobs, key=lambda j: (j.created_at, j.pk))][::-1]

    first = alice_api.get("/v1/fine_tuning/jobs", limit=2).json()
    assert ([j["id"] for j in first["data"]], first["has_more"]) == (newest_first[:2], True)
    rest = alice_api.get("/v1/fine_tuning/jobs", after=newest_first[1]).json()
    assert ([j["id"] for j in rest["data"]], rest["has_more"]) == (newest_first[2:], False)
    # Created without starting (native API, start=false): files checked, not queued.
    assert {j["status"] for j in first["data"]} == {"validating_files"}
    response = alice_api.get("/v1/fine_tuning/jobs", limit=101)
    assert response.json() == error("limit: must be at least 1 and at most 100.", param="limit")


@pytest.mark.django_db
def test_a_cancel_ends_a_queued_job_at_once_and_a_finished_job_cannot_be_cancelled(
    alice, alice_api, routing_jsonl, demo_models
):
    dataset = ready(alice, routing_jsonl)
    queued = make_job(alice, dataset, start=True)
    response = alice_api.post(f"/v1/fine_tuning/jobs/{job_id(queued)}/cancel")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert response.json()["finished_at"] is not None

    response = alice_api.post(f"/v1/fine_tuning/jobs/{job_id(queued)}/cancel")
    assert (response.status_code, response.json()) == (
        400,
        error(
            "The job has already finished (cancelled). Only a queued or running job can be "
            "cancelled.",
            code="job_not_cancellable",
        ),
    )

    # A running job stops at its next step: until then it is still running.
    running = make_job(alice, dataset)
    FineTuneJob.objects.filter(pk=running.pk).update(status=JobStatus.RUNNING)
    response = alice_api.post(f"/v1/fine_tuning/jobs/{job_id(running)}/cancel")
    assert response.json()["status"] == "running"
    assert FineTuneJob.objects.get(pk=running.pk).status == JobStatus.CANCELLING


@pytest.mark.django_db
def test_finished_jobs_show_their_model_tokens_or_error(
    alice, alice_api, routing_jsonl, demo_models
):
    dataset = ready(alice, routing_jsonl)
    done, failed = make_job(alice, dataset), make_job(alice, dataset)
    finished = timezone.now()
    FineTuneJob.objects.filter(pk=done.pk).update(
        status=JobStatus.SUCCEEDED, trained_tokens=1234, finished_at=finished
    )
    FineTuneJob.objects.filter(pk=failed.pk).update(
        status=JobStatus.FAILED,
        error_code="out_of_memory",
        error_message="The worker ran out of memory.",
        finished_at=finished,
    )
    answer = alice_api.get(f"/v1/fine_tuning/jobs/{job_id(done)}").json()
    assert (answer["status"], answer["fine_tuned_model"], answer["trained_tokens"]) == (
        "succeeded",
        done.fine_tuned_model,
        1234,
    )
    assert (answer["finished_at"], answer["error"]) == (int(finished.timestamp()), None)
    answer = alice_api.get(f"/v1/fine_tuning/jobs/{job_id(failed)}").json()
    assert (answer["status"], answer["fine_tuned_model"], answer["trained_tokens"]) == (
        "failed",
        None,
        None,
    )
    assert answer["error"] == {
        "code": "out_of_memory",
        "message": "The worker ran out of memory.",
        "param": None,
    }
    assert FineTuningJob.model_validate(answer).error.code == "out_of_memory"


@pytest.mark.django_db
def test_a_running_job_estimates_its_finish(alice, alice_api, routing_jsonl, demo_models):
    job = make_job(alice, ready(alice, routing_jsonl))
    FineTuneJob.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, eta_seconds=90)
    job.refresh_from_db()
    answer = alice_api.get(f"/v1/fine_tuning/jobs/{job_id(job)}").json()
    assert answer["status"] == "running"
    assert answer["estimated_finish"] == int((job.updated_at + timedelta(seconds=90)).timestamp())


# --- events and checkpoints ---------------------------------------------------------------------


def logged_job(owner, dataset):
    """A job with what a short run records: status events, losses, checkpoints."""
    job = make_job(owner, dataset)
    FineTuneJob.objects.filter(pk=job.pk).update(total_steps=4)
    JobEvent.objects.filter(job=job).delete()
    start = timezone.now() - timedelta(minutes=10)

    def at(seconds):
        return start + timedelta(seconds=seconds)

    JobEvent.objects.create(job=job, kind="status", message="Queued.", created_at=at(0))
    for step in (1, 2, 3, 4):
        MetricPoint.objects.create(
            job=job, attempt=1, step=step, train_loss=2.0 / step, learning_rate=0.003,
            epoch=step / 4, tokens=100 * step, created_at=at(step),
        )  # fmt: skip
    MetricPoint.objects.create(
        job=job, attempt=1, step=4, kind="eval", val_loss=0.75, created_at=at(5)
    )
    JobEvent.objects.create(
        job=job, kind="log", level="warning", message="Slow disk.", created_at=at(5)
    )
    Checkpoint.objects.create(job=job, attempt=1, step=2, path="/x/2", created_at=at(2))
    Checkpoint.objects.create(
        job=job, attempt=1, step=4, path="/x/4", train_loss=0.5, created_at=at(5)
    )
    JobEvent.objects.create(job=job, kind="status", message="Training finished.", created_at=at(6))
    job.refresh_from_db()
    return job


@pytest.mark.django_db
def test_events_are_messages_and_metrics_newest_first_with_an_after_cursor(
    alice, alice_api, routing_jsonl, demo_models
):
    job = logged_job(alice, ready(alice, routing_jsonl))
    path = f"/v1/fine_tuning/jobs/{job_id(job)}/events"
    everything = alice_api.get(path, limit=100).json()
    assert everything["has_more"] is False
    assert [e["message"] for e in everything["data"]] == [
        "Training finished.",
        "Slow disk.",
        "Step 4/4: validation loss=0.7500",
        "Step 4/4: training loss=0.5000",
        "Step 3/4: training loss=0.6667",
        "Step 2/4: training loss=1.0000",
        "Step 1/4: training loss=2.0000",
        "Queued.",
    ]
    first_point = MetricPoint.objects.get(job=job, step=1, kind="train")
    assert everything["data"][-2] == {
        "id": f"ftevent-m{first_point.pk}",
        "object": "fine_tuning.job.event",
        "created_at": int(first_point.created_at.timestamp()),
        "level": "info",
        "message": "Step 1/4: training loss=2.0000",
        "data": {
            "step": 1,
            "total_steps": 4,
            "epoch": 0.25,
            "train_loss": 2.0,
            "learning_rate": 0.003,
            "trained_tokens": 100,
        },
        "type": "metrics",
    }
    assert everything["data"][2]["data"] == {
        "step": 4, "total_steps": 4, "epoch": 0.0, "valid_loss": 0.75,
    }  # fmt: skip
    warning = JobEvent.objects.get(job=job, message="Slow disk.")
    assert everything["data"][1] == {
        "id": f"ftevent-e{warning.pk}",
        "object": "fine_tuning.job.event",
        "created_at": int(warning.created_at.timestamp()),
        "level": "warn",
        "message": "Slow disk.",
        "data": {},
        "type": "message",
    }
    for event in everything["data"]:
        FineTuningJobEvent.model_validate(event)

    # Three at a time, each page starting after the last one's final id.
    walked, after = [], None
    while True:
        page = alice_api.get(path, limit=3, **({"after": after} if after else {})).json()
        walked += page["data"]
        if not page["has_more"]:
            break
        after = page["data"][-1]["id"]
    assert walked == everything["data"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "after",
    [
        pytest.param("ftevent-x1", id="unknown-kind"),
        pytest.param("ftevent-e999999", id="no-such-event"),
        pytest.param("bogus", id="not-an-event-id"),
    ],
)
def test_an_events_cursor_that_is_not_from_the_list_is_refused(
    alice, alice_api, routing_jsonl, demo_models, after
):
    job = logged_job(alice, ready(alice, routing_jsonl))
    response = alice_api.get(f"/v1/fine_tuning/jobs/{job_id(job)}/events", after=after)
    assert response.json() == error(f"after: '{after}' is not an id from this list.", param="after")


@pytest.mark.django_db
def test_checkpoints_are_listed_newest_first_with_their_metrics(
    alice, alice_api, routing_jsonl, demo_models
):
    job = logged_job(alice, ready(alice, routing_jsonl))
    path = f"/v1/fine_tuning/jobs/{job_id(job)}/checkpoints"
    newest, older = Checkpoint.objects.get(step=4), Checkpoint.objects.get(step=2)
    first = alice_api.get(path, limit=1).json()
    assert first["has_more"] is True
    assert first["data"] == [
        {
            "id": f"ftckpt-{newest.pk}",
            "object": "fine_tuning.job.checkpoint",
            "created_at": int(newest.created_at.timestamp()),
            "fine_tuned_model_checkpoint": f"{job.fine_tuned_model}:ckpt-step-4",
            "fine_tuning_job_id": job_id(job),
            "step_number": 4,
            "metrics": {"step": 4, "train_loss": 0.5, "valid_loss": 0.75, "full_valid_loss": 0.75},
        }
    ]
    rest = alice_api.get(path, after=f"ftckpt-{newest.pk}").json()
    assert rest["has_more"] is False
    # No loss stored with it: the nearest logged one, and no evaluation yet.
    assert rest["data"][0]["metrics"] == {"step": 2, "train_loss": 1.0}
    assert rest["data"][0]["id"] == f"ftckpt-{older.pk}"
    for checkpoint in first["data"] + rest["data"]:
        FineTuningJobCheckpoint.model_validate(checkpoint)


@pytest.mark.django_db
def test_the_learning_rate_multiplier_is_read_from_the_models_rate(
    alice, alice_api, routing_jsonl, demo_models
):
    # An operator's catalog rate is the "auto" rate, for the browser's jobs too.
    CatalogModel.objects.filter(id="tailor-tiny").update(learning_rate=1e-3)
    job = make_job(alice, ready(alice, routing_jsonl), training={"learning_rate": 0.002})
    answer = alice_api.get(f"/v1/fine_tuning/jobs/{job_id(job)}").json()
    assert answer["hyperparameters"]["learning_rate_multiplier"] == 2.0
