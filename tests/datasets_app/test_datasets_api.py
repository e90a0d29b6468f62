"""/api/v1/datasets/ end to end through a real worker: upload, validate, preview, change, delete."""

import json

import pytest
from django.test import override_settings

from datasets_app.models import Dataset
from tests.builders import chat_jsonl, csv_bytes, dataset_when_finished, upload

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def post_dataset(client, filename, content, **fields):
    return client.post(
        "/api/v1/datasets/", {"file": upload(filename, content), **fields}, format="multipart"
    )


def test_a_chat_file_is_validated_split_and_previewed(alice_api, celery_worker):
    response = post_dataset(alice_api, "numbers.jsonl", chat_jsonl(100), name="Numbers")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["name"] == "Numbers"
    assert body["status"] in ("uploaded", "validating", "ready")

    dataset = dataset_when_finished(body["id"])
    assert dataset.status == "ready", dataset.errors
    detail = alice_api.get(f"/api/v1/datasets/{dataset.pk}/").json()
    assert detail["format"] == "chat"
    assert detail["file_type"] == "jsonl"
    assert detail["task"] == "generation"
    assert detail["num_rows"] == 100
    assert (detail["num_train_rows"], detail["num_validation_rows"]) == (90, 10)
    assert detail["errors"] == []
    assert detail["stats"]["rows"] == 100
    assert sum(detail["stats"]["length"]["histogram"]["counts"]) == 100

    page = alice_api.get(f"/api/v1/datasets/{dataset.pk}/preview/?page=2&per_page=10").json()
    assert page["count"] == 100 and page["pages"] == 10 and page["page"] == 2
    assert page["results"][0]["messages"][1] == {"role": "user", "content": "What comes after 10?"}
    assert len(page["results"]) == 10


def test_an_invalid_file_lists_its_problems_and_imports_nothing(alice_api, celery_worker):
    lines = [
        json.dumps(
            {
                "messages": [
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": "hello"},
                ]
            }
        ),
        '{"messages": [}',
        json.dumps(
            {"messages": [{"role": "user", "content": "hi"}, {"role": "bot", "content": "x"}]}
        ),
    ]
    response = post_dataset(alice_api, "broken.jsonl", "\n".join(lines))
    dataset = dataset_when_finished(response.json()["id"])
    assert dataset.status == "invalid"
    detail = alice_api.get(f"/api/v1/datasets/{dataset.pk}/").json()
    assert detail["error_count"] == 2
    assert [(e["line"], e["field"]) for e in detail["errors"]] == [
        (2, None),
        (3, "messages[1].role"),
    ]
    assert detail["errors"][0]["message"].startswith("line 2: not valid JSON")
    assert "must be one of system, user, assistant" in detail["errors"][1]["message"]
    assert not dataset.output_folder().exists()
    preview = alice_api.get(f"/api/v1/datasets/{dataset.pk}/preview/")
    assert preview.status_code == 409
    assert preview.json() == {
        "error": {
            "code": "conflict",
            "message": "The dataset is invalid; a preview needs it ready.",
        }
    }


def test_columns_with_other_names_are_mapped_on_upload(alice_api, celery_worker):
    content = csv_bytes(["question", "answer"], [[f"q{i}", f"a{i}"] for i in range(20)])
    response = post_dataset(
        alice_api,
        "faq.csv",
        content,
        column_mapping=json.dumps({"prompt": "question", "completion": "answer"}),
    )
    assert response.status_code == 201, response.json()
    dataset = dataset_when_finished(response.json()["id"])
    assert dataset.status == "ready", dataset.errors
    assert dataset.format == "prompt_completion"
    assert dataset.columns == ["question", "answer"]
    row = alice_api.get(f"/api/v1/datasets/{dataset.pk}/preview/?per_page=1").json()["results"][0]
    assert row == {
        "messages": [{"role": "user", "content": "q0"}, {"role": "assistant", "content": "a0"}]
    }


