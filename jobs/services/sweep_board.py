"""What a sweep's page and API show: its leaderboard and its summary.

Ranked by the sweep's metric: finished runs first (the winner among them),
then running ones by their figure so far, then those stopped early, then
those without a figure yet (waiting, failed)."""

from __future__ import annotations

from dataclasses import dataclass

from jobs.models import FineTuneJob
from jobs.services import sweep_space as space
from jobs.sweep_models import Sweep, SweepMetric, SweepTrial, TrialState

# Where each state ranks before its figure does.
STATE_ORDER = {TrialState.COMPLETE: 0, TrialState.RUNNING: 1, TrialState.PRUNED: 2}


@dataclass(frozen=True)
class BoardRow:
    rank: int | None  # 1 for the best figure so far; None without one
    trial: SweepTrial
    job: FineTuneJob | None
    value: float | None  # the metric, told or (running, validation loss) so far
    is_winner: bool

    @property
    def run(self) -> int:
        return self.trial.number + 1

    @property
    def params_text(self) -> str:
        return space.describe(self.trial.params)

    @property
    def pruned(self) -> bool:
        return self.trial.state == TrialState.PRUNED


def _figure(sweep: Sweep, trial: SweepTrial) -> float | None:
    if trial.value is not None or trial.job is None:
        return trial.value
    if trial.state == TrialState.RUNNING and sweep.metric == SweepMetric.VAL_LOSS:
        return trial.job.best_val_loss
    return None


def leaderboard(sweep: Sweep) -> list[BoardRow]:
    trials = list(sweep.trials.select_related("job").order_by("number"))
    sign = 1 if sweep.lower_is_better else -1
    figures = {trial.pk: _figure(sweep, trial) for trial in trials}

    def order(trial: SweepTrial):
        value = figures[trial.pk]
        if value is None:
            return (3, 0.0, trial.number)
        return (STATE_ORDER.get(trial.state, 3), sign * value, trial.number)

    rows, rank = [], 0
    for trial in sorted(trials, key=order):
        value = figures[trial.pk]
        ranked = value is not None and trial.state != TrialState.FAILED
        rank += ranked
        rows.append(
            BoardRow(
                rank=rank if ranked else None,
                trial=trial,
                job=trial.job,
                value=value,
                is_winner=trial.job_id is not None and trial.job_id == sweep.winner_id,
            )
        )
    return rows


def progress(sweep: Sweep) -> dict:
    """How far the sweep is: runs given out, ended, and the budget."""
    states = list(sweep.trials.values_list("state", flat=True))
    ended = sum(state not in (TrialState.WAITING, TrialState.RUNNING) for state in states)
    return {
        "budget": sweep.budget,
        "asked": len(states),
        "ended": ended,
        "running": states.count(TrialState.RUNNING),
        "pruned": states.count(TrialState.PRUNED),
        "percent": int(100 * ended / sweep.budget) if sweep.budget else 0,
    }
