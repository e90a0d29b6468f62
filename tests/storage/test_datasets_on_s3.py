"""A dataset with TAILOR_STORAGE=s3, the web and the validating worker on
"two machines": each its own MEDIA_ROOT, the bucket (a real S3-compatible
server on loopback) the only place they share files."""

import json
import shutil
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from datasets_app.models import Dataset
from tests.builders import api_client, chat_jsonl, dataset_when_finished
from tests.processes import CeleryWorker, paused_workers

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker_elsewhere(s3, tmp_path):
    """A real Celery worker of the default queue (validation) whose
    MEDIA_ROOT is a folder of its own, as on another machine."""
    media = tmp_path / "worker-machine"
    worker = CeleryWorker("default", "s3-validation", env={**s3.env, "MEDIA_ROOT": str(media)})
    with paused_workers({"default"}):
        worker.start()
        try:
            yield media
        finally:
            worker.stop()


def post_upload(client, content: bytes):
    file = SimpleUploadedFile("tickets.jsonl", content)
    return client.post("/api/v1/datasets/", {"file": file}, format="multipart")


def upload(client, content: bytes) -> dict:
    answer = post_upload(client, content)
    assert answer.status_code == 201, answer.content
    return answer.json()


def first_turn(content: bytes, line: int) -> str:
    return json.loads(content.splitlines()[line])["messages"][0]["content"]


def test_a_dataset_uploaded_here_is_validated_on_another_machine(
    s3, worker_elsewhere, alice, alice_client, bob, settings
):  # fmt: skip
    web = Path(settings.MEDIA_ROOT)
    alice_api = api_client(alice)

    made = upload(alice_api, chat_jsonl(40))
    key = f"datasets/{made['id']}"
    assert s3.keys(key) == [f"{key}/source/tickets.jsonl"]  # stored before the row
    dataset = dataset_when_finished(made["id"])

    assert dataset.status == "ready", dataset.errors
    assert dataset.num_train_rows + dataset.num_validation_rows == 40
    assert s3.keys(f"{key}/r1/") == [
        f"{key}/r1/{name}"
        for name in ("records.idx", "records.jsonl", "train.idx", "train.jsonl",
                     "validation.idx", "validation.jsonl")
    ]  # fmt: skip
    # The worker wrote into its own folder; the web never saw those files.
    assert (worker_elsewhere / key / "r1" / "records.jsonl").is_file()
    assert not (web / key / "r1").exists()

    shutil.rmtree(web / key)  # nothing of the dataset left on the web machine
    preview = alice_api.get(f"/api/v1/datasets/{made['id']}/preview/?per_page=3")

    assert preview.status_code == 200, preview.content
    assert preview.json()["count"] == 40
    assert [row["messages"][0]["content"] for row in preview.json()["results"]] == [
        first_turn(chat_jsonl(40), line) for line in range(3)
    ]
    assert (web / key / "r1" / "records.jsonl").read_bytes() == (
        worker_elsewhere / key / "r1" / "records.jsonl"
    ).read_bytes()
    assert api_client(bob).get(f"/api/v1/datasets/{made['id']}/preview/").status_code == 404

    shutil.rmtree(web / key)
    page = alice_client.get(reverse("dataset-detail", args=[made["id"]]))
    assert page.status_code == 200
    assert first_turn(chat_jsonl(40), 0) in page.content.decode()


def test_a_deleted_dataset_leaves_nothing_in_the_bucket(s3, worker_elsewhere, alice, settings):
    alice_api = api_client(alice)
    made = upload(alice_api, chat_jsonl(20))
    assert dataset_when_finished(made["id"]).status == "ready"
    assert s3.keys(f"datasets/{made['id']}/")

    assert alice_api.delete(f"/api/v1/datasets/{made['id']}/").status_code == 204

    assert s3.keys(f"datasets/{made['id']}/") == []
    assert not (Path(settings.MEDIA_ROOT) / "datasets" / made["id"]).exists()
    assert Dataset.objects.get(pk=made["id"]).deleted_at is not None


def test_an_upload_to_a_missing_bucket_is_refused_in_a_sentence(s3, alice, settings):
    settings.TAILOR_S3_BUCKET = "no-such-bucket"
    answer = post_upload(api_client(alice), chat_jsonl(5))

    assert answer.status_code == 503
    assert answer.json() == {
        "error": {
            "code": "storage_unavailable",
            "message": (
                "The bucket 'no-such-bucket' does not exist at the object store at "
                f"{s3.server.endpoint}: create it, or set TAILOR_S3_BUCKET to one that does."
            ),
        }
    }
    assert not Dataset.objects.filter(owner=alice).exists()


def test_an_upload_page_to_a_missing_bucket_shows_the_sentence_on_the_form(
    s3, alice, alice_client, settings
):  # fmt: skip
    settings.TAILOR_S3_BUCKET = "no-such-bucket"
    folders = Path(settings.MEDIA_ROOT) / "datasets"
    before = set(folders.glob("*"))
    answer = alice_client.post(
        "/datasets/upload/",
        {"file": SimpleUploadedFile("tickets.jsonl", chat_jsonl(5))},
        HTTP_HX_REQUEST="true",
    )

    assert answer.status_code == 422
    html = answer.content.decode()
    assert html.lstrip().startswith('<form id="upload-form"')
    assert (
        "The bucket &#x27;no-such-bucket&#x27; does not exist at the object store at "
        f"{s3.server.endpoint}: create it, or set TAILOR_S3_BUCKET to one that does."
    ) in html
    assert not Dataset.objects.filter(owner=alice).exists()
    assert set(folders.glob("*")) == before  # the stored upload was removed again
