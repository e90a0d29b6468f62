"""/v1/, the OpenAI-compatible API, as OpenAI clients use it.

The real `openai` package talks to the real ASGI app under uvicorn, a real
Celery worker answers, and the fine-tuned model is a real adapter: the job
runner trains tailor-tiny on the support-routing sample with the Quick preset
(about a minute), in the one test that needs it. Errors that need no worker
go through Django's test client.
"""

import json

import openai
import pytest
from django.utils import timezone

from jobs import worker
from jobs.models import FineTuneJob, JobStatus
from jobs.services.lifecycle import check_start_job, create_job
from serving.models import Generation
from studio.services.tokens import create_token
from tests.builders import ready_sample
from tests.processes import wait_for

TEAMS = {"account", "billing", "shipping", "technical"}
CHARGED_TWICE = [{"role": "user", "content": "I was charged twice for my order"}]


def routing_job(owner) -> FineTuneJob:
    dataset = ready_sample(owner)
    document = {
        "data": {"dataset": str(dataset.pk)},
        "model": {"base_model": "tailor-tiny", "method": "lora"},
        "preset": "quick",
    }
    return create_job(owner, check_start_job(owner, document), start=False)


def trained_job(owner) -> FineTuneJob:
    """Trained here by the runner, as the training worker's task would."""
    job = routing_job(owner)
    FineTuneJob.objects.filter(pk=job.pk).update(status=JobStatus.QUEUED)
    assert worker.run_job(str(job.pk), "here") == "succeeded"
    job.refresh_from_db()
    return job


def succeeded_without_training(owner, adapter: str = "adapter") -> FineTuneJob:
    """A job as the ledger leaves it when training succeeded, its adapter
    recorded at `adapter` in its own folder (nothing is written there)."""
    job = routing_job(owner)
    FineTuneJob.objects.filter(pk=job.pk).update(
        status=JobStatus.SUCCEEDED, adapter_path=str(job.folder / adapter),
        finished_at=timezone.now(),
    )  # fmt: skip
    job.refresh_from_db()
    return job


def client_for(live_server_url: str, user) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{live_server_url}/v1",
        api_key=create_token(user, "tests").secret,
        max_retries=0,
        timeout=60,
    )


def error(message, *, type="invalid_request_error", param=None, code=None) -> dict:
    return {"message": message, "type": type, "param": param, "code": code}


# --- through the openai package, answered by a real worker ------------------------------


