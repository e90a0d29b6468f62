"""`integrations` of /v1/fine_tuning/jobs: a W&B integration is the job's tracking.

One test takes the real `openai` package through a fine-tune with a W&B
integration, against the real ASGI app and real Celery workers, and reads the
offline W&B run the worker wrote (tests run W&B offline: tests/conftest.py).
The others go through Django's test client with jobs left unstarted: the
shapes OpenAI's types accept, every refusal, and the ownership rule.
"""

import json
import time

import openai
import pytest
from django.core.files import File
from django.test import Client
from openai.types.fine_tuning import FineTuningJob

from datasets_app.services import create_dataset, run_validation
from jobs.models import FineTuneJob, MetricPoint
from studio.services.tokens import create_token
from tests.samples import routing_rows, write_jsonl
from tests.trackers import wandb_run_records

WANDB = {"type": "wandb", "wandb": {"project": "routing", "tags": ["openai"]}}
EXAMPLE = '{"type": "wandb", "wandb": {"project": "my-project"}}'


def routing_file(tmp_path):
    return write_jsonl(tmp_path / "routing.jsonl", routing_rows("train", 48))


def ready_file(owner, tmp_path) -> str:
    with routing_file(tmp_path).open("rb") as handle:
        dataset = create_dataset(owner, upload=File(handle, name="routing.jsonl"))
    assert run_validation(str(dataset.pk), dataset.revision) == "ready"
    return f"file-{dataset.pk.hex}"


def post_job(user, body: dict):
    secret = create_token(user, "tests").secret
    return Client().post(
        "/v1/fine_tuning/jobs", json.dumps(body), content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
    )  # fmt: skip


@pytest.mark.training
@pytest.mark.timeout(600)
@pytest.mark.usefixtures("demo_models", "celery_worker")
@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_an_openai_client_job_with_a_wandb_integration_logs_to_an_offline_wandb_run(
    alice, live_server_url, tmp_path
):
    client = openai.OpenAI(
        base_url=f"{live_server_url}/v1", api_key=create_token(alice, "tests").secret,
        max_retries=0, timeout=60,
    )  # fmt: skip
    uploaded = client.files.create(file=routing_file(tmp_path), purpose="fine-tune")
    client.files.wait_for_processing(uploaded.id, poll_interval=0.5)

    job = client.fine_tuning.jobs.create(
        model="tailor-tiny",
        training_file=uploaded.id,
        hyperparameters={"n_epochs": 1, "batch_size": 8},
        integrations=[WANDB],
    )
    [integration] = job.integrations
    assert (integration.type, integration.wandb.project, integration.wandb.tags) == (
        "wandb", "routing", ["openai"],
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while job.status not in {"succeeded", "failed", "cancelled"} and time.monotonic() < deadline:
        time.sleep(1)  # about once a second: the token's rate limit counts
        job = client.fine_tuning.jobs.retrieve(job.id)
    assert job.status == "succeeded", job.error
    stored = FineTuneJob.objects.get()

    messages = [e.message for e in client.fine_tuning.jobs.list_events(job.id, limit=100)]
    assert "Reporting to W&B (project routing, offline)" in messages
    run = wandb_run_records(stored.folder / "attempt-1" / "wandb")
    assert (run.project, run.tags, run.exit_code) == ("routing", ["openai"], 0)
    logged = {row["train/global_step"]: row["train/loss"] for row in run.history
              if "train/loss" in row}  # fmt: skip
    stored_losses = dict(
        MetricPoint.objects.filter(job=stored, kind="train").values_list("step", "train_loss")
    )
    assert logged.keys() == stored_losses.keys() and logged
    assert all(logged[step] == pytest.approx(stored_losses[step]) for step in logged)
    assert any(a.type == "model" and "final_model" in a.aliases for a in run.artifacts)


@pytest.mark.django_db
def test_a_wandb_integration_becomes_the_jobs_tracking_and_is_shown_back(
    alice, demo_models, tmp_path
):
    wandb = {"project": "routing", "name": "first", "entity": "support", "tags": ["a", "b"]}
    response = post_job(
        alice, {"model": "tailor-tiny", "training_file": ready_file(alice, tmp_path),
                "integrations": [{"type": "wandb", "wandb": wandb}]},
    )  # fmt: skip
    assert response.status_code == 200, response.json()
    job = FineTuneJob.objects.get()
    assert job.config["tracking"] == {
        "wandb_project": "routing", "wandb_entity": "support", "wandb_name": "first",
        "wandb_tags": ["a", "b"], "mlflow_experiment": None, "mlflow_run_name": None,
    }  # fmt: skip
    assert response.json()["integrations"] == [{"type": "wandb", "wandb": wandb}]
    parsed = FineTuningJob.model_validate(response.json())
    assert parsed.integrations[0].wandb.entity == "support"


@pytest.mark.django_db
def test_another_users_job_with_an_integration_is_missing_for_bob(
    alice, bob, demo_models, tmp_path
):
    body = {"model": "tailor-tiny", "training_file": ready_file(alice, tmp_path),
            "integrations": [WANDB]}  # fmt: skip
    job_id = post_job(alice, body).json()["id"]
    secret = create_token(bob, "tests").secret
    response = Client().get(f"/v1/fine_tuning/jobs/{job_id}", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("integrations", "param", "message"),
    [
        (["wandb"], "integrations[0]", f"must be an object such as {EXAMPLE}."),
        ([{"type": "mlflow"}], "integrations[0].type",
         "must be 'wandb', the one integration offered here."),
        ([{"type": "wandb"}], "integrations[0].wandb",
         'must be an object such as {"project": "my-project"}.'),
        ([{"type": "wandb", "wandb": {"project": "p"}, "extra": 1}], "integrations[0].extra",
         "is not a field of an integration (type, wandb)."),
        ([{"type": "wandb", "wandb": {"project": "p", "team": "x"}}], "integrations[0].wandb.team",
         "is not a W&B setting (project, name, entity, tags)."),
        ([{"type": "wandb", "wandb": {"name": "n"}}], "integrations[0].wandb.project",
         "name the W&B project to log the run to."),
        ([{"type": "wandb", "wandb": {"project": "p", "entity": 7}}],
         "integrations[0].wandb.entity", "must be text or null."),
        ([{"type": "wandb", "wandb": {"project": "p", "tags": "a"}}],
         "integrations[0].wandb.tags", "must be a list of text."),
        ([WANDB, WANDB], "integrations[1]", "give at most one wandb integration."),
        # Checked by the configuration, named as the client named the field.
        ([{"type": "wandb", "wandb": {"project": "team/p"}}], "integrations[0].wandb.project",
         "must be at most 128 characters and use none of / \\ # ? % or : (W&B's rule)."),
        ([{"type": "wandb", "wandb": {"project": "p", "tags": ["t" * 65]}}],
         "integrations[0].wandb.tags",
         "must be at most 20 tags of at most 64 characters each."),
    ],
)  # fmt: skip
@pytest.mark.django_db
def test_a_bad_integration_is_a_400_naming_its_field(
    alice, demo_models, tmp_path, integrations, param, message
):
    body = {"model": "tailor-tiny", "training_file": ready_file(alice, tmp_path),
            "integrations": integrations}  # fmt: skip
    response = post_job(alice, body)
    assert response.status_code == 400
    assert response.json() == {
        "error": {"message": f"{param}: {message}", "type": "invalid_request_error",
                  "param": param, "code": None}
    }  # fmt: skip
    assert not FineTuneJob.objects.exists()
