"""/v1/fine_tuning/jobs with OpenAI's `method`: DPO on an OpenAI preference
file, as OpenAI documents it, and training on from a fine-tuned model.

One test takes the real `openai` package from an OpenAI-format preference
file to a succeeded DPO job, against the real ASGI app with real Celery
workers. The others go through Django's test client, with files validated
in the test's own process and jobs left unstarted: the request's mapping
onto the job document, every refusal (in OpenAI's shape, `param` naming the
field), and the job object's `method`.
"""

import json
import time
from pathlib import Path

import openai
import pytest
from django.core.files import File
from django.test import Client
from openai.types.fine_tuning import FineTuningJob

from datasets_app.models import Dataset
from datasets_app.services import create_dataset, run_validation
from jobs.models import FineTuneJob
from studio.services.tokens import create_token
from tests.builders import finished_job, ready_sample
from tests.samples import routing_rows, write_jsonl

JOBS = "/v1/fine_tuning/jobs"
TEAMS = ("billing", "shipping", "technical", "account")
TERMINAL = {"succeeded", "failed", "cancelled"}


def openai_preference_rows(rows: int, *, skip: int = 0) -> list[dict]:
    """The routing sample as OpenAI's preference format: the right team
    preferred, another team not."""
    records = []
    for record in routing_rows("train", skip + rows)[skip:]:
        *prompt, answer = record["messages"]
        wrong = next(team for team in TEAMS if team != answer["content"])
        records.append(
            {
                "input": {"messages": prompt},
                "preferred_output": [answer],
                "non_preferred_output": [{"role": "assistant", "content": wrong}],
            }
        )
    return records


def ready(owner, path: Path) -> Dataset:
    """An uploaded file, validated here as the worker would."""
    with path.open("rb") as handle:
        dataset = create_dataset(owner, upload=File(handle, name=path.name))
    assert run_validation(str(dataset.pk), dataset.revision) == "ready"
    dataset.refresh_from_db()
    return dataset


def file_id(dataset) -> str:
    return f"file-{dataset.pk.hex}"


class Api:
    """Django's test client with a token, speaking JSON."""

    def __init__(self, user):
        self.client = Client()
        self.auth = {"HTTP_AUTHORIZATION": f"Bearer {create_token(user, 'tests').secret}"}

    def post(self, path, body):
        return self.client.post(
            path, json.dumps(body), content_type="application/json", **self.auth
        )

    def get(self, path):
        return self.client.get(path, **self.auth)


@pytest.fixture
def preference_file(alice, tmp_path, demo_models) -> Dataset:
    return ready(alice, write_jsonl(tmp_path / "prefs.jsonl", openai_preference_rows(48)))


@pytest.fixture
def api(alice):
    return Api(alice)


def dpo(**hyperparameters) -> dict:
    return {"type": "dpo", "dpo": {"hyperparameters": hyperparameters}}


def refused(response) -> tuple[int, str | None, str]:
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    return response.status_code, error["param"], error["message"]


# --- the request as a job ----------------------------------------------------------------------


@pytest.mark.django_db
def test_an_openai_preference_file_is_preference_data(preference_file):
    assert (preference_file.format, preference_file.task) == ("openai_preference", "preference")


@pytest.mark.django_db
def test_a_dpo_request_makes_a_dpo_job_with_its_beta(api, preference_file):
    body = {
        "model": "tailor-tiny",
        "training_file": file_id(preference_file),
        "method": dpo(beta=0.25, n_epochs=2, batch_size=4, learning_rate_multiplier="auto"),
        "suffix": "prefs",
        "seed": 3,
        "metadata": {"from": "votes"},
    }
    response = api.post(JOBS, body)
    assert response.status_code == 200, response.json()
    job = FineTuneJob.objects.get()
    assert job.objective == "dpo"
    assert job.config["preference"]["beta"] == 0.25
    training = job.config["training"]
    assert (training["epochs"], training["batch_size"], training["seed"]) == (2, 4, 3)
    assert job.metadata == {"from": "votes"}
    assert job.fine_tuned_model == f"ft:tailor-tiny:alice:prefs:{job.pk.hex[:8]}"

    answer = response.json()
    hyperparameters = {"n_epochs": 2, "batch_size": 4, "learning_rate_multiplier": 1.0}
    assert answer["method"] == {
        "type": "dpo",
        "dpo": {"hyperparameters": {**hyperparameters, "beta": 0.25}},
    }
    assert answer["hyperparameters"] == hyperparameters
    parsed = FineTuningJob.model_validate(answer)
    assert parsed.method.dpo.hyperparameters.beta == 0.25
    # Listed and fetched the same way.
    listed = api.get(JOBS).json()["data"]
    assert [entry["method"] for entry in listed] == [answer["method"]]
    assert api.get(f"{JOBS}/{answer['id']}").json()["method"] == answer["method"]


