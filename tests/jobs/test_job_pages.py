"""The jobs pages in the Django test client: the wizard and its estimate, the
job page, its actions and downloads, the model catalog; bob sees none of alice's."""

import io
import re
import zipfile

import pytest
import yaml
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils.html import escape

from jobs.models import FineTuneJob, JobStatus
from jobs.services import lifecycle
from tests.jobs.helpers import make_job, ready_sample

pytestmark = pytest.mark.django_db


def wizard_post(dataset, model="tailor-tiny", **fields):
    return {"data.dataset": str(dataset.pk), "model.base_model": model, "preset": "quick", **fields}


def field_error(html: str, field: str) -> str | None:
    """The message shown next to the input of `field`, if any."""
    match = re.search(
        rf'<p class="field-error"[^>]*data-field="{re.escape(field)}">([^<]*)</p>', html
    )
    return match.group(1) if match else None


# --- wizard ---------------------------------------------------------------------------


def test_the_wizard_offers_only_ready_datasets(alice_client, alice, bob):
    ready = ready_sample(alice)
    from datasets_app.models import Dataset

    Dataset.objects.create(
        owner=alice, name="still checking", original_filename="x.jsonl", size_bytes=1,
        status="validating",
    )  # fmt: skip
    ready_sample(bob, "sentiment")
    html = alice_client.get(reverse("job-new")).content.decode()
    assert f'<option value="{ready.pk}"' in html
    assert "still checking" not in html
    assert "Review sentiment" not in html  # bob's


def test_the_wizard_says_what_to_do_without_a_ready_dataset(alice_client):
    html = alice_client.get(reverse("job-new")).content.decode()
    assert "No ready datasets yet" in html
    assert 'href="/datasets/"' in html


def test_the_wizard_offers_only_models_for_the_datasets_task(alice_client, alice):
    routing = ready_sample(alice)
    html = alice_client.get(reverse("job-new"), {"dataset": routing.pk}).content.decode()
    assert 'data-testid="model-tailor-tiny"' in html
    assert 'data-testid="model-minilm-l6"' not in html

    sentiment = ready_sample(alice, "sentiment")
    html = alice_client.get(reverse("job-new"), {"dataset": sentiment.pk}).content.decode()
    assert 'data-testid="model-minilm-l6"' in html
    assert 'data-testid="model-tailor-tiny"' not in html


