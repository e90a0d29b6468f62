"""Merging adapters: the engine on real tiny adapters, the checks of a merge,
its API and page, and a merge job run by a real worker that then answers.

The engine's adapters are trained here (a few steps of tailor-tiny on the
support-routing rows); the end-to-end test trains its sources through the
worker, as users do.
"""

import dataclasses
import json
import math

import pytest

from jobs import config as cfg
from jobs.config import JobConfig
from jobs.training import RunPaths, TrainingFailure, run_training
from jobs.training.merge import merge_weights, peft_combination, run_merge
from tests.samples import offline, routing_rows, write_jsonl  # noqa: F401


def adapter_config(rank: int, seed: int, learning_rate: float) -> JobConfig:
    config = JobConfig(name="merge source")
    config.model.method = "lora"
    config.lora.rank, config.lora.alpha = rank, 2 * rank
    config.training = dataclasses.replace(
        config.training, max_steps=3, batch_size=8, max_seq_length=64,
        learning_rate=learning_rate, warmup_ratio=0.0, logging_steps=1, seed=seed,
    )  # fmt: skip
    return config


@pytest.fixture(scope="module")
def adapters(demo_models, tmp_path_factory):
    """Three real adapters of tailor-tiny: two of rank 8, one of rank 4."""
    folder = tmp_path_factory.mktemp("merge-sources")
    train = write_jsonl(folder / "train.jsonl", routing_rows("train", 48))
    source = str(demo_models.tiny_path())
    made = []
    for number, (rank, seed, rate) in enumerate(((8, 1, 3e-3), (8, 2, 5e-3), (4, 3, 3e-3)), 1):
        paths = RunPaths(source, train, None, folder / f"source-{number}")
        result = run_training(
            adapter_config(rank, seed, rate), paths, task="causal-lm",
            on_event=lambda event: None, should_stop=lambda: False,
        )  # fmt: skip
        made.append(result.adapter_dir)
    return source, made


def merge_config(combination: str, weights=(), density=0.5) -> JobConfig:
    config = JobConfig(name="merged", objective="merge")
    config.merge.combination = combination
    config.merge.weights = list(weights)
    config.merge.density = density
    return config


def merged(adapters, tmp_path, combination, *, sources=(0, 1), **merge):
    source, folders = adapters
    events = []
    paths = RunPaths(source, tmp_path / "unused.jsonl", None, tmp_path / "merge",
                     start_adapters=tuple(folders[i] for i in sources))  # fmt: skip
    result = run_merge(merge_config(combination, **merge), paths, on_event=events.append)
    return result, events


def lora_weights(folder) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "adapter_model.safetensors"))


@pytest.mark.training
def test_a_linear_merge_is_the_weighted_sum_of_the_sources_matrices(adapters, tmp_path):
    import torch

    result, events = merged(adapters, tmp_path, "linear", weights=[0.7, 0.3])
    assert result.adapter_dir == tmp_path / "merge" / "adapter"
    assert result.stopped is False and result.final_step == result.total_steps == 3
    assert events[0] == {"kind": "started", "total_steps": 3, "resumed_from_step": 0}
    assert [e["message"] for e in events if e["kind"] == "log"] == [
        "Loaded the base model un-quantised",
        "Loaded adapter 1 of 2",
        "Loaded adapter 2 of 2",
        "Merged 2 adapters with linear, weights 0.7, 0.3",
        "Saved the merged adapter",
    ]
    folder = result.adapter_dir
    names = {path.name for path in folder.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "tailor_config.json",
            "tailor_metrics.json", "tokenizer_config.json"} <= names  # fmt: skip
    metrics = json.loads((folder / "tailor_metrics.json").read_text())
    assert metrics["sources"] == 2 and metrics["combination"] == "linear"
    assert json.loads((folder / "tailor_config.json").read_text())["objective"] == "merge"
    # PEFT's linear merge: each matrix is Σ sqrt(weight × scale) × the source's
    # matrix (scale = alpha / r = 2 here), and the merged adapter's scale is 1.
    first, second = (lora_weights(f) for f in adapters[1][:2])
    mixed = lora_weights(folder)
    assert json.loads((folder / "adapter_config.json").read_text())["lora_alpha"] == 8
    assert set(mixed) == set(first)
    for key, value in mixed.items():
        expected = math.sqrt(0.7 * 2) * first[key] + math.sqrt(0.3 * 2) * second[key]
        assert torch.allclose(value, expected, atol=1e-6), key


