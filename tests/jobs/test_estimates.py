"""Estimates before Start (jobs/services/estimates.py): the time learnt from
this studio's succeeded runs of the same model and method, a guess from FLOPs
before the first, each saying how sure it is; one memory figure for the
wizard's cards, its estimate and the job page."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from jobs.models import FineTuneJob, JobStatus
from jobs.services import catalog, estimates
from jobs.services.drafts import check_start_job
from jobs.services.lifecycle import create_job
from tests.builders import make_job, ready_sample

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("demo_models")]


def routing_draft(owner, dataset, method: str = "qlora", model: str = "tailor-tiny"):
    document = {
        "data": {"dataset": str(dataset.pk)},
        "model": {"base_model": model, "method": method},
    }
    return check_start_job(owner, document)


def succeeded(owner, dataset, *, rate: float | None, setup: float = 60.0, method="qlora",
              status=JobStatus.SUCCEEDED, attempt=1, trained_factor: float = 1.0,
              age_minutes: int = 0) -> FineTuneJob:  # fmt: skip
    """A run as the ledger leaves it: the plan's tokens (× `trained_factor`,
    the padding the worker counts) trained at `rate`, plus `setup` seconds."""
    job = create_job(owner, routing_draft(owner, dataset, method), start=False)
    trained = int(job.plan["total_tokens"] * trained_factor)
    finished = timezone.now() - timedelta(minutes=age_minutes)
    wall = (trained / rate if rate else 0) + setup
    FineTuneJob.objects.filter(pk=job.pk).update(
        status=status, attempt=attempt, trained_tokens=trained,
        started_at=finished - timedelta(seconds=wall), finished_at=finished,
        final_metrics={"tokens_per_second": rate} if rate else {},
    )  # fmt: skip
    return job


def test_before_any_run_the_time_is_a_guess_from_flops_and_says_so(alice):
    draft = routing_draft(alice, ready_sample(alice))
    tokens = draft.plan.total_tokens
    flops = 4.0 * 3_572_992 * tokens * 1.05  # LoRA's 4 × parameters per token, QLoRA's 5 %
    assert draft.estimate["seconds"] == round(flops / settings.TAILOR_TRAIN_FLOPS + 30)
    assert draft.estimate["runs"] == 0
    assert estimates.basis(draft.estimate, "qlora") == (
        "rough guess: no run of this model with QLoRA here yet"
    )


def test_the_time_is_the_median_of_this_studios_succeeded_runs_of_the_model_and_method(alice):
    dataset = ready_sample(alice)
    for rate, setup in ((100.0, 40.0), (200.0, 60.0), (1000.0, 90.0)):
        succeeded(alice, dataset, rate=rate, setup=setup)
    # Not counted: a failed run, a LoRA run, a run that recorded no rate.
    succeeded(alice, dataset, rate=5.0, status=JobStatus.FAILED)
    succeeded(alice, dataset, rate=5.0, method="lora")
    succeeded(alice, dataset, rate=None)

    draft = routing_draft(alice, dataset)
    tokens = draft.plan.total_tokens
    assert draft.estimate["runs"] == 3
    assert draft.estimate["seconds"] == round(tokens / 200.0 + 60.0)
    assert estimates.basis(draft.estimate, "qlora") == "from 3 runs of this model with QLoRA here"
    # LoRA has one run of its own.
    lora = routing_draft(alice, dataset, method="lora")
    assert estimates.basis(lora.estimate, "lora") == "from 1 run of this model with LoRA here"


def test_only_the_newest_runs_count(alice):
    dataset = ready_sample(alice)
    for age in range(estimates.RECENT_RUNS):
        succeeded(alice, dataset, rate=400.0, setup=0, age_minutes=age)
    succeeded(alice, dataset, rate=1.0, setup=0, age_minutes=999)  # long ago, on a slow box
    draft = routing_draft(alice, dataset)
    assert draft.estimate["runs"] == estimates.RECENT_RUNS
    assert draft.estimate["seconds"] == round(draft.plan.total_tokens / 400.0)


def test_the_rate_is_in_the_plans_tokens_and_a_resumed_run_gives_no_setup_time(alice):
    dataset = ready_sample(alice)
    # The worker fed twice the planned tokens (padding) at 400 tokens/s: 200
    # planned tokens a second. Resumed (attempt 2), its wall time waited too.
    succeeded(alice, dataset, rate=400.0, setup=5000, attempt=2, trained_factor=2.0)
    draft = routing_draft(alice, dataset)
    assert draft.estimate["seconds"] == round(draft.plan.total_tokens / 200.0 + 30)


def test_the_job_page_words_the_stored_estimate_as_the_wizard_did(alice_client, alice):
    dataset = ready_sample(alice)
    succeeded(alice, dataset, rate=200.0, setup=60.0)
    response = alice_client.post(
        reverse("job-preview"),
        {"data.dataset": str(dataset.pk), "model.base_model": "tailor-tiny", "preset": "quick"},
    )
    html = response.content.decode()
    job = make_job(alice, dataset)
    figures = estimates.job_page_figures(job)
    assert figures["estimate_basis"] == "from 1 run of this model with QLoRA here"
    assert f'data-testid="estimate-time">about {figures["estimate_duration"]}<' in html
    assert f'data-testid="estimate-memory">{figures["estimate_memory"]}<' in html
    assert f'data-testid="estimate-basis">{figures["estimate_basis"]}<' in html
    # The job page's own figures (jobs/views.py job_detail) agree.
    page = alice_client.get(reverse("job-detail", args=[job.pk])).content.decode()
    assert f"peak memory about {figures['estimate_memory']}" in page
    # The checked method's card reads the same memory.
    assert (
        f'data-testid="method-qlora-memory">about {figures["estimate_memory"]} of memory<' in html
    )


def test_memory_is_one_function_of_the_model_method_and_batch(alice):
    draft = routing_draft(alice, ready_sample(alice))
    model = catalog.get_model("tailor-tiny")
    training = draft.config.training
    assert draft.estimate["memory_bytes"] == estimates.memory_bytes(model, "qlora", training)
    assert draft.estimate["memory_bytes"] == catalog.memory_estimate(
        model.parameters, "qlora", batch_size=training.batch_size,
        max_seq_length=training.max_seq_length,
    )  # fmt: skip
