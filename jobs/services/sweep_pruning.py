"""Stopping a sweep's runs that fall behind: each evaluation of a run is
reported to its Optuna trial, and when the sweep's pruner (median or
successive halving) says the run is clearly behind the others at the same
step, the run is cancelled with a sentence in its log. Called by the ledger
in the training worker (jobs/services/ledger.py, `record_metric`)."""

from __future__ import annotations

import contextlib
import logging

from jobs.models import EventKind, FineTuneJob
from jobs.services import lifecycle
from jobs.services.sweeps import load_study, tell
from jobs.sweep_models import SweepPruner, SweepTrial, TrialState

logger = logging.getLogger(__name__)


def after_validation(job_id, step: int, val_loss: float) -> None:
    """The ledger's word that a run evaluated: report it to its trial and, when
    the pruner says the run is clearly behind, stop it with a sentence in its
    log. Never raises: training goes on whatever happens here."""
    try:
        _report(job_id, step, val_loss)
    except Exception:
        logger.exception("Could not report step %s of job %s to its sweep", step, job_id)


def _report(job_id, step: int, val_loss: float) -> None:
    import optuna
    from optuna.trial import TrialState as OptunaState

    trial = (
        SweepTrial.objects.select_related("sweep")
        .filter(job_id=job_id, state=TrialState.RUNNING)
        .first()
    )
    if trial is None or trial.sweep.pruner == SweepPruner.NONE:
        return
    study = load_study(trial.sweep)
    running = optuna.trial.Trial(study, trial.optuna_trial_id)
    running.report(val_loss, step)
    if not running.should_prune():
        return
    others = [
        frozen.intermediate_values[step]
        for frozen in study.get_trials(deepcopy=False)
        if frozen.number != trial.number and step in frozen.intermediate_values
    ]
    behind = f"the best run's {min(others):.4g}" if others else "the other runs'"
    note = (
        f"Stopped early by the sweep: its validation loss {val_loss:.4g} at step {step:,} is "
        f"clearly behind {behind} at the same step."
    )
    if not SweepTrial.objects.filter(pk=trial.pk, state=TrialState.RUNNING).update(
        state=TrialState.PRUNED, value=val_loss, note=note
    ):
        return
    tell(study, trial.number, state=OptunaState.PRUNED)
    job = FineTuneJob.objects.get(pk=job_id)
    lifecycle.record_event(job, EventKind.LOG, note, level="warning")
    with contextlib.suppress(lifecycle.JobStateError):  # it finished meanwhile
        lifecycle.cancel_job(job)