def test_the_preview_shows_75_steps_for_support_routing_on_quick(alice_client, alice):
    dataset = ready_sample(alice)
    response = alice_client.post(
        reverse("job-preview"), wizard_post(dataset), headers={"HX-Request": "true"}
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert '<strong data-testid="estimate-steps">75</strong>' in html
    assert "75 per epoch × 1 epoch · 16 rows per step" in html
    assert 'data-testid="estimate-memory"' in html and 'data-testid="estimate-time">about ' in html
    # The advanced section is prefilled from the resolved preset.
    assert 'name="training.learning_rate" id="id_training-learning_rate" value="0.003"' in html
    assert not html.lstrip().startswith("<!doctype")  # the fragment alone


def test_a_changed_preset_moves_untouched_fields_and_keeps_touched_ones(alice_client, alice):
    dataset = ready_sample(alice)
    post = wizard_post(
        dataset,
        preset="balanced",
        **{
            # Quick's values as the page showed them; the learning rate changed.
            "training.epochs": "1",
            "default.training.epochs": "1",
            "training.learning_rate": "0.001",
            "default.training.learning_rate": "0.003",
        },
    )
    html = alice_client.post(reverse("job-preview"), post).content.decode()
    assert 'name="training.epochs" id="id_training-epochs" value="2"' in html
    assert 'name="training.learning_rate" id="id_training-learning_rate" value="0.001"' in html
    assert '<strong data-testid="estimate-steps">150</strong>' in html


def test_a_bad_learning_rate_is_shown_next_to_its_field_and_creates_no_job(alice_client, alice):
    dataset = ready_sample(alice)
    response = alice_client.post(
        reverse("job-new"), wizard_post(dataset, **{"training.learning_rate": "0.5"})
    )
    html = response.content.decode()
    assert response.status_code == 422
    assert field_error(html, "training.learning_rate") == "must be more than 0 and at most 0.1."
    assert "<code>training.learning_rate</code>: must be more than 0 and at most 0.1." in html
    assert FineTuneJob.objects.count() == 0


def test_a_full_fine_tune_of_a_too_big_model_shows_the_reason(alice_client, alice):
    dataset = ready_sample(alice)
    post = wizard_post(dataset, "llama-3.2-1b-instruct", **{"model.method": "full"})
    html = alice_client.post(reverse("job-preview"), post).content.decode()
    assert field_error(html, "model.method") == (
        "a full fine-tune is offered for models up to 1B parameters; Llama 3.2 1B Instruct "
        "has 1.2B. Choose QLoRA or LoRA."
    )
    assert (
        '<span class="small-text reason" data-testid="method-full-reason">Offered for models '
        "up to 1B parameters; this one has 1.2B.</span>"
    ) in html


def test_qlora_on_minilm_shows_why_it_is_not_offered(alice_client, alice):
    dataset = ready_sample(alice, "sentiment")
    html = alice_client.post(
        reverse("job-preview"), wizard_post(dataset, "minilm-l6")
    ).content.decode()
    reason = "Not offered for this model: bitsandbytes' 4-bit layers fail during training of this encoder on CPU."
    assert escape(reason) in html
    # Left to its default, the method is LoRA for this model.
    assert re.search(r'name="model.method" value="lora" checked', html)
    assert '<strong data-testid="estimate-steps">75</strong>' in html

    post = wizard_post(dataset, "minilm-l6", **{"model.method": "qlora"})
    html = alice_client.post(reverse("job-new"), post).content.decode()
    assert field_error(html, "model.method") == escape(
        "MiniLM L6 (classifier, 22.7M) cannot be loaded in 4 bits here (bitsandbytes' 4-bit "
        "layers fail during training of this encoder on CPU); choose LoRA."
    )
    assert FineTuneJob.objects.count() == 0


def test_start_creates_a_queued_job_and_opens_its_page(
    alice_client, alice, django_capture_on_commit_callbacks
):
    dataset = ready_sample(alice)
    with django_capture_on_commit_callbacks(execute=False):
        response = alice_client.post(reverse("job-new"), wizard_post(dataset))
    job = FineTuneJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("job-detail", args=[job.pk])
    assert job.status == JobStatus.QUEUED
    assert job.owner == alice and job.total_steps == 75
    assert job.config["training"]["learning_rate"] == 0.003


def test_the_yaml_download_uploads_again_into_an_identical_config(
    alice_client, alice, django_capture_on_commit_callbacks
):
    job = make_job(alice, ready_sample(alice), training={"learning_rate": 0.002, "seed": 7})
    response = alice_client.get(reverse("job-config", args=[job.pk]))
    assert response["Content-Disposition"] == (
        f'attachment; filename="tailor-job-{job.pk.hex[:8]}.yaml"'
    )
    upload = SimpleUploadedFile("tailor-job.yaml", response.content, "application/yaml")
    with django_capture_on_commit_callbacks(execute=False):
        created = alice_client.post(reverse("job-upload"), {"config_file": upload})
    again = FineTuneJob.objects.exclude(pk=job.pk).get()
    assert created["Location"] == reverse("job-detail", args=[again.pk])
    assert again.config == job.config
    assert yaml.safe_load(response.content) == job.config


def test_an_upload_that_is_not_yaml_shows_why(alice_client, alice):
    upload = SimpleUploadedFile("job.yaml", b"data: [unclosed", "application/yaml")
    response = alice_client.post(reverse("job-upload"), {"config_file": upload})
    assert response.status_code == 422
    assert "<code>config_file</code>: is not valid YAML (line 1)." in response.content.decode()
    assert FineTuneJob.objects.count() == 0


def test_clone_and_edit_prefills_the_wizard(alice_client, alice):
    job = make_job(alice, ready_sample(alice), training={"learning_rate": 0.002})
    html = alice_client.get(reverse("job-new"), {"from": job.pk}).content.decode()
    assert f'<option value="{job.dataset_id}" selected>' in html
    assert re.search(r'name="model.base_model" value="tailor-tiny"\s+checked', html)
    assert 'name="training.learning_rate" id="id_training-learning_rate" value="0.002"' in html
    assert f'value="{escape(job.name)} (copy)"' in html


# --- job page and actions -----------------------------------------------------------------


def test_the_job_page_shows_the_job(alice_client, alice):
    job = make_job(alice, ready_sample(alice))
    html = alice_client.get(reverse("job-detail", args=[job.pk])).content.decode()
    assert (
        '<span class="badge badge-job-created" data-testid="job-status" data-status-badge>Created</span>'
        in html
    )
    assert 'id="loss-chart" data-points="0"' in html
    assert f'data-ws-path="/ws/jobs/{job.pk}/"' in html
    assert "Created from Support ticket routing." in html  # the log tail
    assert "learning_rate: 0.003" in html  # the configuration
    assert ">Cancel</button>" in html and ">Retry</button>" not in html


def test_cancel_of_a_created_job_cancels_it(alice_client, alice):
    job = make_job(alice, ready_sample(alice))
    response = alice_client.post(reverse("job-cancel", args=[job.pk]))
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED

    again = alice_client.post(reverse("job-cancel", args=[job.pk]), follow=True)
    assert "The job has already finished (cancelled)." in again.content.decode()


def test_retry_of_a_finished_job_creates_a_new_one(
    alice_client, alice, django_capture_on_commit_callbacks
):
    job = lifecycle.cancel_job(make_job(alice, ready_sample(alice)))
    with django_capture_on_commit_callbacks(execute=False):
        response = alice_client.post(reverse("job-retry", args=[job.pk]))
    retry = FineTuneJob.objects.get(retry_of=job)
    assert response["Location"] == reverse("job-detail", args=[retry.pk])
    assert retry.status == JobStatus.QUEUED and retry.config == job.config


def test_the_adapter_download_serves_the_zip_of_a_succeeded_job(alice_client, alice):
    job = make_job(alice, ready_sample(alice))
    assert alice_client.get(reverse("job-adapter", args=[job.pk])).status_code == 404
    job.attempt_folder(1).mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(job.attempt_folder(1) / "adapter.zip", "w") as archive:
        archive.writestr("adapter/adapter_config.json", "{}")
    FineTuneJob.objects.filter(pk=job.pk).update(
        status=JobStatus.SUCCEEDED, adapter_path=str(job.attempt_folder(1) / "adapter")
    )
    response = alice_client.get(reverse("job-adapter", args=[job.pk]))
    stem = job.fine_tuned_model.replace(":", "-").replace("--", "-")
    assert response["Content-Disposition"] == f'attachment; filename="{stem}-adapter.zip"'
    names = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))).namelist()
    assert names == ["adapter/adapter_config.json"]
    page = alice_client.get(reverse("job-detail", args=[job.pk])).content.decode()
    assert 'data-testid="download-adapter"' in page


