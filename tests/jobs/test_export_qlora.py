"""The merged export of a QLoRA job: its base loaded un-quantised, the page
saying how much memory that takes before the analyst asks.

In process, as tests/jobs/test_job_runner.py does: `run_job` and
`run_export` are called directly, on a real database and Redis, with real
training of tailor-tiny.
"""

import zipfile

import pytest
from django.urls import reverse

from jobs import worker
from jobs.models import CatalogModel, FineTuneJob, JobStatus
from jobs.services import artifacts
from jobs.services.lifecycle import check_start_job, create_job
from tests.processes import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def qlora_job(owner, dataset) -> FineTuneJob:
    document = {
        "data": {"dataset": str(dataset.pk)},
        "model": {"base_model": "tailor-tiny", "method": "qlora"},
        "training": {"max_steps": 2, "batch_size": 8, "logging_steps": 1, "learning_rate": 0.01},
    }
    job = create_job(owner, check_start_job(owner, document), start=False)
    FineTuneJob.objects.filter(pk=job.pk).update(status=JobStatus.QUEUED)
    assert worker.run_job(str(job.pk), "here") == "succeeded"
    return FineTuneJob.objects.select_related("base_model").get(pk=job.pk)


@pytest.mark.training
def test_a_qlora_jobs_merged_export_is_a_full_model_that_answers_as_its_adapter(
    alice, alice_client, routing, tmp_path
):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from jobs.services import catalog

    job = qlora_job(alice, routing)
    page = alice_client.get(reverse("job-detail", args=[job.pk])).content.decode()
    parameters = job.base_model.parameters
    assert f"about {max(1, round(parameters * 4 / 1e6))} MB of memory." in page
    assert artifacts.export_memory_sentence(job) in page
    assert "Merge &amp; export" in page
    artifacts.request_export(job)  # sent after commit; here the runner is called directly
    if worker.run_export(str(job.pk)) == "not-queued":
        # The session's test worker took the task first: it runs the same function.
        wait_for(
            lambda: FineTuneJob.objects.get(pk=job.pk).export_status in ("ready", "failed"),
            120,
            "the worker's export",
        )
    job.refresh_from_db()
    assert job.export_status == "ready", job.export_error
    archive = artifacts.merged_archive(job)
    with zipfile.ZipFile(archive) as zipped:
        names = {name.split("/", 1)[1] for name in zipped.namelist()}
        zipped.extractall(tmp_path)
    assert {"config.json", "model.safetensors", "tokenizer_config.json"} <= names
    assert "adapter_config.json" not in names
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged-model")
    assert getattr(merged.config, "quantization_config", None) is None
    source = catalog.model_source(job.base_model)
    base = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
    adapted = PeftModel.from_pretrained(base, job.adapter_path)
    ids = torch.tensor([[1, 40, 41, 42, 43, 2]])
    with torch.no_grad():
        assert torch.allclose(merged(ids).logits, adapted(ids).logits, atol=1e-4)


def test_the_memory_sentence_counts_four_bytes_a_parameter():
    job = FineTuneJob(
        base_model=CatalogModel(id="qwen", display_name="Qwen", parameters=494_032_768)
    )
    assert artifacts.export_memory_sentence(job) == (
        "Merging loads the 494M-parameter base un-quantised: about 2.0 GB of memory."
    )


def test_a_full_fine_tune_is_not_merged_again(alice, alice_client, routing):
    document = {
        "data": {"dataset": str(routing.pk)},
        "model": {"base_model": "tailor-tiny", "method": "full"},
    }
    job = create_job(alice, check_start_job(alice, document), start=False)
    FineTuneJob.objects.filter(pk=job.pk).update(
        status=JobStatus.SUCCEEDED, adapter_path=str(job.folder / "attempt-1" / "adapter")
    )
    job.refresh_from_db()
    with pytest.raises(artifacts.JobStateError) as refused:
        artifacts.request_export(job)
    assert str(refused.value) == (
        "A full fine-tune is already a complete model: download it with “Download adapter”; "
        "there is nothing to merge."
    )
    page = alice_client.get(reverse("job-detail", args=[job.pk])).content.decode()
    assert "Merging loads the" not in page and "Merge with other adapters" not in page
