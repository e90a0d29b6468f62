"""A job that starts from an earlier job's adapter: what `model.start_from`
accepts, the lineage the job page walks up, and the worker handing the
parent's adapter to the run (jobs/services/lineage.py, worker_files)."""

import json

import pytest
from django.utils import timezone

from jobs import config as cfg
from jobs.models import FineTuneJob, JobStatus, MetricKind, MetricPoint
from jobs.services import lineage, worker_files
from jobs.services.lifecycle import check_start_job, create_job
from jobs.training.contract import TrainingFailure
from tests.builders import checked_upload, ready_sample

pytestmark = pytest.mark.django_db


def _document(dataset, **model):
    return {
        "data": {"dataset": str(dataset.pk)},
        "model": {"base_model": "tailor-tiny", "method": "lora", **model},
        "training": {"max_steps": 2},
    }


def make_job(owner, dataset, *, name="routing", **model):
    """A created job of tailor-tiny (LoRA unless `model` says otherwise)."""
    document = {**_document(dataset, **model), "name": name}
    return create_job(owner, check_start_job(owner, document), start=False)


def finished_job(owner, dataset, *, name="routing", **model):
    """A job as the ledger leaves it when training succeeded."""
    job = make_job(owner, dataset, name=name, **model)
    FineTuneJob.objects.filter(pk=job.pk).update(
        status=JobStatus.SUCCEEDED,
        adapter_path=str(job.folder / "adapter"),
        finished_at=timezone.now(),
    )
    job.refresh_from_db()
    return job


def _field_errors(call) -> dict[str, str]:
    with pytest.raises(cfg.ConfigError) as caught:
        call()
    return caught.value.as_dict()


def test_a_job_starts_from_a_succeeded_job_of_its_own_and_names_it_as_parent(alice, routing):
    parent = finished_job(alice, routing)
    child = make_job(alice, routing, start_from=str(parent.pk))
    assert child.parent_id == parent.pk
    assert child.objective == "supervised"
    assert child.config["model"]["start_from"] == str(parent.pk)
    assert child.config["objective"] == "supervised"
    assert lineage.lineage(child, alice) == [parent]


def test_start_from_refuses_what_cannot_train_on(alice, bob, routing, demo_models):
    theirs = finished_job(bob, ready_sample(bob))
    errors = _field_errors(
        lambda: check_start_job(alice, _document(routing, start_from=str(theirs.pk)))
    )
    assert errors == {"model.start_from": "no such job of yours."}
    assert _field_errors(lambda: check_start_job(alice, _document(routing, start_from="x"))) == {
        "model.start_from": "no such job of yours."
    }

    running = make_job(alice, routing, name="still running")
    errors = _field_errors(
        lambda: check_start_job(alice, _document(routing, start_from=str(running.pk)))
    )
    assert errors["model.start_from"] == (
        "“still running” has not succeeded: only a finished job's adapter trains on."
    )

    qlora = finished_job(alice, routing, name="four-bit", method="qlora")
    errors = _field_errors(
        lambda: check_start_job(alice, _document(routing, start_from=str(qlora.pk)))
    )
    assert errors["model.start_from"] == (
        "“four-bit” trained a QLoRA adapter; set the method to qlora to train it on."
    )
    errors = _field_errors(
        lambda: check_start_job(alice, _document(routing, start_from=str(qlora.pk), method="full"))
    )
    assert errors["model.start_from"] == (
        "a full fine-tune has no adapter to start from; choose QLoRA or LoRA."
    )


def test_the_objective_follows_the_dataset_and_a_document_cannot_ask_for_another(alice, routing):
    document = {**_document(routing), "objective": "dpo"}
    errors = _field_errors(lambda: check_start_job(alice, document))
    assert errors == {
        "objective": f"“{routing.name}” is generation data, which trains with supervised "
        "fine-tuning (supervised), not dpo."
    }
    assert check_start_job(alice, {**_document(routing), "objective": "supervised"})


def test_the_job_page_walks_the_lineage_up_to_the_base(alice, alice_client, routing):
    grandparent = finished_job(alice, routing, name="first turn")
    parent = finished_job(alice, routing, name="second turn", start_from=str(grandparent.pk))
    child = make_job(alice, routing, name="third turn", start_from=str(parent.pk))
    page = alice_client.get(f"/jobs/{child.pk}/").content.decode()
    lineage_html = page.split('data-testid="job-lineage"')[1].split("</section>")[0]
    assert lineage_html.index("second turn") < lineage_html.index("first turn")
    assert lineage_html.count('data-testid="lineage-step"') == 2
    assert f"(revision {routing.revision})" in lineage_html
    base = FineTuneJob.objects.get(pk=child.pk).base_model.display_name
    assert f"{base} (the base)" in lineage_html
    # A parent that is gone ends the line where it was.
    FineTuneJob.objects.filter(pk=grandparent.pk).delete()
    assert lineage.lineage(child, alice) == [FineTuneJob.objects.get(pk=parent.pk)]


