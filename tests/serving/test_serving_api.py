"""/api/v1/generations/ and /api/v1/evaluations/: the playground and evaluations for scripts.

One test trains a short real job with the real workers and then generates,
votes and reads its evaluation; the others need no worker.
"""

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from jobs.models import FineTuneJob
from serving.models import Generation, GenerationStatus
from serving.services.generations import GenerationRequest, check_request, create_generation
from tests.api_errors import error_message, field_errors
from tests.builders import finished_job, make_job, ready_sample, run_to_success
from tests.processes import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

GENERATIONS = "/api/v1/generations/"
EVALUATIONS = "/api/v1/evaluations/"
CHAT = [{"role": "user", "content": "My parcel never arrived"}]


def short_job(owner) -> FineTuneJob:
    """A real run of tailor-tiny, short: these checks need an adapter, not a good one."""
    dataset = ready_sample(owner)
    document = {
        "data": {"dataset": str(dataset.pk)},
        "model": {"base_model": "tailor-tiny", "method": "lora"},
        "training": {"max_steps": 12, "batch_size": 8, "learning_rate": 0.003},
        "name": "Routing, very short",
    }
    return run_to_success(owner, document)


def poll(client, url: str, done, what: str, timeout: float = 240) -> dict:
    found = {}

    def check():
        found.update(client.get(url).json())
        return done(found)

    wait_for(check, timeout, what)
    return found


@pytest.mark.usefixtures("celery_worker", "demo_models")
def test_a_script_compares_base_and_fine_tuned_votes_and_reads_the_evaluation(
    alice, alice_api, bob_api
):
    job = short_job(alice)
    tuned = job.fine_tuned_model
    created = alice_api.post(
        GENERATIONS,
        {"models": ["tailor-tiny", tuned], "messages": CHAT, "max_new_tokens": 12, "seed": 3},
        format="json",
    )
    assert created.status_code == 201, created.json()
    assert created.json()["status"] == "queued"
    assert created.json()["results"] == []
    url = f"{GENERATIONS}{created.json()['id']}/"
    answer = poll(
        alice_api, url, lambda g: g["status"] not in ("queued", "running"), "the generation"
    )
    assert answer["status"] == "succeeded", answer
    assert [pane["model"] for pane in answer["results"]] == ["tailor-tiny", tuned]
    for pane in answer["results"]:
        assert pane["error"] is None
        assert pane["completion_tokens"] >= 1 and pane["text"]
        assert pane["tokens_per_second"] > 0
    assert answer["source"] == "api"

    vote = alice_api.post(
        f"{url}vote/", {"model_a": "tailor-tiny", "model_b": tuned, "winner": "b"}, format="json"
    )
    assert vote.status_code == 200, vote.json()
    # Stored in name order ("ft:…" sorts first), so the winner is turned round.
    assert (vote.json()["model_a"], vote.json()["winner"]) == (tuned, "a")

    mine = alice_api.get(f"{GENERATIONS}?model={tuned}").json()
    assert [g["id"] for g in mine["results"]] == [answer["id"]]
    assert alice_api.get(f"{GENERATIONS}?model=tailor-tiny-x").json()["count"] == 0
    assert bob_api.get(url).status_code == 404
    assert bob_api.get(GENERATIONS).json()["count"] == 0

    # The job's automatic evaluation, as a script follows it.
    listed = alice_api.get(f"{EVALUATIONS}?job={job.pk}").json()
    assert listed["count"] == 1 and listed["results"][0]["trigger"] == "automatic"
    evaluation = poll(
        alice_api,
        f"{EVALUATIONS}{listed['results'][0]['id']}/",
        lambda e: e["status"] in ("succeeded", "failed"),
        "the evaluation",
    )
    assert evaluation["status"] == "succeeded", evaluation["error"]
    for side in ("base", "fine_tuned"):
        assert 0 <= evaluation["metrics"][side]["exact_match"] <= 1
        assert evaluation["metrics"][side]["val_loss"] > 0
    # Training, even this short, lowers the validation loss.
    assert (
        evaluation["metrics"]["fine_tuned"]["val_loss"] < evaluation["metrics"]["base"]["val_loss"]
    )
    assert evaluation["samples"] and {"prompt", "reference"} <= evaluation["samples"][0].keys()
    assert bob_api.get(f"{EVALUATIONS}{evaluation['id']}/").status_code == 404
    assert bob_api.get(f"{EVALUATIONS}?job={job.pk}").json()["count"] == 0

    again = alice_api.post(EVALUATIONS, {"job": str(job.pk), "sample_size": 4}, format="json")
    assert again.status_code == 202, again.json()
    assert (again.json()["trigger"], again.json()["sample_size"]) == ("manual", 4)


