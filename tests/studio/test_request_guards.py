"""A NUL character in the address or the query string: a 400 that says where,
in the caller's shape, on SQLite and PostgreSQL alike (PostgreSQL's driver
refused it with a 500 before)."""

import pytest

pytestmark = pytest.mark.django_db

QUERIES = [
    ("/api/v1/jobs/", {"q": "\x00"}),
    ("/api/v1/jobs/", {"base_model": "tiny\x00"}),
    ("/api/v1/datasets/", {"q": "a\x00b"}),
    ("/api/v1/generations/", {"model": "\x00"}),
    ("/api/v1/models/a\x00b/", {}),
]


@pytest.mark.parametrize(("path", "query"), QUERIES)
def test_the_native_api_refuses_a_nul_with_a_400_that_says_where(alice_api, path, query):
    response = alice_api.get(path, query)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "bad_request"
    assert "NUL character" in error["message"]
    if query:
        assert f"query parameter {next(iter(query))} " in error["message"]


def test_the_openai_api_answers_in_openais_shape(alice_api):
    response = alice_api.get("/v1/models/a\x00b")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"] == "The address contains a NUL character (%00)."


def test_a_page_answers_with_the_bad_request_page(alice_client):
    response = alice_client.get("/jobs/", {"q": "\x00"})
    assert response.status_code == 400
    assert "The request could not be read" in response.content.decode()
    assert "\x00" not in response.content.decode()  # nothing of the request echoed


def test_an_ordinary_query_still_passes(alice_api):
    assert alice_api.get("/api/v1/jobs/", {"q": "routing"}).status_code == 200