@pytest.mark.training
@pytest.mark.timeout(600)  # training takes about a minute, several on a busy machine
@pytest.mark.usefixtures("demo_models", "celery_worker")
@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_an_openai_client_lists_asks_and_streams_alices_fine_tuned_model(
    alice, bob, live_server_url, tmp_path, settings
):
    # Success queues an evaluation, which the one worker runs before these
    # requests: one validation row keeps it short.
    settings.TAILOR_EVAL_SAMPLE_SIZE = 1
    job = trained_job(alice)
    bobs = succeeded_without_training(bob, "bobs-adapter")
    client = client_for(live_server_url, alice)
    tuned = job.fine_tuned_model

    # The models alice may run: the bases and her own fine-tuned model.
    listed = {model.id: model for model in client.models.list()}
    assert listed["tailor-tiny"].owned_by == "tailor"
    assert listed[tuned].owned_by == "alice"
    assert listed[tuned].created == int(job.finished_at.timestamp())
    assert bobs.fine_tuned_model not in listed
    assert client.models.retrieve(tuned).id == tuned

    # One answer, not streamed: the team the message is routed to.
    answer = client.chat.completions.create(
        model=tuned, messages=CHARGED_TWICE, temperature=0, max_tokens=8
    )
    generation = Generation.objects.get()
    assert (generation.source, generation.status, generation.model_names) == (
        "api",
        "succeeded",
        [tuned],
    )
    assert answer.id == f"chatcmpl-{generation.pk.hex}"
    assert (answer.object, answer.model) == ("chat.completion", tuned)
    choice = answer.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content in TEAMS
    assert choice.finish_reason == "stop"
    usage = answer.usage
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens

    # The base model, never trained on routing, answers something else.
    base = client.chat.completions.create(
        model="tailor-tiny", messages=CHARGED_TWICE, temperature=0, max_tokens=8
    )
    assert base.choices[0].message.content != choice.message.content

    # Streamed with the same settings: the same answer, in pieces.
    chunks = list(
        client.chat.completions.create(
            model=tuned,
            messages=CHARGED_TWICE,
            temperature=0,
            max_tokens=8,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    assert {chunk.object for chunk in chunks} == {"chat.completion.chunk"}
    with_choices = [chunk for chunk in chunks if chunk.choices]
    streamed = "".join(chunk.choices[0].delta.content or "" for chunk in with_choices)
    assert streamed == choice.message.content
    assert with_choices[-1].choices[0].finish_reason == "stop"
    assert [c.choices[0].finish_reason for c in with_choices[:-1]] == [None] * (
        len(with_choices) - 1
    )
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == usage.total_tokens

    # A longer answer streams in several deltas and joins to the non-streamed one.
    ramble = {"model": "tailor-tiny", "messages": CHARGED_TWICE, "temperature": 0, "max_tokens": 40}
    whole = client.chat.completions.create(**ramble).choices[0]
    pieces = list(client.chat.completions.create(**ramble, stream=True))
    deltas = [chunk.choices[0].delta.content for chunk in pieces if chunk.choices[0].delta.content]
    assert "".join(deltas) == whole.message.content
    assert len(deltas) > 1
    assert pieces[-1].choices[0].finish_reason == whole.finish_reason
    assert all(chunk.usage is None for chunk in pieces)

    # A stop sequence cuts the answer before it, streamed or not; no piece of
    # it is streamed ahead of the cut.
    stop = whole.message.content[12:15]
    assert len(stop) == 3, whole.message.content
    cut = whole.message.content[: whole.message.content.index(stop)]
    stopped = client.chat.completions.create(**ramble, stop=stop).choices[0]
    assert (stopped.message.content, stopped.finish_reason) == (cut, "stop")
    pieces = list(client.chat.completions.create(**ramble, stop=[stop], stream=True))
    assert "".join(chunk.choices[0].delta.content or "" for chunk in pieces) == cut
    assert pieces[-1].choices[0].finish_reason == "stop"

    # A raw prompt, no chat template.
    text = client.completions.create(
        model="tailor-tiny", prompt="Hello", max_tokens=5, temperature=0
    )
    assert text.object == "text_completion"
    assert text.id == f"cmpl-{Generation.objects.filter(text='Hello').get().pk.hex}"
    assert text.choices[0].text
    assert text.choices[0].finish_reason in {"stop", "length"}
    assert 0 < text.usage.completion_tokens <= 5

    # Bob may not use alice's model; he is told it does not exist.
    with pytest.raises(openai.NotFoundError) as caught:
        client_for(live_server_url, bob).chat.completions.create(
            model=tuned, messages=CHARGED_TWICE
        )
    assert caught.value.body == error(
        f"The model '{tuned}' does not exist or you do not have access to it.",
        param="model",
        code="model_not_found",
    )
    with pytest.raises(openai.NotFoundError):
        client_for(live_server_url, bob).models.retrieve(tuned)


@pytest.mark.usefixtures("demo_models")
@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_the_openai_client_raises_its_own_errors_for_bad_requests(alice, live_server_url):
    client = client_for(live_server_url, alice)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="tailor-tiny", messages=CHARGED_TWICE, temperature=5)
    assert caught.value.param == "temperature"
    assert caught.value.body == error(
        "temperature: must be at least 0 and at most 2.", param="temperature"
    )

    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="tailor-tiny", messages=CHARGED_TWICE, max_completion_tokens=0
        )
    assert caught.value.body == error(
        "max_completion_tokens: must be at least 1 and at most 1,024.",
        param="max_completion_tokens",
    )

    with pytest.raises(openai.NotFoundError) as caught:
        client.completions.create(model="no-such-model", prompt="Hi")
    assert caught.value.body == error(
        "The model 'no-such-model' does not exist or you do not have access to it.",
        param="model",
        code="model_not_found",
    )

    stranger = openai.OpenAI(
        base_url=f"{live_server_url}/v1", api_key="tlr_not-a-token", max_retries=0
    )
    with pytest.raises(openai.AuthenticationError) as caught:
        stranger.models.list()
    assert caught.value.body == error("Invalid or revoked API token.", code="invalid_api_key")
    assert caught.value.response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.usefixtures("demo_models", "celery_worker")
