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
from tests.api_errors import field_errors
from tests.builders import api_client, make_job, ready_sample

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.usefixtures("demo_models"),
]  # the wizard reads them


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
    # The page speaks in labels; the API keeps the path (tests/jobs/test_jobs_api.py).
    assert "<li>Learning rate: must be more than 0 and at most 0.1.</li>" in html
    assert "training.learning_rate:" not in html
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
    # The same name as the API gives it (tests/jobs/test_jobs_api.py).
    assert response["Content-Disposition"] == (
        f'attachment; filename="support-ticket-routing-tailor-tiny-quick-{job.pk.hex[:8]}.yaml"'
    )
    upload = SimpleUploadedFile("tailor-job.yaml", response.content, "application/yaml")
    with django_capture_on_commit_callbacks(execute=False):
        created = alice_client.post(reverse("job-upload"), {"config_file": upload})
    again = FineTuneJob.objects.exclude(pk=job.pk).get()
    assert created["Location"] == reverse("job-detail", args=[again.pk])
    # The same configuration; a second job of that name is numbered, and says so.
    assert again.name == f"{job.name} (2)"
    assert again.config == {**job.config, "name": f"{job.name} (2)"}
    shown = alice_client.get(created["Location"]).content.decode()
    assert (
        escape(
            f"“{job.name} (2)” is queued for a training worker. You already had a job named "
            f"“{job.name}”, so this one is “{job.name} (2)”."
        )
        in shown
    )
    assert yaml.safe_load(response.content) == job.config


def test_an_upload_that_is_not_yaml_shows_why(alice_client, alice):
    upload = SimpleUploadedFile("job.yaml", b"data: [unclosed", "application/yaml")
    response = alice_client.post(reverse("job-upload"), {"config_file": upload})
    assert response.status_code == 422
    html = response.content.decode()
    assert "<li>Configuration file: is not valid YAML (line 1).</li>" in html
    assert "config_file:" not in html
    assert FineTuneJob.objects.count() == 0


def test_clone_and_edit_prefills_the_wizard(alice_client, alice):
    job = make_job(alice, ready_sample(alice), training={"learning_rate": 0.002})
    html = alice_client.get(reverse("job-new"), {"from": job.pk}).content.decode()
    assert f'<option value="{job.dataset_id}" selected>' in html
    assert re.search(r'name="model.base_model" value="tailor-tiny"\s+checked', html)
    assert 'name="training.learning_rate" id="id_training-learning_rate" value="0.002"' in html
    assert f'value="{escape(job.name)} (copy)"' in html


def test_the_wizard_reports_to_a_tracker_and_a_clone_keeps_it(
    alice_client, alice, django_capture_on_commit_callbacks
):
    dataset = ready_sample(alice)
    fields = {"tracking.wandb_project": "routing", "tracking.wandb_tags": "nightly, lr"}
    with django_capture_on_commit_callbacks(execute=False):
        alice_client.post(reverse("job-new"), wizard_post(dataset, **fields))
    job = FineTuneJob.objects.get()
    assert job.config["tracking"]["wandb_project"] == "routing"
    assert job.config["tracking"]["wandb_tags"] == ["nightly", "lr"]
    html = alice_client.get(reverse("job-new"), {"from": job.pk}).content.decode()
    assert 'name="tracking.wandb_project" id="id_tracking-wandb_project" value="routing"' in html
    assert 'id="id_tracking-wandb_tags" value="nightly, lr"' in html
    # A name W&B refuses is the field's own sentence, and no job is made.
    bad = alice_client.post(
        reverse("job-new"), wizard_post(dataset, **{"tracking.wandb_project": "a/b"})
    )
    assert field_error(bad.content.decode(), "tracking.wandb_project")
    assert FineTuneJob.objects.count() == 1


# --- job page and actions -----------------------------------------------------------------


def test_the_job_page_shows_the_job(alice_client, alice, demo_models):
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


def finished_cards(html: str) -> list[tuple[str, str]]:
    """The Finished card's figures, (label, value), in the page's order."""
    results = html[html.index('id="job-results"') :]
    results = results[: results.index("</article>")]
    return re.findall(
        r'<div data-metric="\w+"><span class="muted small-text">([^<]*)</span>'
        r'<strong class="figure">([^<]*)</strong></div>',
        results,
    )