def test_bob_gets_404_for_alices_job_everywhere(bob_client, alice):
    job = make_job(alice, ready_sample(alice))
    for name in ("job-detail", "job-row", "job-config", "job-adapter", "job-merged"):
        assert bob_client.get(reverse(name, args=[job.pk])).status_code == 404, name
    for name in ("job-cancel", "job-retry", "job-export"):
        assert bob_client.post(reverse(name, args=[job.pk])).status_code == 404, name
    assert bob_client.get(reverse("job-new"), {"from": job.pk}).status_code == 404
    job.refresh_from_db()
    assert job.status == JobStatus.CREATED


def test_an_operator_sees_the_traceback_and_the_owner_only_the_message(
    alice_client, alice, olga, client
):
    job = make_job(alice, ready_sample(alice))
    FineTuneJob.objects.filter(pk=job.pk).update(
        status=JobStatus.FAILED, error_message="Out of memory.", error_traceback="Traceback: boom"
    )
    owner_page = alice_client.get(reverse("job-detail", args=[job.pk])).content.decode()
    assert "Out of memory." in owner_page and "Traceback: boom" not in owner_page
    client.force_login(olga)
    operator_page = client.get(reverse("job-detail", args=[job.pk])).content.decode()
    assert "Traceback: boom" in operator_page


# --- list and models ----------------------------------------------------------------


def test_the_jobs_list_shows_rows_and_filters_by_status(alice_client, alice):
    dataset = ready_sample(alice)
    created = make_job(alice, dataset)
    cancelled = lifecycle.cancel_job(make_job(alice, dataset))
    html = alice_client.get(reverse("jobs")).content.decode()
    assert f'id="job-{created.pk}"' in html and f'id="job-{cancelled.pk}"' in html
    html = alice_client.get(reverse("jobs"), {"status": "cancelled"}).content.decode()
    assert f'id="job-{created.pk}"' not in html and f'id="job-{cancelled.pk}"' in html
    row = alice_client.get(reverse("job-row", args=[created.pk])).content.decode()
    assert row.lstrip().startswith(f'<tr id="job-{created.pk}"')


def test_an_empty_jobs_list_points_to_the_wizard(alice_client):
    html = alice_client.get(reverse("jobs")).content.decode()
    assert "No fine-tuning jobs yet" in html
    assert f'href="{reverse("job-new")}"' in html