# --- bad input, ownership, and the shapes, without a worker -------------------------------


def bobs_model(bob) -> str:
    return finished_job(bob, ready_sample(bob)).fine_tuned_model


@pytest.mark.usefixtures("demo_models")
@pytest.mark.parametrize(
    ("body_for", "field"),
    [
        pytest.param(lambda bob: {"models": ["nope"], "messages": CHAT}, "models", id="unknown"),
        pytest.param(
            lambda bob: {"models": [bobs_model(bob)], "messages": CHAT}, "models", id="bobs-model"
        ),
        pytest.param(
            lambda bob: {"models": ["tailor-tiny"], "messages": CHAT, "temperature": 5},
            "temperature",
            id="temperature",
        ),
        pytest.param(
            lambda bob: {"models": ["tailor-tiny"], "messages": CHAT, "max_new_tokens": 0},
            "max_new_tokens",
            id="max_new_tokens",
        ),
        pytest.param(
            lambda bob: {
                "models": ["tailor-tiny"],
                "messages": [{"role": "robot", "content": "x"}],
            },
            "messages",
            id="role",
        ),
        pytest.param(
            lambda bob: {"models": "tailor-tiny", "messages": CHAT}, "models", id="not-a-list"
        ),
        pytest.param(lambda bob: {"messages": CHAT}, "models", id="no-models"),
    ],
)
def test_a_bad_generation_request_names_the_field_and_stores_nothing(
    alice, alice_api, bob, body_for, field
):
    response = alice_api.post(GENERATIONS, body_for(bob), format="json")
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert error["field"].split(".")[0] == field, error
    assert error["message"].startswith(error["field"]), error
    assert not Generation.objects.exists()


def test_a_malformed_generation_body_is_refused_and_stores_nothing(alice_api):
    malformed = alice_api.post(GENERATIONS, "{not json", content_type="application/json")
    assert malformed.status_code == 400
    assert malformed.json()["error"]["code"] == "malformed_body"
    assert not Generation.objects.exists()


@pytest.mark.usefixtures("demo_models")
@override_settings(TAILOR_GENERATION_START_TIMEOUT_SECONDS=0)
def test_a_generation_no_worker_takes_is_reported_failed_and_a_finished_one_cannot_be_cancelled(
    alice_api,
):
    created = alice_api.post(GENERATIONS, {"models": ["tailor-tiny"], "text": "Hi"}, format="json")
    assert created.status_code == 201, created.json()
    url = f"{GENERATIONS}{created.json()['id']}/"
    shown = alice_api.get(url).json()
    assert shown["status"] == "failed"
    assert "No inference worker took the request" in shown["error"]
    refused = alice_api.post(f"{url}cancel/")
    assert refused.status_code == 409
    assert error_message(refused) == "The generation has already finished (failed)."


@pytest.mark.usefixtures("demo_models")
def test_a_queued_generation_is_cancelled_at_once(alice, alice_api):
    # Stored but not sent: a worker of an earlier test could otherwise take it first.
    request = GenerationRequest(models=["tailor-tiny"], text="Hi")
    queued = create_generation(alice, check_request(alice, request), source="api")
    cancelled = alice_api.post(f"{GENERATIONS}{queued.pk}/cancel/")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert Generation.objects.get().status == GenerationStatus.CANCELLED