def test_a_succeeded_jobs_figures_read_as_labels_above_values(alice_client, alice, routing):
    job = make_job(alice, routing)
    # The training loop's `_metrics` of a real run, as the ledger stores them.
    metrics = {
        "train_loss": 1.8369140625, "mean_train_loss": 2.753436279296875, "val_loss": None,
        "best_val_loss": None, "runtime_seconds": 294.21, "steps": 75,
        "trained_tokens": 54692, "tokens_per_second": 185.9, "grad_norm": 0.51234,
    }  # fmt: skip
    FineTuneJob.objects.filter(pk=job.pk).update(
        status=JobStatus.SUCCEEDED, adapter_path=str(job.folder / "adapter"),
        final_metrics=metrics, trained_tokens=54692,
    )  # fmt: skip
    html = alice_client.get(reverse("job-detail", args=[job.pk])).content.decode()
    assert finished_cards(html) == [
        ("Train loss", "1.8369"),
        ("Mean train loss", "2.7534"),
        ("Runtime", "4 min 54 s"),
        ("Steps", "75"),
        ("Trained tokens", "54,692"),
        ("Speed", "186 tokens/s"),
        ("Grad norm", "0.5123"),  # a name the table does not know still reads
    ]
    # No validation rows: no empty "Validation loss —" cards.
    assert "Validation loss</span>" not in html[html.index('id="job-results"') :]


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
    assert response["Content-Disposition"] == (
        f'attachment; filename="support-ticket-routing-tailor-tiny-quick-{job.pk.hex[:8]}'
        '-adapter.zip"'
    )
    names = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))).namelist()
    assert names == ["adapter/adapter_config.json"]
    page = alice_client.get(reverse("job-detail", args=[job.pk])).content.decode()
    assert 'data-testid="download-adapter"' in page


@pytest.mark.parametrize(
    ("method", "name"),
    [
        ("get", "job-detail"),
        ("get", "job-row"),
        ("get", "job-config"),
        ("get", "job-adapter"),
        ("get", "job-merged"),
        ("post", "job-cancel"),
        ("post", "job-retry"),
        ("post", "job-export"),
    ],
)
def test_bob_gets_404_for_alices_job_everywhere(bob_client, alice, method, name):
    job = make_job(alice, ready_sample(alice))
    assert getattr(bob_client, method)(reverse(name, args=[job.pk])).status_code == 404
    job.refresh_from_db()
    assert job.status == JobStatus.CREATED


def test_bob_cannot_start_a_new_job_from_alices(bob_client, alice):
    job = make_job(alice, ready_sample(alice))
    assert bob_client.get(reverse("job-new"), {"from": job.pk}).status_code == 404


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


@pytest.mark.parametrize("name", ["job-delete", "job-resume"])
def test_bob_gets_404_when_he_deletes_or_resumes_alices_job(bob_client, alice, name):
    job = lifecycle.cancel_job(make_job(alice, ready_sample(alice)))
    assert bob_client.post(reverse(name, args=[job.pk])).status_code == 404
    assert FineTuneJob.objects.get(pk=job.pk).status == job.status


def test_an_operator_may_delete_alices_job(client, olga, alice, django_capture_on_commit_callbacks):
    job = lifecycle.cancel_job(make_job(alice, ready_sample(alice)))
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


# --- names and downloads the studio cannot make ---------------------------------------


def test_a_second_job_of_one_name_gets_the_next_number_and_bobs_jobs_do_not_count(
    alice_client, alice, bob, django_capture_on_commit_callbacks
):
    dataset = ready_sample(alice)
    make_job(bob, ready_sample(bob), name="Routing")
    names = [make_job(alice, dataset, name="Routing").name for _ in range(3)]
    assert names == ["Routing", "Routing (2)", "Routing (3)"]
    assert FineTuneJob.objects.get(name="Routing (3)").config["name"] == "Routing (3)"
    # The wizard says it before Start.
    post = wizard_post(dataset, name="Routing")
    html = alice_client.post(reverse("job-preview"), post).content.decode()
    assert escape("You already have a job named “Routing”: this one will be “Routing (4)”.") in html


def test_a_retry_keeps_its_originals_name(alice, django_capture_on_commit_callbacks):
    job = lifecycle.cancel_job(make_job(alice, ready_sample(alice), name="Routing"))
    with django_capture_on_commit_callbacks(execute=False):
        retry = lifecycle.retry_job(alice, job)
    assert retry.name == "Routing" and retry.retry_of == job


def test_an_offline_studio_refuses_a_model_that_needs_a_download(
    alice_client, alice, monkeypatch, tmp_path
):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    dataset = ready_sample(alice)
    sentence = (
        "Qwen2.5 0.5B Instruct needs a download of Qwen/Qwen2.5-0.5B-Instruct (about 0.9 GiB), "
        "and this studio cannot download (HF_HUB_OFFLINE is set). Choose a model on this "
        "machine, or ask an operator to put it in the Hugging Face cache."
    )
    response = alice_client.post(reverse("job-new"), wizard_post(dataset, "qwen2.5-0.5b-instruct"))
    assert response.status_code == 422
    html = response.content.decode()
    assert f"<li>Base model: {escape(sentence)}</li>" in html
    assert field_error(html, "model.base_model") == escape(sentence)
    assert FineTuneJob.objects.count() == 0
    # The API refuses it too, by the field's path.
    api = api_client(alice)
    body = {"data": {"dataset": str(dataset.pk)}, "model": {"base_model": "qwen2.5-0.5b-instruct"}}
    refused = api.post("/api/v1/jobs/", body, format="json")
    assert refused.status_code == 400
    assert field_errors(refused) == {"model.base_model": [sentence]}
    # Online, the same model downloads on first use.
    monkeypatch.delenv("HF_HUB_OFFLINE")
    html = alice_client.get(reverse("job-new"), {"dataset": dataset.pk}).content.decode()
    assert "Downloads on first use" in html and "Needs a download: offline" not in html