def test_the_models_page_lists_the_demo_models_with_their_availability(alice_client, demo_models):
    html = alice_client.get(reverse("models")).content.decode()
    tiny = html[html.index('id="model-tailor-tiny"') :]
    assert '<td data-testid="parameters">3.6M</td>' in tiny
    assert (
        '<span class="badge badge-avail-ready" data-testid="availability">On this machine</span>'
        in tiny
    )
    minilm = html[html.index('id="model-minilm-l6"') :]
    assert '<td data-testid="parameters">22.7M</td>' in minilm
    assert escape("No QLoRA: bitsandbytes' 4-bit layers fail during training") in minilm
    llama = html[html.index('id="model-llama-3.2-1b-instruct"') :]
    assert '<td data-testid="parameters">1.2B</td>' in llama
    assert "Downloads on first use" in llama


# --- delete and resume ------------------------------------------------------------------


def test_a_finished_job_offers_delete_and_deleting_it_goes_back_to_the_list(
    alice_client, alice, django_capture_on_commit_callbacks
):
    job = lifecycle.cancel_job(make_job(alice, ready_sample(alice)))
    page = alice_client.get(reverse("job-detail", args=[job.pk])).content.decode()
    assert f'action="{reverse("job-delete", args=[job.pk])}"' in page
    assert 'data-testid="delete-job"' in page
    assert 'data-testid="job-disk">On disk: ' in page
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(reverse("job-delete", args=[job.pk]), follow=True)
    assert response.redirect_chain == [(reverse("jobs"), 302)]
    assert escape(f"Deleted “{job.name}” and its files.") in response.content.decode()
    assert not FineTuneJob.objects.filter(pk=job.pk).exists()
    assert not job.folder.exists()


def test_an_htmx_delete_answers_with_a_redirect_to_the_list(alice_client, alice):
    job = lifecycle.cancel_job(make_job(alice, ready_sample(alice)))
    response = alice_client.post(
        reverse("job-delete", args=[job.pk]), headers={"HX-Request": "true"}
    )
    assert (response.status_code, response["HX-Redirect"]) == (204, reverse("jobs"))


def test_a_queued_job_offers_no_delete_and_is_not_deleted(alice_client, alice):
    job = make_job(alice, ready_sample(alice))
    FineTuneJob.objects.filter(pk=job.pk).update(status=JobStatus.QUEUED)
    page = alice_client.get(reverse("job-detail", args=[job.pk])).content.decode()
    assert 'data-testid="delete-job"' not in page
    response = alice_client.post(reverse("job-delete", args=[job.pk]), follow=True)
    assert response.redirect_chain == [(reverse("job-detail", args=[job.pk]), 302)]
    assert "The job is queued; cancel it before deleting it." in response.content.decode()
    assert FineTuneJob.objects.filter(pk=job.pk).exists()


def test_an_operator_may_delete_alices_job_and_bob_gets_404(
    bob_client, client, olga, alice, django_capture_on_commit_callbacks
):
    job = lifecycle.cancel_job(make_job(alice, ready_sample(alice)))
    for name in ("job-delete", "job-resume"):
        assert bob_client.post(reverse(name, args=[job.pk])).status_code == 404, name
    assert FineTuneJob.objects.filter(pk=job.pk).exists()
    client.force_login(olga)
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(reverse("job-delete", args=[job.pk])).status_code == 302
    assert not FineTuneJob.objects.filter(pk=job.pk).exists()


def test_a_job_failed_on_a_full_disk_offers_resume_beside_retry(
    alice_client, alice, django_capture_on_commit_callbacks
):
    job = make_job(alice, ready_sample(alice))
    FineTuneJob.objects.filter(pk=job.pk).update(
        status=JobStatus.FAILED, attempt=1, error_code="disk_full", error_message="Disk full."
    )
    page = alice_client.get(reverse("job-detail", args=[job.pk])).content.decode()
    assert 'data-testid="resume-job">Resume</button>' in page and ">Retry</button>" in page
    with django_capture_on_commit_callbacks(execute=False):
        response = alice_client.post(reverse("job-resume", args=[job.pk]), follow=True)
    assert response.redirect_chain == [(reverse("job-detail", args=[job.pk]), 302)]
    html = response.content.decode()
    assert "Resumed: queued to continue from the start (no complete checkpoint was kept)." in html
    job.refresh_from_db()
    assert (job.status, job.error_code) == (JobStatus.QUEUED, "")


def test_a_job_failed_by_its_own_configuration_offers_no_resume(alice_client, alice):
    job = make_job(alice, ready_sample(alice))
    FineTuneJob.objects.filter(pk=job.pk).update(
        status=JobStatus.FAILED, error_code="out_of_memory", error_message="Out of memory."
    )
    page = alice_client.get(reverse("job-detail", args=[job.pk])).content.decode()
    assert 'data-testid="resume-job"' not in page
    response = alice_client.post(reverse("job-resume", args=[job.pk]), follow=True)
    assert "which would happen again" in response.content.decode()
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
