"""A sweep trained by the real worker: each run's end advances it (in the
worker process), until its budget is spent and the winner is named; the
study is in the studio's database for anyone to load."""

import optuna
import pytest

from jobs.models import JobStatus, Sweep
from jobs.services import sweep_space, sweeps
from jobs.services.drafts import check_start_job
from jobs.sweep_models import SweepStatus, TrialState
from tests.builders import ready_sample
from tests.processes import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_worker_trains_a_sweep_to_its_winner(alice, demo_models, celery_worker):
    dataset = ready_sample(alice)
    document = {
        "data": {"dataset": str(dataset.pk)},
        "model": {"base_model": "tailor-tiny", "method": "lora"},
        "training": {"max_steps": 3, "batch_size": 8, "logging_steps": 1, "save_every": 0},
    }
    draft = check_start_job(alice, document)
    plan = sweep_space.read_sweep(
        {"parameters": {"learning_rate": {"values": [1e-4, 3e-3, 1e-2]}}, "budget": 3,
         "sampler": "grid", "parallel": 2},
        task=draft.model.task,
    )  # fmt: skip
    sweep = sweeps.create_sweep(alice, draft, plan)
    wait_for(
        lambda: Sweep.objects.get(pk=sweep.pk).status != SweepStatus.RUNNING,
        300,
        "the sweep to end",
    )
    sweep.refresh_from_db()
    assert sweep.status == SweepStatus.SUCCEEDED, sweep.waiting_reason
    trials = list(sweep.trials.select_related("job"))
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3
    assert all(t.job.status == JobStatus.SUCCEEDED for t in trials)
    best = min(trials, key=lambda t: t.value)
    assert sweep.winner_id == best.job_id
    assert best.value == best.job.best_val_loss
    study = optuna.load_study(study_name=sweep.study_name, storage=sweeps.storage())
    assert study.best_trial.number == best.number
    assert study.best_trial.params == {
        "learning_rate": best.job.config["training"]["learning_rate"]
    }
