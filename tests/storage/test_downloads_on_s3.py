"""Downloads of a job's archives with TAILOR_STORAGE=s3: the zip a worker on
another machine pushed reaches the user from the web machine, which never
held it, by a presigned URL or streamed through; only its owner gets it."""

import io
import urllib.request
import zipfile
from pathlib import Path

import pytest
from django.urls import reverse

from jobs.models import ExportStatus, FineTuneJob, JobStatus
from jobs.services import artifacts
from studio.services import object_store
from tests.builders import api_client, make_job, ready_sample

pytestmark = [pytest.mark.django_db]


def zipped(name: str, content: bytes) -> bytes:
    """A zip of one file, the same bytes every time (a fixed date)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0)), content)
    return buffer.getvalue()


@pytest.fixture
def trained_elsewhere(s3, alice, demo_models, settings, tmp_path):
    """Alice's succeeded job whose adapter zip and merged export a worker
    with a MEDIA_ROOT of its own pushed and recorded (paths of its machine)."""
    web = Path(settings.MEDIA_ROOT)
    job = make_job(alice, ready_sample(alice))
    settings.MEDIA_ROOT = tmp_path / "gpu-machine"
    job = FineTuneJob.objects.get(pk=job.pk)  # its folder, on the worker's machine
    adapter_zip = job.attempt_folder(1) / "adapter.zip"
    merged_zip = job.export_folder(1) / "merged-model.zip"
    for path, name in ((adapter_zip, "adapter_config.json"), (merged_zip, "config.json")):
        path.parent.mkdir(parents=True)
        path.write_bytes(zipped(name, b'{"r": 16}'))
        object_store.push(path)
    FineTuneJob.objects.filter(pk=job.pk).update(
        status=JobStatus.SUCCEEDED, adapter_path=str(adapter_zip.parent / "adapter"),
        export_status=ExportStatus.READY, export_path=str(merged_zip),
    )  # fmt: skip
    settings.MEDIA_ROOT = web
    return FineTuneJob.objects.get(pk=job.pk)


def test_the_api_redirects_to_the_adapter_pushed_from_another_machine(
    trained_elsewhere, alice, bob
):  # fmt: skip
    job = trained_elsewhere
    answer = api_client(alice).get(f"/api/v1/jobs/{job.pk}/adapter/")

    assert answer.status_code == 302
    with urllib.request.urlopen(answer["Location"]) as served:
        assert served.read() == zipped("adapter_config.json", b'{"r": 16}')
        assert served.headers["Content-Disposition"] == (
            f'attachment; filename="{artifacts.download_name(job, "adapter")}"'
        )
    assert not job.attempt_folder(1).exists()  # the web machine holds no copy
    assert api_client(bob).get(f"/api/v1/jobs/{job.pk}/adapter/").status_code == 404


def test_the_page_streams_the_merged_model_when_asked_to(trained_elsewhere, alice_client, settings):
    settings.TAILOR_S3_DOWNLOADS = "stream"
    answer = alice_client.get(reverse("job-merged", args=[trained_elsewhere.pk]))

    assert answer.status_code == 200
    assert b"".join(answer.streaming_content) == zipped("config.json", b'{"r": 16}')
    assert answer["Content-Disposition"].endswith('-merged.zip"')


def test_a_missing_archive_is_no_download(trained_elsewhere, alice, s3):
    s3.server.client().delete_object(
        Bucket=s3.name, Key=object_store.key(trained_elsewhere.attempt_folder(1) / "adapter.zip")
    )
    answer = api_client(alice).get(f"/api/v1/jobs/{trained_elsewhere.pk}/adapter/")

    assert answer.status_code == 409
    assert answer.json()["error"]["message"] == (
        "The job succeeded, but its adapter archive is missing."
    )


def test_a_store_that_fails_is_a_503_with_its_sentence(
    trained_elsewhere, alice, alice_client, settings, s3
):
    settings.TAILOR_S3_BUCKET = "no-such-bucket"
    sentence = (
        "The bucket 'no-such-bucket' does not exist at the object store at "
        f"{s3.server.endpoint}: create it, or set TAILOR_S3_BUCKET to one that does."
    )

    answer = api_client(alice).get(f"/api/v1/jobs/{trained_elsewhere.pk}/adapter/")
    page = alice_client.get(reverse("job-adapter", args=[trained_elsewhere.pk]))

    assert answer.status_code == 503
    assert answer.json() == {"error": {"code": "storage_unavailable", "message": sentence}}
    assert page.status_code == 503
    assert page.content.decode() == sentence
