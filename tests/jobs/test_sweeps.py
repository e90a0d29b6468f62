"""Sweeps: the space a sweep reads, the runs Optuna's samplers give it, how it
advances as its runs end (driven here as a worker drives the ledger), its
quota, its pruning and its recovery by the reaper. Real database (the study
is Optuna's, in the same one) and real Redis; the worker's runs are in
test_sweeps_worker.py."""

import optuna
import pytest
from django.utils import timezone

from jobs import config as cfg
from jobs.models import FineTuneJob, JobEvent, JobStatus
from jobs.services import ledger, lifecycle, sweeps
from jobs.services import sweep_space as space
from jobs.services.drafts import check_start_job
from jobs.sweep_models import SweepStatus, TrialState
from serving.models import Evaluation
from studio.services import reaper
from tests.builders import ready_sample

# These tests play the training worker themselves (the ledger's calls).
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("no_training_worker_in_module"),
]


LORA = {"model": {"base_model": "tailor-tiny", "method": "lora"}, "training": {"max_steps": 4}}


def errors_of(spec, task="causal_lm") -> dict:
    with pytest.raises(cfg.ConfigError) as refused:
        space.read_sweep(spec, task=task)
    return refused.value.as_dict()


# --- the space ---------------------------------------------------------------------------


def test_it_reads_values_and_ranges_into_one_plan():
    plan = space.read_sweep(
        {"parameters": {"learning_rate": {"low": "1e-4", "high": 0.01},
                        "lora_rank": {"values": [16, 4, "8", 4]}},
         "budget": 6, "sampler": "random"},
        task="causal_lm",
    )  # fmt: skip
    assert plan.space == {
        "learning_rate": {"low": 1e-4, "high": 0.01, "log": True},
        "lora_rank": {"values": [4, 8, 16]},
    }
    assert (plan.budget, plan.metric, plan.pruner, plan.parallel) == (6, "val_loss", "none", 2)
    assert plan.direction == "minimize"


def test_a_grid_gets_one_run_per_combination_at_most():
    spec = {"parameters": {"lora_rank": {"values": [4, 8]}, "epochs": {"values": [1, 2]}},
            "budget": 10, "sampler": "grid"}  # fmt: skip
    plan = space.read_sweep(spec, task="causal_lm")
    assert plan.budget == 4
    assert space.combinations(plan.space) == [
        {"lora_rank": 4, "epochs": 1}, {"lora_rank": 4, "epochs": 2},
        {"lora_rank": 8, "epochs": 1}, {"lora_rank": 8, "epochs": 2},
    ]  # fmt: skip


def test_it_names_every_bad_field():
    spec = {
        "parameters": {"learning_rate": {"low": 0.01, "high": 0.001}, "warmup": {"values": [1]},
                       "lora_rank": {"values": [0]}},
        "budget": 0, "metric": "accuracy", "pruner": "median", "sampler": "grid",
    }  # fmt: skip
    assert errors_of(spec) == {
        "sweep.metric": "this base model's evaluation has no accuracy; use exact_match or val_loss.",
        "sweep.pruner": "runs are stopped early on their validation loss: choose val_loss as "
        "the metric, or no pruning.",
        "sweep.parameters.learning_rate": "grid search tries listed values: give values, not a range.",
        "sweep.parameters.warmup": "is not one a sweep can vary; choose from learning_rate, "
        "lora_rank, epochs, max_seq_length, batch_size.",
        "sweep.parameters.lora_rank": "must be at least 1 and at most 256.",
        "sweep.budget": "must be at least 1 and at most 50.",
    }  # fmt: skip


def test_it_refuses_a_backwards_range_and_too_many_parameters():
    backwards = {"parameters": {"learning_rate": {"low": 0.01, "high": 0.001}}, "budget": 2}
    assert errors_of(backwards) == {
        "sweep.parameters.learning_rate.high": "must be more than the low end."
    }
    four = {key: {"values": [1]} for key in ("lora_rank", "epochs", "batch_size", "max_seq_length")}
    assert errors_of({"parameters": four, "budget": 2}) == {
        "sweep.parameters": "choose 1 to 3 of learning_rate, lora_rank, epochs, max_seq_length, "
        "batch_size."
    }