def test_the_wizard_offers_the_succeeded_jobs_of_the_base_and_method(alice, alice_client, routing):
    parent = finished_job(alice, routing, name="sft turn")
    finished_job(alice, routing, name="qlora turn", method="qlora")
    form = {
        "data.dataset": str(routing.pk),
        "model.base_model": "tailor-tiny",
        "model.method": "lora",
        "preset": "quick",
    }
    page = alice_client.post("/jobs/new/preview/", form).content.decode()
    select = page.split('name="model.start_from"')[1].split("</select>")[0]
    assert "sft turn" in select
    assert "qlora turn" not in select
    created = alice_client.post("/jobs/new/", {**form, "model.start_from": str(parent.pk)})
    assert created.status_code == 302, created.content.decode()[:2000]
    child = FineTuneJob.objects.exclude(pk=parent.pk).get(name__startswith=routing.name)
    assert child.parent_id == parent.pk


def test_the_worker_hands_the_parent_adapter_to_the_run(alice, routing):
    parent = finished_job(alice, routing)
    (parent.folder / "adapter").mkdir(parents=True, exist_ok=True)
    child = make_job(alice, routing, start_from=str(parent.pk))
    config = cfg.read_document(child.config)
    assert worker_files.start_adapters(child, config) == (parent.folder / "adapter",)
    FineTuneJob.objects.filter(pk=parent.pk).delete()
    with pytest.raises(TrainingFailure) as failure:
        worker_files.start_adapters(child, config)
    assert failure.value.code == "model_load"
    assert "was deleted, or has no adapter any more" in failure.value.message


def test_a_preference_job_page_shows_its_reward_figures(alice, alice_client, routing):
    job = finished_job(alice, routing)
    FineTuneJob.objects.filter(pk=job.pk).update(
        objective="dpo", attempt=1, status=JobStatus.SUCCEEDED, finished_at=timezone.now()
    )
    MetricPoint.objects.bulk_create(
        [
            MetricPoint(
                job=job,
                attempt=1,
                step=1,
                kind=MetricKind.TRAIN,
                train_loss=0.69,
                reward_margin=0.01,
                preference_accuracy=0.5,
            ),
            MetricPoint(
                job=job,
                attempt=1,
                step=4,
                kind=MetricKind.TRAIN,
                train_loss=0.4,
                reward_margin=0.9,
                preference_accuracy=0.75,
            ),
            MetricPoint(
                job=job,
                attempt=1,
                step=4,
                kind=MetricKind.EVAL,
                val_loss=0.45,
                reward_margin=0.8,
                preference_accuracy=0.85,
            ),
        ]
    )
    page = alice_client.get(f"/jobs/{job.pk}/").content.decode()
    assert 'data-testid="job-objective">Preference tuning (DPO)<' in page
    assert 'data-testid="job-reward-margin">0.800<' in page
    assert 'data-testid="job-preference-accuracy">85%<' in page
    assert "js/preference_chart.js" in page
    supervised = alice_client.get(f"/jobs/{finished_job(alice, routing, name='b').pk}/")
    assert "reward-chart" not in supervised.content.decode()


def _pairs(count: int) -> bytes:
    rows = [
        {
            "prompt": f"Where should ticket {i} about a double charge go?",
            "chosen": "billing",
            "rejected": "shipping",
        }
        for i in range(count)
    ]
    return ("\n".join(json.dumps(row) for row in rows) + "\n").encode()


def test_preference_data_trains_with_dpo_from_a_supervised_parent(alice, routing):
    pairs = checked_upload(alice, _pairs(40), name="pairs.jsonl")
    assert (pairs.status, pairs.format, pairs.task) == ("ready", "preference", "preference")
    parent = finished_job(alice, routing, name="sft")
    document = {**_document(pairs, start_from=str(parent.pk)), "preference": {"beta": 0.2}}
    job = create_job(alice, check_start_job(alice, document), start=False)
    assert (job.objective, job.task, job.parent_id) == ("dpo", "causal-lm", parent.pk)
    assert job.config["objective"] == "dpo"
    assert job.config["preference"] == {"beta": 0.2}
    errors = _field_errors(
        lambda: check_start_job(alice, {**_document(pairs), "preference": {"beta": 0}})
    )
    assert errors == {"preference.beta": "must be more than 0 and at most 10."}


def test_a_job_that_trains_on_takes_its_parent_adapter_kind_unless_told(alice, routing):
    parent = finished_job(alice, routing, name="four-bit", method="qlora")
    document = {
        "data": {"dataset": str(routing.pk)},
        "model": {"base_model": "tailor-tiny", "start_from": str(parent.pk)},
    }
    assert check_start_job(alice, document).config.model.method == "qlora"
