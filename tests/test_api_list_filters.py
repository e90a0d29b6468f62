"""Every filter of the native API's lists tells a matching object from one that
does not match, and the schema documents no filter these tests leave out.

The task filter takes both words of the task vocabulary (jobs/vocabulary.py)
on every list: a dataset's (generation, classification) and a model's
(causal-lm, sequence-classification).
"""

import pytest
from drf_spectacular.generators import SchemaGenerator

from datasets_app import services as datasets
from jobs.services.lifecycle import cancel_job
from jobs.services.organise import Organisation, organise_job
from jobs.vocabulary import DATASET_TASK_WORDS, MODEL_TASK_WORDS
from tests.builders import make_job, ready_sample, upload

pytestmark = pytest.mark.django_db

PAGING = {"page", "per_page"}


@pytest.fixture
def world(alice, demo_models):
    """Two ready datasets of either task, an invalid one, and a job on each ready one."""
    routing = ready_sample(alice, "support-routing")
    sentiment = ready_sample(alice, "sentiment")
    broken = datasets.create_dataset(
        alice, upload=upload("broken-file.jsonl", b'{"prompt": 1}\n'), name="Broken"
    )
    datasets.run_validation(str(broken.pk), broken.revision)
    router = make_job(alice, routing, name="router run")
    organise_job(router, Organisation(tags=["Baseline", "lr sweep"]))
    classifier = cancel_job(make_job(alice, sentiment, model="minilm-l6", name="mood run"))
    organise_job(classifier, Organisation(tags=["lr sweep"], starred=True))
    return {
        "routing": routing.pk,
        "sentiment": sentiment.pk,
        "broken": broken.pk,
        "router": router.pk,
        "classifier": classifier.pk,
        "routing_id": str(routing.pk),
    }


def listed(client, path: str, query: str) -> set[str]:
    response = client.get(f"{path}?{query}")
    assert response.status_code == 200, response.json()
    body = response.json()
    return {str(item["id"]) for item in (body if isinstance(body, list) else body["results"])}


# (list, filter, query, the names of the objects it lists) for every filter of every list.
CASES = [
    ("/api/v1/datasets/", "status", "status=ready", {"routing", "sentiment"}),
    ("/api/v1/datasets/", "status", "status=invalid", {"broken"}),
    ("/api/v1/datasets/", "task", "task=generation", {"routing"}),
    ("/api/v1/datasets/", "task", "task=classification", {"sentiment"}),
    ("/api/v1/datasets/", "task", "task=causal-lm", {"routing"}),
    ("/api/v1/datasets/", "task", "task=sequence-classification", {"sentiment"}),
    ("/api/v1/datasets/", "format", "format=chat", {"routing"}),
    ("/api/v1/datasets/", "format", "format=text_label", {"sentiment"}),
    ("/api/v1/datasets/", "q", "q=routing", {"routing"}),
    ("/api/v1/datasets/", "q", "q=broken-file", {"broken"}),
    ("/api/v1/jobs/", "status", "status=created", {"router"}),
    ("/api/v1/jobs/", "status", "status=cancelled", {"classifier"}),
    ("/api/v1/jobs/", "task", "task=causal-lm", {"router"}),
    ("/api/v1/jobs/", "task", "task=sequence-classification", {"classifier"}),
    ("/api/v1/jobs/", "task", "task=generation", {"router"}),
    ("/api/v1/jobs/", "task", "task=classification", {"classifier"}),
    ("/api/v1/jobs/", "base_model", "base_model=tailor-tiny", {"router"}),
    ("/api/v1/jobs/", "base_model", "base_model=minilm-l6", {"classifier"}),
    ("/api/v1/jobs/", "dataset", "dataset={routing_id}", {"router"}),
    ("/api/v1/jobs/", "tag", "tag=baseline", {"router"}),
    ("/api/v1/jobs/", "tag", "tag=lr%20sweep", {"router", "classifier"}),
    ("/api/v1/jobs/", "tag", "tag=unused", set()),
    ("/api/v1/jobs/", "starred", "starred=true", {"classifier"}),
    ("/api/v1/jobs/", "starred", "starred=false", {"router"}),
    ("/api/v1/jobs/", "q", "q=mood", {"classifier"}),
    ("/api/v1/jobs/", "q", "q=router", {"router"}),
]


@pytest.mark.parametrize(("path", "name", "query", "expected"), CASES)
def test_a_list_filter_lists_the_matching_objects_only(alice_api, world, path, name, query,
                                                        expected):  # fmt: skip
    assert listed(alice_api, path, query.format(**world)) == {str(world[key]) for key in expected}


@pytest.mark.parametrize(
    ("query", "listed_model", "left_out"),
    [
        ("task=causal-lm", "tailor-tiny", "minilm-l6"),
        ("task=generation", "tailor-tiny", "minilm-l6"),
        ("task=sequence-classification", "minilm-l6", "tailor-tiny"),
        ("task=classification", "minilm-l6", "tailor-tiny"),
    ],
)
def test_the_model_list_filters_by_task_in_either_word(alice_api, demo_models, query,
                                                       listed_model, left_out):  # fmt: skip
    models = listed(alice_api, "/api/v1/models/", query)
    assert listed_model in models
    assert left_out not in models


def documented_filters() -> dict[str, set[str]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return {
        path: {
            parameter["name"]
            for parameter in schema["paths"][path]["get"].get("parameters", [])
            if parameter["in"] == "query"
        }
        - PAGING
        for path in ("/api/v1/datasets/", "/api/v1/jobs/", "/api/v1/models/")
    }


def test_every_documented_filter_is_tested():
    tested = {path: set() for path in documented_filters()}
    for path, name, _, _ in CASES:
        tested[path].add(name)
    tested["/api/v1/models/"].add("task")  # test_the_model_list_filters_by_task_in_either_word
    assert documented_filters() == tested


DATASET_TASK_SENTENCE = "generation or classification, as a dataset's `task` says"
MODEL_TASK_SENTENCE = "causal-lm or sequence-classification, as a model's `task` says"


@pytest.mark.parametrize(
    ("path", "words", "sentence"),
    [
        ("/api/v1/datasets/", DATASET_TASK_WORDS, DATASET_TASK_SENTENCE),
        ("/api/v1/jobs/", MODEL_TASK_WORDS, MODEL_TASK_SENTENCE),
        ("/api/v1/models/", MODEL_TASK_WORDS, MODEL_TASK_SENTENCE),
    ],
    ids=["datasets", "jobs", "models"],
)
def test_the_task_filter_documents_the_words_it_accepts(path, words, sentence):
    schema = SchemaGenerator().get_schema(request=None, public=True)
    (parameter,) = [p for p in schema["paths"][path]["get"]["parameters"] if p["name"] == "task"]
    # The same four words on both sides (drf-spectacular lists them sorted).
    assert parameter["schema"]["enum"] == sorted(words)
    assert parameter["description"].startswith(sentence)


def test_a_starred_filter_other_than_true_or_false_is_refused(alice_api):
    response = alice_api.get("/api/v1/jobs/?starred=yes")
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "starred: Must be one of true, false."


def test_an_unknown_task_word_is_refused_with_the_words_accepted(alice_api):
    response = alice_api.get("/api/v1/datasets/?task=vision")
    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        "task: Must be one of generation, classification, preference, feedback, causal-lm, "
        "sequence-classification."
    )