def test_the_wizard_text_reads_as_values_or_a_range():
    assert space.parse_form_values(" 1e-4, 3e-4;1e-3 ") == {"values": ["1e-4", "3e-4", "1e-3"]}
    assert space.parse_form_values("1e-4 .. 1e-2") == {"low": "1e-4", "high": "1e-2"}
    assert space.parse_form_values("  ") is None


# --- runs the samplers give --------------------------------------------------------------


def start_sweep(owner, dataset, sweep_spec, **document):
    draft = check_start_job(owner, {"data": {"dataset": str(dataset.pk)}, **LORA, **document})
    return sweeps.create_sweep(owner, draft, space.read_sweep(sweep_spec, task=draft.model.task))


@pytest.fixture
def routing(alice, demo_models):
    return ready_sample(alice)


def runs(sweep) -> list[dict]:
    return [trial.params for trial in sweep.trials.order_by("number")]


def test_a_grid_sweep_queues_each_combination_once_with_its_values_in_the_job(alice, routing):
    sweep = start_sweep(alice, routing, {
        "parameters": {"lora_rank": {"values": [4, 8]}, "learning_rate": {"values": [1e-3, 3e-3]}},
        "budget": 4, "sampler": "grid", "parallel": 4,
    })  # fmt: skip
    params = runs(sweep)
    assert sorted(map(sorted, (p.items() for p in params))) == sorted(
        map(sorted, (c.items() for c in space.combinations(sweep.space)))
    )
    for trial in sweep.trials.select_related("job"):
        assert trial.job.status == JobStatus.QUEUED
        assert trial.job.config["lora"]["rank"] == trial.params["lora_rank"]
        assert trial.job.config["training"]["learning_rate"] == trial.params["learning_rate"]
        assert trial.job.name == f"{sweep.name} · run {trial.number + 1}"
    study = optuna.load_study(study_name=sweep.study_name, storage=sweeps.storage())
    assert len(study.trials) == 4


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_random_and_tpe_draw_different_values_within_the_range(alice, routing, sampler):
    sweep = start_sweep(alice, routing, {
        "parameters": {"learning_rate": {"low": 1e-4, "high": 1e-2},
                       "lora_rank": {"low": 2, "high": 64}},
        "budget": 5, "sampler": sampler, "parallel": 3,
    })  # fmt: skip
    params = runs(sweep)
    assert len(params) == 3  # `parallel` queued at once, no more
    assert len({p["learning_rate"] for p in params}) == 3
    for p in params:
        assert 1e-4 <= p["learning_rate"] <= 1e-2 and 2 <= p["lora_rank"] <= 64
        assert isinstance(p["lora_rank"], int)


# --- advancing ------------------------------------------------------------------------------


def finish_run(job, val_losses: dict[int, float], *, succeed: bool = True) -> None:
    """What a worker's run writes: claimed, evaluated at each step, ended."""
    run = ledger.claim(job.pk, "train@here")
    for step, loss in val_losses.items():
        ledger.record_metric(job.pk, run.attempt, {"step": step, "train_loss": None,
                                                   "val_loss": loss, "total_steps": 4})  # fmt: skip
    if FineTuneJob.objects.get(pk=job.pk).status == JobStatus.CANCELLING:
        ledger.finish_cancelled(job.pk, run.attempt, step=max(val_losses))
    elif succeed:
        ledger.finish_succeeded(job.pk, run.attempt, metrics={}, adapter_path="",
                                adapter_bytes=0, trained_tokens=0, final_step=4)  # fmt: skip
    else:
        ledger.finish_failed(job.pk, run.attempt, code="crashed", message="It broke.",
                             traceback="")  # fmt: skip


def running_job(sweep) -> FineTuneJob:
    return sweep.trials.filter(state=TrialState.RUNNING).order_by("number").first().job