@pytest.mark.training
@pytest.mark.parametrize("combination", ["ties", "dare_linear"])
def test_ties_and_dare_merges_load_on_the_base_and_change_its_answers(
    adapters, tmp_path, combination
):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    result, _ = merged(adapters, tmp_path, combination, density=0.5)
    metrics = json.loads((result.adapter_dir / "tailor_metrics.json").read_text())
    assert metrics["peft_combination"] == combination and metrics["density"] == 0.5
    mixed = lora_weights(result.adapter_dir)
    # Density 0.5: about half of each merged matrix's values are zero (TIES
    # trims, DARE drops), where a source's are all non-zero.
    key = next(k for k in mixed if "lora_B" in k)
    assert 0.2 < float((mixed[key] == 0).float().mean()) < 0.8
    base = AutoModelForCausalLM.from_pretrained(adapters[0], dtype=torch.float32)
    model = PeftModel.from_pretrained(base, result.adapter_dir)
    ids = torch.tensor([[1, 40, 41, 42, 43, 2]])
    with torch.no_grad():
        adapted = model(ids).logits
        with model.disable_adapter():
            assert not torch.allclose(adapted, model(ids).logits, atol=1e-5)


@pytest.mark.training
def test_adapters_of_different_ranks_merge_with_ties_through_svd(adapters, tmp_path):
    result, events = merged(adapters, tmp_path, "ties", sources=(0, 2))
    assert (
        "Merged 2 adapters with ties (PEFT's ties_svd: the sources' ranks differ), weights 1, 1"
        in [e.get("message") for e in events]
    )
    assert json.loads((result.adapter_dir / "adapter_config.json").read_text())["r"] == 8


@pytest.mark.training
def test_a_linear_merge_of_different_ranks_says_what_to_change(adapters, tmp_path):
    with pytest.raises(TrainingFailure) as failed:
        merged(adapters, tmp_path, "linear", sources=(0, 2))
    assert failed.value.code == "training"
    assert failed.value.message == (
        "A linear merge needs adapters of one rank; these have ranks 8, 4. Choose TIES or "
        "DARE, which merge adapters of different ranks, or merge adapters trained with one rank."
    )
    assert not (tmp_path / "merge" / "adapter").exists()


def test_equal_weights_average_for_linear_methods_and_are_one_for_ties():
    assert merge_weights("linear", [], 4) == [0.25] * 4
    assert merge_weights("dare_linear", [], 2) == [0.5, 0.5]
    assert merge_weights("ties", [], 3) == [1.0] * 3
    assert merge_weights("dare_ties", [2, 1], 2) == [2.0, 1.0]
    assert peft_combination("dare_ties", [8, 8]) == "dare_ties"
    assert peft_combination("dare_linear", [8, 16]) == "dare_linear_svd"


def test_a_merge_config_keeps_its_section_through_the_document():
    config = cfg.read_document(merge_config("ties", weights=[1, 2], density=0.3).to_document())
    assert config.objective == "merge"
    assert (config.merge.combination, config.merge.weights, config.merge.density) == (
        "ties", [1.0, 2.0], 0.3,
    )  # fmt: skip


# --- the checks of a merge, its API and its page ---------------------------------------

MERGE_API = "/api/v1/jobs/merge/"


def adapter_jobs(owner, dataset, count=2, **fields):
    """Succeeded LoRA jobs as the ledger leaves them (nothing trained)."""
    from jobs.models import FineTuneJob
    from tests.builders import finished_job

    jobs = []
    for number in range(1, count + 1):
        job = finished_job(owner, dataset, name=f"routing {number}")
        FineTuneJob.objects.filter(pk=job.pk).update(method="lora", **fields)
        job.refresh_from_db()
        jobs.append(job)
    return jobs