@pytest.mark.django_db
def test_auto_beta_is_the_presets(api, preference_file):
    body = {"model": "tailor-tiny", "training_file": file_id(preference_file)}
    response = api.post(JOBS, {**body, "method": dpo(beta="auto")})
    assert response.status_code == 200, response.json()
    job = FineTuneJob.objects.get()
    beta = job.config["preference"]["beta"]
    assert isinstance(beta, float) and beta > 0
    assert response.json()["method"]["dpo"]["hyperparameters"]["beta"] == beta
    # No hyperparameters at all: the same.
    again = api.post(JOBS, {**body, "method": {"type": "dpo"}})
    assert again.status_code == 200, again.json()
    assert again.json()["method"]["dpo"]["hyperparameters"]["beta"] == beta


@pytest.mark.django_db
def test_a_fine_tuned_model_named_as_the_model_is_trained_on(alice, api, preference_file):
    parent = finished_job(alice, ready_sample(alice), name="Routing")
    body = {
        "model": parent.fine_tuned_model,
        "training_file": file_id(preference_file),
        "method": dpo(beta=0.1),
    }
    response = api.post(JOBS, body)
    assert response.status_code == 200, response.json()
    job = FineTuneJob.objects.get(objective="dpo")
    assert (job.parent, job.base_model_id, job.method) == (parent, "tailor-tiny", parent.method)
    assert response.json()["model"] == parent.fine_tuned_model


@pytest.mark.django_db
def test_another_users_fine_tuned_model_is_unknown(alice, bob, preference_file, demo_models):
    parent = finished_job(alice, ready_sample(alice), name="Routing")
    bobs = ready(
        bob, write_jsonl(preference_file.folder.parent / "b.jsonl", openai_preference_rows(8))
    )
    response = Api(bob).post(
        JOBS, {"model": parent.fine_tuned_model, "training_file": file_id(bobs), "method": dpo()}
    )
    assert refused(response) == (
        400,
        "model",
        f"model: The model '{parent.fine_tuned_model}' does not exist or you do not have "
        "access to it.",
    )


@pytest.mark.django_db
def test_the_method_must_match_the_training_files_data(alice, api, preference_file, tmp_path):
    routing = ready(alice, write_jsonl(tmp_path / "routing.jsonl", routing_rows("train", 48)))
    prefs, chats = file_id(preference_file), file_id(routing)

    response = api.post(JOBS, {"model": "tailor-tiny", "training_file": chats, "method": dpo()})
    assert refused(response) == (
        400,
        "method.type",
        f"method.type: 'dpo' trains on preference data (a prompt, a chosen and a rejected "
        f"answer), and file '{chats}' (routing.jsonl) holds generation data (prompts and "
        "answers). Upload a preference file (OpenAI's format: input.messages, "
        "preferred_output, non_preferred_output), or send method type 'supervised'.",
    )
    holds = (
        f"file '{prefs}' (prefs.jsonl) holds preference data (a prompt, a chosen and a "
        'rejected answer), which trains with DPO: send "method": {"type": "dpo"} '
        "(its hyperparameters in method.dpo.hyperparameters)."
    )
    response = api.post(
        JOBS, {"model": "tailor-tiny", "training_file": prefs, "method": {"type": "supervised"}}
    )
    assert refused(response) == (400, "method.type", f"method.type: {holds}")
    # No method is OpenAI's default, supervised.
    response = api.post(JOBS, {"model": "tailor-tiny", "training_file": prefs})
    assert refused(response) == (400, "method", f"method: {holds}")
    assert not FineTuneJob.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "param", "message"),
    [
        (
            dpo(beta="high"),
            "method.dpo.hyperparameters.beta",
            'method.dpo.hyperparameters.beta: must be a number, or "auto".',
        ),
        (
            dpo(beta=0),
            "method.dpo.hyperparameters.beta",
            'method.dpo.hyperparameters.beta: must be more than 0, or "auto".',
        ),
        (
            dpo(beta=50),
            "method.dpo.hyperparameters.beta",
            "method.dpo.hyperparameters.beta: must be more than 0 and at most 10.",
        ),
        (
            dpo(n_epochs=0),
            "method.dpo.hyperparameters.n_epochs",
            'method.dpo.hyperparameters.n_epochs: must be at least 1, or "auto".',
        ),
        (
            dpo(warmup=3),
            "method.dpo.hyperparameters.warmup",
            "method.dpo.hyperparameters.warmup: is not a hyperparameter of DPO "
            "(beta, n_epochs, batch_size, learning_rate_multiplier).",
        ),
        (
            {"type": "dpo", "supervised": {"hyperparameters": {}}},
            "method.supervised",
            "method.supervised: does not go with method type 'dpo'.",
        ),
        (
            {"type": "dpo", "dpo": []},
            "method.dpo",
            'method.dpo: must be an object such as {"hyperparameters": {}}.',
        ),
        (
            {"type": "reinforcement"},
            "method.type",
            "method.type: 'reinforcement' fine-tuning is not offered here: "
            "send 'supervised' or 'dpo'.",
        ),
        ({"type": "magic"}, "method.type", "method.type: must be 'supervised' or 'dpo'."),
    ],
)
def test_a_bad_method_is_refused_naming_its_field(api, preference_file, method, param, message):
    body = {"model": "tailor-tiny", "training_file": file_id(preference_file), "method": method}
    assert refused(api.post(JOBS, body)) == (400, param, message)
    assert not FineTuneJob.objects.exists()