def test_each_ended_run_is_told_and_the_next_queued_until_the_winner_is_named(alice, routing):
    sweep = start_sweep(alice, routing, {
        "parameters": {"lora_rank": {"values": [2, 4, 8]}}, "budget": 3, "sampler": "grid",
        "parallel": 1,
    })  # fmt: skip
    losses = iter([2.0, 1.25, 3.0])
    for _ in range(3):
        assert sweep.trials.filter(state=TrialState.RUNNING).count() == 1
        finish_run(running_job(sweep), {4: next(losses)})
    sweep.refresh_from_db()
    assert sweep.status == SweepStatus.SUCCEEDED
    winner = sweep.trials.get(value=1.25)
    assert sweep.winner_id == winner.job_id
    assert [t.state for t in sweep.trials.all()] == [TrialState.COMPLETE] * 3
    study = optuna.load_study(study_name=sweep.study_name, storage=sweeps.storage())
    assert study.best_trial.number == winner.number and study.best_value == 1.25
    # Told once: advancing again changes nothing.
    assert not sweeps.advance(sweep.pk)


def test_a_failed_run_is_told_as_failed_and_the_sweep_goes_on(alice, routing):
    sweep = start_sweep(alice, routing, {
        "parameters": {"lora_rank": {"values": [2, 4]}}, "budget": 2, "sampler": "grid",
        "parallel": 1,
    })  # fmt: skip
    finish_run(running_job(sweep), {4: 1.0}, succeed=False)
    first = sweep.trials.get(number=0)
    assert (first.state, first.note) == (TrialState.FAILED, "Its job failed.")
    finish_run(running_job(sweep), {4: 1.5})
    sweep.refresh_from_db()
    assert sweep.status == SweepStatus.SUCCEEDED
    assert sweep.winner == sweep.trials.get(number=1).job


def test_a_full_queue_leaves_the_sweep_waiting_not_failing(alice, routing, settings):
    settings.TAILOR_QUOTA_QUEUED_JOBS = 1
    sweep = start_sweep(alice, routing, {
        "parameters": {"lora_rank": {"values": [2, 4]}}, "budget": 2, "sampler": "grid",
    })  # fmt: skip
    assert sweep.status == SweepStatus.RUNNING
    assert sweep.waiting_reason == (
        "Queued jobs limit reached: you have 1 queued job, your limit. Wait for one to start, "
        "or cancel one."
    )
    assert [t.state for t in sweep.trials.all()] == [TrialState.RUNNING, TrialState.WAITING]
    finish_run(running_job(sweep), {4: 1.0})
    sweep.refresh_from_db()
    assert sweep.waiting_reason == ""
    assert [t.state for t in sweep.trials.all()] == [TrialState.COMPLETE, TrialState.RUNNING]


def test_a_run_clearly_behind_the_others_is_stopped_early_with_a_sentence(alice, routing):
    sweep = start_sweep(alice, routing, {
        "parameters": {"lora_rank": {"values": [2, 4, 8]}}, "budget": 3, "sampler": "grid",
        "pruner": "median", "parallel": 1,
    })  # fmt: skip
    assert sweep.base_config["training"]["eval_every"] == 1  # 4 steps: an evaluation each
    finish_run(running_job(sweep), {2: 1.0, 4: 0.8})
    finish_run(running_job(sweep), {2: 1.2, 4: 0.9})
    behind = running_job(sweep)
    finish_run(behind, {2: 3.5})
    trial = behind.sweep_trial
    trial.refresh_from_db()
    sentence = (
        "Stopped early by the sweep: its validation loss 3.5 at step 2 is clearly behind "
        "the best run's 1 at the same step."
    )
    assert (trial.state, trial.note) == (TrialState.PRUNED, sentence)
    assert JobEvent.objects.filter(job=behind, message=sentence, level="warning").exists()
    assert FineTuneJob.objects.get(pk=behind.pk).status == JobStatus.CANCELLED
    sweep.refresh_from_db()
    assert sweep.status == SweepStatus.SUCCEEDED
    assert sweep.winner == sweep.trials.get(number=0).job
    study = optuna.load_study(study_name=sweep.study_name, storage=sweeps.storage())
    assert study.trials[trial.number].state == optuna.trial.TrialState.PRUNED