def test_changing_the_split_validates_again_with_the_new_settings(alice_api, celery_worker):
    dataset = dataset_when_finished(post_dataset(alice_api, "n.jsonl", chat_jsonl(50)).json()["id"])
    assert (dataset.num_train_rows, dataset.num_validation_rows) == (45, 5)
    first_revision = dataset.revision
    response = alice_api.patch(
        f"/api/v1/datasets/{dataset.pk}/",
        {"name": "Numbers, 20 % held out", "validation_fraction": 0.2},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["name"] == "Numbers, 20 % held out"
    dataset = dataset_when_finished(dataset.pk)
    assert dataset.revision == first_revision + 1
    assert (dataset.num_train_rows, dataset.num_validation_rows) == (40, 10)
    assert not dataset.output_folder(first_revision).exists()


def test_a_separate_validation_file_is_checked_like_the_training_file(alice_api, celery_worker):
    response = alice_api.post(
        "/api/v1/datasets/",
        {
            "file": upload("train.jsonl", chat_jsonl(30)),
            "validation_file": upload("held-out.jsonl", chat_jsonl(5, start=100)),
        },
        format="multipart",
    )
    dataset = dataset_when_finished(response.json()["id"])
    assert dataset.status == "ready", dataset.errors
    assert dataset.split_mode == "file"
    assert (dataset.num_train_rows, dataset.num_validation_rows) == (30, 5)
    assert dataset.validation_path.read_text().count("\n") == 5


def test_a_bad_validation_file_makes_the_dataset_invalid_and_says_which_file(
    alice_api, celery_worker
):
    response = alice_api.post(
        "/api/v1/datasets/",
        {
            "file": upload("train.jsonl", chat_jsonl(30)),
            "validation_file": upload("held-out.jsonl", b'{"messages": 3}\n'),
        },
        format="multipart",
    )
    dataset = dataset_when_finished(response.json()["id"])
    assert dataset.status == "invalid"
    assert dataset.errors[0]["message"].startswith("Validation file: line 1")


def test_an_unknown_extension_is_refused_before_anything_is_stored(alice_api):
    response = post_dataset(alice_api, "notes.txt", b"hello")
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": "invalid",
            "field": "file",
            "message": "file: 'notes.txt' has no recognised extension; "
            "use .jsonl, .json, .csv, .tsv or .parquet.",
        }
    }
    assert not Dataset.objects.exists()


@override_settings(DATASET_MAX_UPLOAD_BYTES=1000)
def test_a_file_over_the_size_limit_is_refused_with_the_limit_stated(alice_api):
    response = post_dataset(alice_api, "big.jsonl", chat_jsonl(50))
    assert response.status_code == 413
    assert response.json() == {
        "error": {
            "code": "file_too_large",
            "field": "file",
            "message": "The file is larger than the upload limit of 1000 bytes.",
        }
    }
    assert not Dataset.objects.exists()


def test_bob_cannot_see_or_touch_alices_dataset(alice_api, bob_api, celery_worker):
    dataset_id = post_dataset(alice_api, "n.jsonl", chat_jsonl(10)).json()["id"]
    dataset_when_finished(dataset_id)
    assert bob_api.get("/api/v1/datasets/").json()["results"] == []
    for method, path in [
        ("get", f"/api/v1/datasets/{dataset_id}/"),
        ("get", f"/api/v1/datasets/{dataset_id}/preview/"),
        ("patch", f"/api/v1/datasets/{dataset_id}/"),
        ("delete", f"/api/v1/datasets/{dataset_id}/"),
    ]:
        response = getattr(bob_api, method)(path, {"name": "mine"}, format="json")
        assert response.status_code == 404, (method, path)
        assert response.json()["error"]["code"] == "not_found"
    assert Dataset.objects.get(pk=dataset_id).name == "n"


def test_deleting_hides_the_dataset_and_frees_its_files(alice_api, celery_worker):
    dataset = dataset_when_finished(post_dataset(alice_api, "n.jsonl", chat_jsonl(10)).json()["id"])
    folder = dataset.folder
    assert folder.exists()
    assert alice_api.delete(f"/api/v1/datasets/{dataset.pk}/").status_code == 204
    assert alice_api.get(f"/api/v1/datasets/{dataset.pk}/").status_code == 404
    assert alice_api.get("/api/v1/datasets/").json()["count"] == 0
    assert not folder.exists()
    assert Dataset.objects.get(pk=dataset.pk).deleted_at is not None