@pytest.mark.django_db
def test_a_merge_is_a_queued_job_with_its_first_source_as_parent(alice, alice_api, routing):
    first, second = adapter_jobs(alice, routing)
    created = alice_api.post(
        MERGE_API,
        {"sources": [str(second.pk), str(first.pk)], "weights": [2, 1], "combination": "ties"},
        format="json",
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["status"] == "queued"
    assert body["name"] == "Merge of routing 2 + routing 1"
    from jobs.models import FineTuneJob

    job = FineTuneJob.objects.get(pk=body["id"])
    assert (job.objective, job.parent_id, job.dataset_id, job.method, job.task) == (
        "merge", second.pk, routing.pk, "lora", "causal-lm",
    )  # fmt: skip
    assert job.config["merge"] == {
        "sources": [str(second.pk), str(first.pk)], "weights": [2.0, 1.0],
        "combination": "ties", "density": 0.5,
    }  # fmt: skip
    assert job.total_steps == 3 and job.estimate["memory_bytes"] > 0


@pytest.mark.django_db
def test_bob_cannot_merge_alices_jobs_and_one_job_is_not_a_merge(
    alice, bob_api, alice_api, routing
):
    from tests.api_errors import field_errors

    first, second = adapter_jobs(alice, routing)
    foreign = bob_api.post(MERGE_API, {"sources": [str(first.pk), str(second.pk)]}, format="json")
    assert foreign.status_code == 400
    assert field_errors(foreign) == {"merge.sources": ["job 1 in the list: no such job of yours."]}
    alone = alice_api.post(MERGE_API, {"sources": [str(first.pk)]}, format="json")
    assert field_errors(alone) == {
        "merge.sources": ["choose at least two jobs whose adapters to merge."]
    }
    # Values of the wrong type are field errors too, never a server error.
    odd = alice_api.post(
        MERGE_API,
        {"sources": [str(first.pk), str(second.pk)], "combination": {}, "density": "x"},
        format="json",
    )
    assert odd.status_code == 400
    assert set(field_errors(odd)) == {"merge.combination", "merge.density"}


@pytest.mark.django_db
def test_adapters_of_different_bases_or_kinds_do_not_merge(alice, routing):
    from jobs.models import CatalogModel, FineTuneJob
    from jobs.services.merges import check_merge

    first, second = adapter_jobs(alice, routing)
    other = CatalogModel.objects.filter(task="causal-lm").exclude(id="tailor-tiny").first()
    FineTuneJob.objects.filter(pk=second.pk).update(base_model=other, method="qlora")
    with pytest.raises(cfg.ConfigError) as refused:
        check_merge(alice, sources=[str(first.pk), str(second.pk)])
    bases = ", ".join(sorted(["tailor-tiny", other.id]))
    assert [(e.field, e.message) for e in refused.value.errors] == [
        ("merge.sources", f"the jobs have different base models ({bases}); merge adapters of "
         "one base."),
        ("merge.sources", "the jobs trained different adapter kinds (LoRA, QLoRA); merge "
         "adapters of one kind."),
    ]  # fmt: skip


@pytest.mark.django_db
def test_weights_density_and_combination_are_checked_together(alice, routing):
    from jobs.services.merges import check_merge

    first, second = adapter_jobs(alice, routing)
    with pytest.raises(cfg.ConfigError) as refused:
        check_merge(
            alice, sources=[str(first.pk), str(second.pk)], weights=[1, 0],
            combination="average", density=1.5,
        )  # fmt: skip
    assert refused.value.as_dict() == {
        "merge.combination": "must be one of linear, ties, dare_linear, dare_ties.",
        "merge.density": "must be more than 0 and at most 1.",
        "merge.weights": "weight 2 must be more than 0 and at most 10.",
    }


@pytest.mark.django_db
def test_the_merge_page_preselects_a_job_and_shows_errors_by_field(
    alice, alice_client, bob_client, routing
):
    from django.urls import reverse

    first, second = adapter_jobs(alice, routing)
    page = alice_client.get(reverse("job-merge") + f"?job={second.pk}").content.decode()
    assert f'aria-describedby="id_source-{second.pk}-about" checked>' in page
    assert f'aria-describedby="id_source-{first.pk}-about" >' in page
    assert "Linear (weighted average; adapters of one rank)" in page
    assert str(first.pk) not in bob_client.get(reverse("job-merge")).content.decode()
    refused = alice_client.post(reverse("job-merge"), {"sources": [str(first.pk)],
                                                      "combination": "linear", "density": "0.5"})  # fmt: skip
    assert refused.status_code == 422
    assert (
        '<p class="field-error" id="id_sources-error" data-field="sources">choose at least two '
        "jobs whose adapters to merge.</p>"
    ) in refused.content.decode()
    made = alice_client.post(
        reverse("job-merge"),
        {"sources": [str(first.pk), str(second.pk)], f"weight-{first.pk}": "1",
         f"weight-{second.pk}": "3", "combination": "dare_ties", "density": "0.3"},
    )  # fmt: skip
    from jobs.models import FineTuneJob

    job = FineTuneJob.objects.get(objective="merge")
    assert made.status_code == 302 and made["Location"] == reverse("job-detail", args=[job.pk])
    assert job.config["merge"]["weights"] == [1.0, 3.0]
    jobs_page = alice_client.get(reverse("jobs")).content.decode()
    assert f'href="{reverse("job-merge")}"' in jobs_page
    assert alice_client.get(reverse("job-detail", args=[job.pk])).status_code == 200
    source_page = alice_client.get(reverse("job-detail", args=[first.pk])).content.decode()
    assert f'href="{reverse("job-merge")}?job={first.pk}"' in source_page


# --- a merge run by the worker, answering in the playground's path ----------------------


def source_document(dataset, seed: int) -> dict:
    return {
        "data": {"dataset": str(dataset.pk)},
        "name": f"source {seed}",
        "model": {"base_model": "tailor-tiny", "method": "lora"},
        "training": {"max_steps": 3, "batch_size": 8, "learning_rate": 0.003, "seed": seed},
    }


@pytest.mark.training
@pytest.mark.usefixtures("celery_worker", "demo_models")
@pytest.mark.django_db(transaction=True)
def test_a_merge_made_through_the_api_succeeds_and_answers(alice, alice_api, live_server_url):
    import openai

    from jobs.models import FineTuneJob
    from studio.services.tokens import create_token
    from tests.builders import ready_sample, run_to_success
    from tests.processes import wait_for

    dataset = ready_sample(alice)
    sources = [run_to_success(alice, source_document(dataset, seed)) for seed in (1, 2)]
    created = alice_api.post(
        MERGE_API, {"sources": [str(job.pk) for job in sources], "combination": "linear"},
        format="json",
    )  # fmt: skip
    assert created.status_code == 201, created.json()
    job_id = created.json()["id"]
    wait_for(lambda: FineTuneJob.objects.get(pk=job_id).is_finished, 240, "the merge")
    job = FineTuneJob.objects.get(pk=job_id)
    assert job.status == "succeeded", job.error_message
    assert job.final_metrics["sources"] == 2 and job.current_step == 3
    # Listed as OpenAI clients list models (over HTTP: /v1 is served asynchronously).
    client = openai.OpenAI(
        base_url=f"{live_server_url}/v1", api_key=create_token(alice, "tests").secret
    )
    assert job.fine_tuned_model in [model.id for model in client.models.list()]
    asked = alice_api.post(
        "/api/v1/generations/",
        {"models": [job.fine_tuned_model], "messages": [{"role": "user", "content": "Hi"}],
         "max_new_tokens": 8, "seed": 3},
        format="json",
    )  # fmt: skip
    assert asked.status_code == 201, asked.json()
    url = f"/api/v1/generations/{asked.json()['id']}/"
    wait_for(lambda: alice_api.get(url).json()["status"] not in ("queued", "running"), 240,
             "the merged model's answer")  # fmt: skip
    answer = alice_api.get(url).json()
    assert answer["status"] == "succeeded", answer
    assert answer["results"][0]["error"] is None and answer["results"][0]["text"]


# --- the page in Chromium: a phone's width, the keyboard ---------------------------------


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_on_a_phone_the_merge_page_fits_and_works_by_keyboard(
    phone, live_server_url, alice, routing
):
    from axe_playwright_python.sync_playwright import Axe
    from playwright.sync_api import expect

    from jobs.models import FineTuneJob
    from tests.processes import fits_the_screen, log_in

    first, second = adapter_jobs(alice, routing)
    log_in(phone, live_server_url, "alice")
    phone.goto(f"{live_server_url}/jobs/merge/?job={first.pk}")
    assert fits_the_screen(phone)
    serious = [v["id"] for v in Axe().run(phone).response["violations"]
               if v["impact"] in ("serious", "critical")]  # fmt: skip
    assert serious == []
    # One job ticked (the pre-selected one): Merge by keyboard says what is missing.
    phone.locator(f"#id_source-{first.pk}").focus()
    phone.keyboard.press("Tab")  # its weight
    phone.keyboard.press("Tab")  # the next job's box
    expect(phone.locator(f"#id_source-{second.pk}")).to_be_focused()
    phone.get_by_test_id("merge-adapters").focus()
    phone.keyboard.press("Enter")
    expect(phone.locator("#id_sources-error")).to_have_text(
        "choose at least two jobs whose adapters to merge."
    )
    assert fits_the_screen(phone)
    phone.locator(f"#id_source-{second.pk}").focus()
    phone.keyboard.press("Space")
    phone.locator("#id_density").fill("0.4")
    phone.get_by_label("TIES (keep the strongest, agreeing changes)").check()
    phone.get_by_test_id("merge-adapters").focus()
    phone.keyboard.press("Enter")
    phone.wait_for_url(f"{live_server_url}/jobs/*-*/")
    job = FineTuneJob.objects.get(objective="merge")
    assert job.config["merge"]["combination"] == "ties" and job.config["merge"]["density"] == 0.4