def test_the_reaper_advances_a_sweep_whose_advance_was_missed(alice, routing):
    sweep = start_sweep(alice, routing, {
        "parameters": {"lora_rank": {"values": [2, 4]}}, "budget": 2, "sampler": "grid",
        "parallel": 1,
    })  # fmt: skip
    # Cancelled before any worker took it: no run ended, so nothing advanced the sweep.
    lifecycle.cancel_job(running_job(sweep))
    assert sweep.trials.filter(state=TrialState.RUNNING).count() == 1
    assert sweep.trials.count() == 1
    assert reaper.run_maintenance()["sweeps_advanced"] == 1
    first, second = sweep.trials.order_by("number")
    assert (first.state, first.note) == (TrialState.FAILED, "Its job cancelled.")
    assert second.state == TrialState.RUNNING and second.job.status == JobStatus.QUEUED


def test_an_advance_held_elsewhere_is_not_run_twice(alice, routing):
    sweep = start_sweep(alice, routing, {
        "parameters": {"lora_rank": {"values": [2, 4]}}, "budget": 2, "sampler": "grid",
        "parallel": 1,
    })  # fmt: skip
    assert sweeps._take(sweep.pk)
    assert not sweeps.advance(sweep.pk)


def test_a_sweep_on_exact_match_waits_for_each_runs_evaluation(alice, routing):
    sweep = start_sweep(alice, routing, {
        "parameters": {"lora_rank": {"values": [2, 4]}}, "budget": 2, "sampler": "grid",
        "metric": "exact_match", "parallel": 1,
    })  # fmt: skip
    job = running_job(sweep)
    finish_run(job, {4: 1.0})
    # Succeeded, but its figure is the evaluation's, which is on its way.
    assert sweep.trials.get(number=0).state == TrialState.RUNNING
    Evaluation.objects.create(
        job=job, trigger="automatic", sample_size=1, status="succeeded",
        finished_at=timezone.now(), results={"fine_tuned": {"exact_match": 0.75}},
    )  # fmt: skip
    sweeps.job_ended(job.pk)  # what the inference worker says when an evaluation ends
    first = sweep.trials.get(number=0)
    assert (first.state, first.value) == (TrialState.COMPLETE, 0.75)
    assert sweep.trials.get(number=1).state == TrialState.RUNNING


def test_random_over_listed_values_never_tries_one_combination_twice(alice, routing):
    sweep = start_sweep(alice, routing, {
        "parameters": {"lora_rank": {"values": [2, 4]}, "learning_rate": {"values": [1e-3, 3e-3]}},
        "budget": 9, "sampler": "random", "parallel": 4,
    })  # fmt: skip
    assert sweep.budget == 4
    assert len({tuple(sorted(p.items())) for p in runs(sweep)}) == 4


def test_a_trial_asked_but_never_written_is_adopted_not_lost(alice, routing):
    sweep = start_sweep(alice, routing, {
        "parameters": {"lora_rank": {"values": [2, 4, 8]}}, "budget": 3, "sampler": "grid",
        "parallel": 1,
    })  # fmt: skip
    # A process asked Optuna for a run and died before it wrote the run's row.
    orphan = sweeps.load_study(sweep, asked=1).ask(space.distributions(sweep.space))
    finish_run(running_job(sweep), {4: 1.0})
    adopted = sweep.trials.get(number=orphan.number)
    assert adopted.params == orphan.params and adopted.state == TrialState.RUNNING
    assert adopted.job.config["lora"]["rank"] == orphan.params["lora_rank"]
    assert sweep.trials.count() == 2


def test_a_runs_page_names_its_sweep(alice, routing, alice_client):
    sweep = start_sweep(alice, routing, {
        "parameters": {"learning_rate": {"values": [1e-3, 3e-3]}}, "budget": 2, "sampler": "grid",
    })  # fmt: skip
    trial = sweep.trials.select_related("job").get(number=1)
    html = alice_client.get(f"/jobs/{trial.job.pk}/").content.decode()
    line = html.split('data-testid="job-sweep">')[1].split("</span>")[0]
    assert line == f'Run 2 of the sweep <a href="/sweeps/{sweep.pk}/">{sweep.name}</a>'