@pytest.mark.django_db
def test_beta_is_no_hyperparameter_of_the_older_top_level_form(api, preference_file):
    body = {
        "model": "tailor-tiny",
        "training_file": file_id(preference_file),
        "hyperparameters": {"beta": 0.1},
    }
    assert refused(api.post(JOBS, body)) == (
        400,
        "hyperparameters.beta",
        "hyperparameters.beta: is not a hyperparameter of supervised fine-tuning "
        "(n_epochs, batch_size, learning_rate_multiplier).",
    )


# --- the whole DPO job through the openai package, with real workers ---------------------------


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
@pytest.mark.timeout(600)
@pytest.mark.usefixtures("demo_models", "celery_worker")
@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_an_openai_client_runs_a_dpo_job_from_an_openai_preference_file(
    alice, live_server_url, tmp_path
):
    client = openai.OpenAI(
        base_url=f"{live_server_url}/v1",
        api_key=create_token(alice, "tests").secret,
        max_retries=0,
        timeout=60,
    )
    training = write_jsonl(tmp_path / "prefs.jsonl", openai_preference_rows(48))
    uploaded = client.files.create(file=training, purpose="fine-tune")
    processed = client.files.wait_for_processing(uploaded.id, poll_interval=0.5)
    assert (processed.status, processed.status_details) == ("processed", None)

    # One epoch of 8-pair steps on the pairs not held out.
    job = client.fine_tuning.jobs.create(
        model="tailor-tiny",
        training_file=uploaded.id,
        method={
            "type": "dpo",
            "dpo": {"hyperparameters": {"beta": 0.2, "n_epochs": 1, "batch_size": 8}},
        },
        suffix="prefs",
    )
    assert job.status in {"queued", "running"}
    assert job.method.type == "dpo"
    assert job.method.dpo.hyperparameters.beta == 0.2
    assert job.method.dpo.hyperparameters.batch_size == 8
    assert FineTuneJob.objects.get().objective == "dpo"

    job = wait_until(
        lambda: client.fine_tuning.jobs.retrieve(job.id),
        lambda found: found.status in TERMINAL,
        420,
        "the DPO job to finish",
    )
    assert job.status == "succeeded", job.error
    assert job.fine_tuned_model.startswith("ft:tailor-tiny:alice:prefs:")
    assert job.method.type == "dpo"
    events = client.fine_tuning.jobs.list_events(job.id, limit=100).data
    assert any(event.type == "metrics" for event in events)


@pytest.mark.django_db
def test_the_learning_rate_multiplier_scales_the_dpo_presets_rate(api, preference_file):
    body = {"model": "tailor-tiny", "training_file": file_id(preference_file)}
    auto = api.post(JOBS, {**body, "method": dpo()})
    doubled = api.post(JOBS, {**body, "method": dpo(learning_rate_multiplier=2)})
    assert (auto.status_code, doubled.status_code) == (200, 200), doubled.json()
    rates = {
        job.pk.hex: job.config["training"]["learning_rate"] for job in FineTuneJob.objects.all()
    }
    assert rates[doubled.json()["id"][6:]] == pytest.approx(2 * rates[auto.json()["id"][6:]])
    shown = doubled.json()["method"]["dpo"]["hyperparameters"]["learning_rate_multiplier"]
    assert (auto.json()["hyperparameters"]["learning_rate_multiplier"], shown) == (1.0, 2.0)