@pytest.mark.usefixtures("demo_models")
def test_evaluations_are_refused_with_the_reason_and_hidden_from_others(alice, alice_api, bob_api):
    dataset = ready_sample(alice)
    unfinished = make_job(alice, dataset)
    refused = alice_api.post(EVALUATIONS, {"job": str(unfinished.pk)}, format="json")
    assert refused.status_code == 409
    assert refused.json()["error"] == {
        "code": "conflict",
        "message": "Only a job that has succeeded can be evaluated.",
    }
    assert bob_api.post(EVALUATIONS, {"job": str(unfinished.pk)}, format="json").status_code == 404
    too_many = alice_api.post(
        EVALUATIONS, {"job": str(unfinished.pk), "sample_size": 501}, format="json"
    )
    assert field_errors(too_many) == {
        "sample_size": ["Ensure this value is less than or equal to 500."]
    }
    assert field_errors(alice_api.get(f"{EVALUATIONS}?job=12")) == {
        "job": ["Must be an id (a UUID)."]
    }
    assert alice_api.get(f"{EVALUATIONS}not-a-uuid/").status_code == 404


def test_lists_page_the_same_way_and_say_which_pages_exist(alice, alice_api, demo_models):
    dataset = ready_sample(alice)
    for _ in range(3):
        make_job(alice, dataset)
    first = alice_api.get("/api/v1/jobs/?per_page=2").json()
    assert first["count"] == 3 and len(first["results"]) == 2
    assert "page=2" in first["next"] and first["previous"] is None
    datasets = alice_api.get("/api/v1/datasets/?per_page=1").json()
    assert set(datasets) == set(first) == {"count", "next", "previous", "results"}
    past = alice_api.get("/api/v1/jobs/?per_page=2&page=3")
    assert past.status_code == 404
    assert error_message(past) == "There is no page 3: the last page is 2."
    assert field_errors(alice_api.get("/api/v1/jobs/?per_page=0")) == {
        "per_page": ["Must be at least 1 and at most 200."]
    }
    assert field_errors(alice_api.get("/api/v1/datasets/?page=x")) == {
        "page": ["Must be a whole number."]
    }
    assert alice_api.get("/api/v1/datasets/?status=ready&q=routing").json()["count"] == 1
    assert alice_api.get("/api/v1/datasets/?status=invalid").json()["count"] == 0
    assert alice_api.get(f"/api/v1/jobs/?dataset={dataset.pk}&task=causal-lm").json()["count"] == 3
    assert alice_api.get("/api/v1/jobs/?base_model=minilm-l6").json()["count"] == 0


def test_every_api_error_has_one_shape(alice_api, client):
    unknown = alice_api.get("/api/v1/no-such-thing/")
    assert unknown.status_code == 404
    assert unknown.json() == {
        "error": {
            "code": "not_found",
            "message": "There is no API endpoint at /api/v1/no-such-thing/.",
        }
    }
    anonymous = client.get("/api/v1/jobs/")
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "not_authenticated"
    assert anonymous["WWW-Authenticate"] == 'Bearer realm="api"'
    wrong = APIClient()
    wrong.credentials(HTTP_AUTHORIZATION="Bearer tlr_not-a-token")
    assert wrong.get("/api/v1/me/").json()["error"]["code"] == "authentication_failed"
    not_allowed = alice_api.delete("/api/v1/jobs/")
    assert not_allowed.status_code == 405
    assert not_allowed.json()["error"] == {
        "code": "method_not_allowed",
        "message": 'Method "DELETE" not allowed.',
    }
    unsupported = alice_api.post(GENERATIONS, "models=x", content_type="text/plain")
    assert unsupported.status_code == 415
    assert unsupported.json()["error"]["code"] == "unsupported_media_type"


def test_the_docs_are_served_without_any_cdn(client, alice):
    client.force_login(alice)
    assert (
        'href="/api/docs/" data-testid="api-docs-link"' in client.get("/tokens/").content.decode()
    )
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assets = [part.split('"')[0] for part in html.split('src="')[1:]]
    assets += [part.split('"')[0] for part in html.split('href="')[1:]]
    # The page's own script is served apart from it (no inline script: CSP).
    own_script = "/api/docs/?script="
    assert own_script in assets
    assert all(a.startswith("/static/") for a in assets if a != own_script), assets
    assert "http://" not in html and "https://" not in html
    for asset in assets:
        assert client.get(asset).status_code == 200, asset
    assert "/api/schema/" in client.get(own_script).content.decode()
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    for path in ("/api/v1/generations/", "/api/v1/evaluations/{evaluation_id}/"):
        assert path in paths
