"""Server paths and identities: what the admin may not change, and the one
containment rule (`studio.services.paths.inside`) that every file served or
loaded from a stored path goes through."""

import os
import re

import pytest
from django.urls import reverse

from jobs.models import FineTuneJob, JobStatus
from serving.engine import ServingFailure
from serving.worker import adapter_labels, job_pane
from studio.models import ApiToken
from studio.services.paths import inside
from studio.services.tokens import create_token
from tests.api_errors import error_message
from tests.builders import make_job, ready_sample
from tests.processes import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def root(django_user_model):
    """A superuser: the most an admin form lets anyone change."""
    return django_user_model.objects.create_superuser("root", "root@example.com", PASSWORD)


@pytest.fixture
def root_client(client, root):
    client.force_login(root)
    return client


@pytest.fixture
def alice_job(alice, demo_models):
    return make_job(alice, ready_sample(alice))


@pytest.fixture
def outside(tmp_path):
    """A folder outside every job's, holding what must never be served."""
    folder = tmp_path / "outside"
    (folder / "adapter").mkdir(parents=True)
    (folder / "adapter.zip").write_bytes(b"the secret key")
    (folder / "merged-model.zip").write_bytes(b"the database")
    (folder / "adapter" / "tailor_labels.json").write_text('["stolen"]')
    return folder


def form_fields(client, url: str) -> set[str]:
    html = client.get(url).content.decode()
    return set(re.findall(r'<(?:input|select|textarea)\b[^>]*\bname="([^"]+)"', html))


def hidden_inputs(client, url: str) -> dict[str, str]:
    """The change form's hidden inputs (an inline's management form among them)."""
    html = client.get(url).content.decode()
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))


# --- the rule -------------------------------------------------------------------------------


def test_inside_judges_a_path_by_where_it_leads(tmp_path):
    folder = tmp_path / "job"
    (folder / "attempt-1").mkdir(parents=True)
    (tmp_path / "secret").write_text("x")
    os.symlink(tmp_path / "secret", folder / "link-out")
    os.symlink(folder / "attempt-1", folder / "link-in")

    assert inside(folder, folder / "attempt-1" / "adapter.zip")
    assert inside(folder, folder / "link-in" / "adapter.zip")
    assert inside(str(folder), str(folder / "not-written-yet.zip"))
    assert not inside(folder, folder / ".." / "secret")
    assert not inside(folder, folder / "link-out")
    assert not inside(folder, tmp_path / "job-2" / "adapter.zip")
    assert not inside(folder, "attempt-1/adapter.zip")
    assert not inside(folder, "")


# --- downloads ------------------------------------------------------------------------------


def test_a_merged_model_path_outside_the_jobs_folder_is_never_served(
    alice_client, alice_api, alice_job, outside
):
    FineTuneJob.objects.filter(pk=alice_job.pk).update(
        status=JobStatus.SUCCEEDED, export_status="ready",
        export_path=str(outside / "merged-model.zip"),
    )  # fmt: skip
    page = alice_client.get(reverse("job-merged", args=[alice_job.pk]))
    assert page.status_code == 404
    api = alice_api.get(f"/api/v1/jobs/{alice_job.pk}/export/")
    assert api.status_code == 409
    assert error_message(api) == (
        "The job has no merged model: POST here to export one (LoRA or QLoRA)."
    )


def test_an_adapter_path_outside_the_jobs_folder_is_never_served(
    alice_client, alice_api, alice_job, outside
):
    FineTuneJob.objects.filter(pk=alice_job.pk).update(
        status=JobStatus.SUCCEEDED, adapter_path=str(outside / "adapter")
    )
    assert alice_client.get(reverse("job-adapter", args=[alice_job.pk])).status_code == 404
    api = alice_api.get(f"/api/v1/jobs/{alice_job.pk}/adapter/")
    assert api.status_code == 409
    assert error_message(api) == "The job succeeded, but its adapter archive is missing."


def test_a_link_in_the_jobs_folder_that_leads_out_is_never_served(alice_client, alice_job, outside):
    alice_job.folder.mkdir(parents=True, exist_ok=True)
    link = alice_job.folder / "merged-model.zip"
    os.symlink(outside / "merged-model.zip", link)
    FineTuneJob.objects.filter(pk=alice_job.pk).update(
        status=JobStatus.SUCCEEDED, export_status="ready", export_path=str(link)
    )
    assert alice_client.get(reverse("job-merged", args=[alice_job.pk])).status_code == 404


# --- the inference worker -------------------------------------------------------------------


def test_the_inference_worker_loads_no_adapter_from_outside_the_jobs_folder(alice_job, outside):
    FineTuneJob.objects.filter(pk=alice_job.pk).update(
        status=JobStatus.SUCCEEDED, adapter_path=str(outside / "adapter")
    )
    alice_job.refresh_from_db()
    assert adapter_labels(alice_job) == ()
    with pytest.raises(ServingFailure) as caught:
        job_pane(alice_job)
    assert caught.value.code == "model_load"
    assert caught.value.message == (
        f"{alice_job.fine_tuned_model} cannot be loaded: its files are recorded outside "
        "its job's folder."
    )


# --- the admin ------------------------------------------------------------------------------


def test_the_admin_shows_a_jobs_ledger_and_paths_but_cannot_change_them(
    root_client, alice_job, outside
):
    url = reverse("admin:jobs_finetunejob_change", args=[alice_job.pk])
    fields = form_fields(root_client, url)
    for name in ("export_path", "adapter_path", "status", "attempt", "lease_expires_at",
                 "worker", "owner", "export_status"):  # fmt: skip
        assert name not in fields, name

    response = root_client.post(url, {
        **hidden_inputs(root_client, url),
        "name": "renamed",
        "export_path": str(outside / "merged-model.zip"),
        "export_status": "ready",
        "status": JobStatus.SUCCEEDED,
    })  # fmt: skip
    assert response.status_code == 302
    job = FineTuneJob.objects.get(pk=alice_job.pk)
    assert job.name == "renamed"
    assert (job.export_path, job.export_status, job.status) == ("", "", alice_job.status)


def test_the_admin_cannot_hand_a_token_to_another_user(root_client, root, alice):
    token = create_token(alice, "pipeline").token
    url = reverse("admin:studio_apitoken_change", args=[token.pk])
    assert {"user", "digest", "prefix"}.isdisjoint(form_fields(root_client, url))
    response = root_client.post(url, {"name": "renamed", "user": root.pk, "digest": "0" * 64})
    assert response.status_code == 302
    token.refresh_from_db()
    assert (token.name, token.user, token.digest) == ("renamed", alice, token.digest)
    assert ApiToken.objects.get(pk=token.pk).user == alice


@pytest.mark.parametrize("model", ["studio_apitoken", "jobs_finetunejob", "jobs_checkpoint"])
def test_the_admin_makes_no_tokens_jobs_or_checkpoints(root_client, model):
    assert root_client.get(reverse(f"admin:{model}_add")).status_code == 403
