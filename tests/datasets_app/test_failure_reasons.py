"""A dataset whose validation failed unexpectedly, as an analyst and as an
operator see it: the owner reads a plain sentence (page, REST API, OpenAI
files API); only staff see the exception, whose text names the server's path."""

import json

import pytest
from django.test import Client

from datasets_app import services
from datasets_app.models import Dataset
from studio.services.tokens import create_token
from tests.builders import api_client, chat_jsonl, upload

pytestmark = pytest.mark.django_db

PLAIN = (
    "Validation stopped with an unexpected error in the worker. Nothing was imported. "
    "Try again; if it happens again, tell an operator: they can see the error here."
)


def failed_unexpectedly(owner) -> tuple[Dataset, str]:
    """A dataset whose file went from the disk before its validation ran
    (a real FileNotFoundError in the worker), and the path it named."""
    dataset = services.create_dataset(owner, upload=upload("n.jsonl", chat_jsonl(5)))
    path = dataset.source.path
    dataset.source.storage.delete(dataset.source.name)
    assert services.run_validation(str(dataset.pk), dataset.revision) == "invalid"
    dataset.refresh_from_db()
    return dataset, path


def page_of(user, dataset) -> str:
    client = Client()
    client.force_login(user)
    response = client.get(f"/datasets/{dataset.pk}/")
    assert response.status_code == 200
    return response.content.decode()


def openai_file(user, dataset) -> dict:
    secret = create_token(user, "tests").secret
    response = Client().get(
        f"/v1/files/file-{dataset.pk.hex}", HTTP_AUTHORIZATION=f"Bearer {secret}"
    )
    assert response.status_code == 200
    return response.json()


def test_the_owner_reads_a_plain_sentence_and_never_the_exception(alice):
    dataset, path = failed_unexpectedly(alice)

    page = page_of(alice, dataset)
    assert PLAIN in page
    assert "FileNotFoundError" not in page
    assert path not in page

    body = api_client(alice).get(f"/api/v1/datasets/{dataset.pk}/").json()
    assert body["errors"] == [
        {"line": None, "field": None, "code": "internal_error", "message": PLAIN}
    ]
    listed = api_client(alice).get("/api/v1/datasets/").json()["results"][0]
    assert listed["errors"] == body["errors"]

    file = openai_file(alice, dataset)
    assert file["status"] == "error"
    assert file["status_details"] == f"1 problem found; nothing was imported. {PLAIN}."
    assert path not in json.dumps(file)


def test_staff_read_the_sentence_and_the_exception(alice, olga):
    dataset, path = failed_unexpectedly(alice)

    page = page_of(olga, dataset)
    assert PLAIN in page
    assert "The error (operators only)" in page
    assert f"FileNotFoundError: [Errno 2] No such file or directory: &#x27;{path}&#x27;" in page

    error = api_client(olga).get(f"/api/v1/datasets/{dataset.pk}/").json()["errors"][0]
    assert error["message"] == PLAIN
    assert error["detail"] == f"FileNotFoundError: [Errno 2] No such file or directory: '{path}'"


def test_another_analyst_still_gets_404(alice, bob):
    dataset, _ = failed_unexpectedly(alice)
    assert api_client(bob).get(f"/api/v1/datasets/{dataset.pk}/").status_code == 404