@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_model_the_worker_cannot_load_is_a_503_and_an_error_event_in_a_stream(
    alice, olga, live_server_url, tmp_path
):
    job = succeeded_without_training(alice, "deleted-adapter")
    missing = job.folder / "deleted-adapter"
    # Everyone reads a plain sentence; the worker's folder is for operators only.
    expected = error(
        "The fine-tuned adapter could not be loaded: its files are missing.",
        type="server_error",
        code="generation_failed",
    )
    for_staff = {**expected, "detail": f"there is no adapter at {missing}"}
    for user, shown in ((alice, expected), (olga, for_staff)):
        client = client_for(live_server_url, user)

        with pytest.raises(openai.InternalServerError) as caught:
            client.chat.completions.create(model=job.fine_tuned_model, messages=CHARGED_TWICE)
        assert caught.value.status_code == 503
        assert caught.value.body == shown

        stream = client.chat.completions.create(
            model=job.fine_tuned_model, messages=CHARGED_TWICE, stream=True
        )
        with pytest.raises(openai.APIError) as caught:
            list(stream)
        assert caught.value.body == shown


@pytest.mark.usefixtures("demo_models", "celery_worker")
@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_request_the_worker_refuses_whole_is_a_503_whose_detail_only_staff_see(
    alice, olga, live_server_url, tmp_path
):
    job = succeeded_without_training(alice)
    elsewhere = tmp_path / "adapter"
    FineTuneJob.objects.filter(pk=job.pk).update(adapter_path=str(elsewhere))
    expected = error(
        f"{job.fine_tuned_model} cannot be loaded: its files are recorded outside its "
        "job's folder.",
        type="server_error",
        code="generation_failed",
    )
    for_staff = {**expected, "detail": f"the adapter is recorded at {elsewhere}"}
    for user, shown in ((alice, expected), (olga, for_staff)):
        client = client_for(live_server_url, user)
        with pytest.raises(openai.InternalServerError) as caught:
            client.completions.create(model=job.fine_tuned_model, prompt="Hello")
        assert caught.value.body == shown

        stream = client.completions.create(model=job.fine_tuned_model, prompt="Hello", stream=True)
        with pytest.raises(openai.APIError) as caught:
            list(stream)
        assert caught.value.body == shown


@pytest.mark.usefixtures("demo_models", "celery_worker")
@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_client_that_hangs_up_mid_stream_cancels_its_generation(alice, live_server_url):
    client = client_for(live_server_url, alice)
    stream = client.chat.completions.create(
        model="tailor-tiny", messages=CHARGED_TWICE, max_tokens=1024, temperature=0, stream=True
    )
    for chunk in stream:
        if chunk.choices[0].delta.content:
            break
    stream.close()

    generation = wait_for(
        lambda: Generation.objects.filter(finished_at__isnull=False).first(),
        60,
        "the worker to stop generating",
    )
    assert generation.status == "cancelled"
    assert generation.results[0]["completion_tokens"] < 1024


# --- raw HTTP: what a client that is not the openai package may send --------------------


def post(client, path, body, secret, **extra):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(
        path, raw, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {secret}", **extra
    )


@pytest.fixture
def alices_secret(alice):
    return create_token(alice, "tests").secret


@pytest.mark.django_db
def test_a_request_without_a_token_is_refused_with_a_bearer_challenge(client, alice_client):
    response = client.get("/v1/models")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert response.json() == {
        "error": error(
            "Send an API token in an 'Authorization: Bearer <token>' header "
            "(create one on the Tokens page).",
            code="invalid_api_key",
        )
    }
    # A logged-in browser session is not a token: /v1/ is for scripts.
    assert alice_client.get("/v1/models").status_code == 401
    malformed = client.get("/v1/models", HTTP_AUTHORIZATION="Basic abc")
    assert malformed.json()["error"]["message"] == (
        "The Authorization header must be 'Bearer <token>' or 'Token <token>'."
    )


@pytest.mark.django_db
def test_the_token_keyword_is_accepted_as_well_as_bearer(client, alices_secret, demo_models):
    response = client.get("/v1/models/tailor-tiny", HTTP_AUTHORIZATION=f"Token {alices_secret}")
    assert response.status_code == 200
    assert response.json() == {
        "id": "tailor-tiny",
        "object": "model",
        "created": 0,
        "owned_by": "tailor",
    }


@pytest.mark.django_db
def test_a_body_that_is_not_json_or_not_an_object_is_a_400(client, alices_secret):
    response = post(client, "/v1/chat/completions", b'{"model": ', alices_secret)
    assert response.status_code == 400
    assert response.json() == {
        "error": error("The request body is not valid JSON: Expecting value (line 1, column 11).")
    }
    response = post(client, "/v1/completions", ["tailor-tiny"], alices_secret)
    assert (response.status_code, response.json()) == (
        400,
        {"error": error("The request body must be a JSON object, not an array.")},
    )


@pytest.mark.django_db
def test_a_body_over_one_mebibyte_is_a_413(client, alices_secret):
    prompt = "x" * (1024 * 1024)
    response = post(
        client, "/v1/completions", {"model": "tailor-tiny", "prompt": prompt}, alices_secret
    )
    assert response.status_code == 413
    assert response.json() == {
        "error": error("The request body is larger than 1 MiB.", code="request_too_large")
    }


@pytest.mark.django_db
def test_a_wrong_method_or_path_is_answered_in_openai_shape(client, alices_secret):
    response = client.get("/v1/chat/completions", HTTP_AUTHORIZATION=f"Bearer {alices_secret}")
    assert (response.status_code, response["Allow"]) == (405, "POST")
    assert response.json() == {
        "error": error(
            "GET /v1/chat/completions is not supported: use POST.", code="method_not_allowed"
        )
    }
    response = client.post("/v1/embeddings", HTTP_AUTHORIZATION=f"Bearer {alices_secret}")
    assert response.status_code == 404
    assert response.json() == {
        "error": error("There is no endpoint POST /v1/embeddings.", code="unknown_url")
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "param", "message"),
    [
        pytest.param({"n": 2}, "n", "n: only 1 is supported (one answer per request).", id="n"),
        pytest.param(
            {"max_tokens": 1.5},
            "max_tokens",
            "max_tokens: must be a whole number.",
            id="max_tokens",
        ),
        pytest.param({"stream": "yes"}, "stream", "stream: must be true or false.", id="stream"),
        pytest.param(
            {"messages": [{"role": "user", "content": "hi"}, {"role": "robot", "content": "x"}]},
            "messages[1].role",
            "messages[1].role: must be one of system, user, assistant.",
            id="role",
        ),
        pytest.param(
            {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
            "messages[0].content",
            "messages[0].content: only text parts are supported.",
            id="image-part",
        ),
        pytest.param(
            {"messages": []},
            "messages",
            "messages: must be a non-empty list of {role, content} objects.",
            id="no-messages",
        ),
        pytest.param(
            {"model": None}, "model", "model: name a model (GET /v1/models lists them).", id="model"
        ),
    ],
)
def test_fields_are_named_as_the_client_named_them(
    client, alices_secret, demo_models, change, param, message
):
    body = {"model": "tailor-tiny", "messages": CHARGED_TWICE, **change}
    response = post(client, "/v1/chat/completions", body, alices_secret)
    assert (response.status_code, response.json()) == (400, {"error": error(message, param=param)})
    assert not Generation.objects.exists()


@pytest.mark.django_db
def test_a_completion_prompt_is_one_string(client, alices_secret, demo_models):
    response = post(
        client, "/v1/completions", {"model": "tailor-tiny", "prompt": ["a", "b"]}, alices_secret
    )
    assert response.json() == {
        "error": error("prompt: must be a string (or a list of one string).", param="prompt")
    }
    assert not Generation.objects.exists()


@pytest.mark.django_db
@pytest.mark.usefixtures("demo_models")
def test_a_fine_tuned_model_is_alices_alone_and_only_once_trained(
    client, alice, bob, alices_secret, tmp_path
):
    ready = succeeded_without_training(alice)
    training = routing_job(alice)
    response = client.get(
        f"/v1/models/{ready.fine_tuned_model}", HTTP_AUTHORIZATION=f"Bearer {alices_secret}"
    )
    assert response.json() == {
        "id": ready.fine_tuned_model,
        "object": "model",
        "created": int(ready.finished_at.timestamp()),
        "owned_by": "alice",
    }

    bobs_secret = create_token(bob, "tests").secret
    response = client.get(
        f"/v1/models/{ready.fine_tuned_model}", HTTP_AUTHORIZATION=f"Bearer {bobs_secret}"
    )
    assert response.status_code == 404
    assert response.json() == {
        "error": error(
            f"The model '{ready.fine_tuned_model}' does not exist or you do not have access to it.",
            param="model",
            code="model_not_found",
        )
    }
    models = client.get("/v1/models", HTTP_AUTHORIZATION=f"Bearer {bobs_secret}").json()
    assert ready.fine_tuned_model not in {model["id"] for model in models["data"]}

    body = {"model": training.fine_tuned_model, "messages": CHARGED_TWICE}
    response = post(client, "/v1/chat/completions", body, alices_secret)
    assert (response.status_code, response.json()) == (
        404,
        {
            "error": error(
                f"The fine-tuned model '{training.fine_tuned_model}' is not ready: its job is created.",
                param="model",
                code="model_not_found",
            )
        },
    )
