"""Sweeps: create one, advance it as its jobs end, cancel it. Stopping runs
that fall behind is sweep_pruning.py's; the leaderboard is sweep_board.py's.

The search itself is Optuna's, through ask and tell: its study lives in the
studio's own database (SQLite file or PostgreSQL, through Optuna's RDBStorage
and SQLAlchemy), so a sweep survives any process. Django's rows say what the
studio needs to show and to recover: each `SweepTrial` names its Optuna trial
and its job.

`advance` is the one place a sweep moves: it tells Optuna how ended runs did,
queues the next runs (at most `parallel` at once, each through `create_job`
and so within the owner's quota), and names the winner when the budget is
spent. It runs when a sweep's job ends (the ledger) and on every reaper pass
(`advance_running_sweeps`), under a short lease on the sweep row (a
conditional UPDATE, on the database's clock) rather than a row lock: on SQLite
a Django transaction held open across Optuna's own connection would lock
Optuna out of the same file. Every step is idempotent: a trial told twice is
skipped, a trial row changes state only from the state it was read in.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
import uuid

from django.db import connections, transaction
from django.db.models import Q
from django.db.models.functions import Now
from django.utils import timezone

from audit.models import Action
from audit.services import record
from jobs import config as cfg
from jobs.models import FineTuneJob, JobStatus
from jobs.services import drafts, lifecycle
from jobs.services import sweep_space as space
from jobs.sweep_models import (
    Sweep,
    SweepMetric,
    SweepPruner,
    SweepSampler,
    SweepStatus,
    SweepTrial,
    TrialState,
)
from quotas import services as quotas
from studio.services import leases
from studio.services.access import one_or_404

logger = logging.getLogger(__name__)

# Seconds one advance may hold a sweep; an advance takes well under one.
ADVANCE_LEASE_SECONDS = 120
# Runs told before a pruner may stop one: with budgets of a few runs, two
# finished ones are the least a median or a rung can be drawn from.
PRUNE_AFTER_RUNS = 2
# An evaluation is asked for just after a job succeeds (serving/); a job this
# fresh with none yet is waited for rather than failed.
EVALUATION_GRACE_SECONDS = 120
ACTIVE_TRIALS = (TrialState.WAITING, TrialState.RUNNING)
# How long a run's end waits for another advance of its sweep: about 3 s.
BUSY_RETRIES, BUSY_PAUSE_SECONDS = 10, 0.3


def access_sweep(user, sweep_id) -> Sweep:
    """The user's sweep (staff: anyone's); the same 404 for missing and foreign ones."""
    return one_or_404(Sweep.objects.for_user(user), sweep_id, "No such sweep.")


# --- Optuna, in the studio's database --------------------------------------------------


def storage_url() -> str:
    """SQLAlchemy's URL of the database Django uses now (the test database in tests)."""
    from sqlalchemy.engine import URL

    settings = connections["default"].settings_dict
    if settings["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{settings['NAME']}"
    return URL.create(
        "postgresql+psycopg",
        username=settings.get("USER") or None,
        password=settings.get("PASSWORD") or None,
        host=settings.get("HOST") or None,
        port=int(settings["PORT"]) if settings.get("PORT") else None,
        database=settings["NAME"],
    ).render_as_string(hide_password=False)


@functools.cache
def _storage(url: str):
    import optuna
    from sqlalchemy.pool import NullPool

    # No pool: a connection per call survives Celery's forks, and holds no
    # SQLite file or PostgreSQL slot between advances.
    kwargs = {"poolclass": NullPool}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": 30}
    return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)


def storage():
    return _storage(storage_url())


def _sampler(sweep: Sweep, asked: int):
    import optuna

    # A new seed per ask: the sampler is made afresh for every advance, and
    # one seed would draw the same first values each time.
    seed = sweep.seed + asked
    # Random over listed values alone is a grid in a random order: Optuna's
    # grid sampler shuffles it, and never tries one combination twice.
    finite = sweep.sampler == SweepSampler.RANDOM and space.is_finite(sweep.space)
    if sweep.sampler == SweepSampler.GRID or finite:
        return optuna.samplers.GridSampler(space.grid(sweep.space), seed=seed)
    if sweep.sampler == SweepSampler.RANDOM:
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(2, sweep.budget // 3))


def _pruner(sweep: Sweep):
    import optuna

    if sweep.pruner == SweepPruner.MEDIAN:
        return optuna.pruners.MedianPruner(n_startup_trials=PRUNE_AFTER_RUNS, n_warmup_steps=0)
    if sweep.pruner == SweepPruner.SUCCESSIVE_HALVING:
        return optuna.pruners.SuccessiveHalvingPruner()
    return optuna.pruners.NopPruner()


def load_study(sweep: Sweep, *, asked: int = 0):
    import optuna

    return optuna.load_study(
        study_name=sweep.study_name,
        storage=storage(),
        sampler=_sampler(sweep, asked),
        pruner=_pruner(sweep),
    )


# --- create -------------------------------------------------------------------------------


def create_sweep(owner, draft: drafts.JobDraft, plan: space.SweepPlan) -> Sweep:
    """Store a sweep over `draft`'s configuration, create its Optuna study and
    queue its first runs. QuotaExceeded when even one run of it could never
    be created (its steps or storage); a full queue only makes it wait."""
    import optuna

    quotas.check_new_job(owner, total_steps=draft.plan.total_steps, queue=False)
    document = draft.document
    if plan.pruner != SweepPruner.NONE and not document["training"]["eval_every"]:
        # A pruner judges runs on their validation loss as they train: about
        # four evaluations per run give it something to compare.
        document["training"]["eval_every"] = max(1, draft.plan.total_steps // 4)
    sweep_id = uuid.uuid4()
    study_name = f"tailor-sweep-{sweep_id.hex}"
    optuna.create_study(storage=storage(), study_name=study_name, direction=plan.direction)
    with transaction.atomic():
        sweep = Sweep.objects.create(
            id=sweep_id, owner=owner, name=document["name"], base_config=document,
            space=plan.space, budget=plan.budget, parallel=plan.parallel, metric=plan.metric,
            sampler=plan.sampler, pruner=plan.pruner, seed=sweep_id.int % 2**31,
            study_name=study_name,
        )  # fmt: skip
        record(Action.CREATE, sweep, detail={"budget": plan.budget, "sampler": plan.sampler})
    advance(sweep.pk)
    sweep.refresh_from_db()
    return sweep


def cancel_sweep(sweep: Sweep) -> Sweep:
    """Stop asking for runs and cancel the sweep's active jobs; what finished stays."""
    with transaction.atomic():
        stopped = Sweep.objects.filter(pk=sweep.pk, status=SweepStatus.RUNNING).update(
            status=SweepStatus.CANCELLED, finished_at=timezone.now(), waiting_reason=""
        )
        if stopped:
            record(Action.CANCEL, sweep)
    if stopped:
        for job in FineTuneJob.objects.filter(sweep_trial__sweep=sweep, status__in=ACTIVE_JOBS):
            with contextlib.suppress(lifecycle.JobStateError):  # it ended meanwhile
                lifecycle.cancel_job(job)
        SweepTrial.objects.filter(sweep=sweep, state__in=ACTIVE_TRIALS).update(
            state=TrialState.FAILED, note="The sweep was cancelled."
        )
    sweep.refresh_from_db()
    return sweep


ACTIVE_JOBS = (JobStatus.CREATED, JobStatus.QUEUED, JobStatus.RUNNING)


# --- advance ------------------------------------------------------------------------------


def _take(sweep_id) -> bool:
    free = Q(advance_lease_expires_at__isnull=True) | Q(advance_lease_expires_at__lt=Now())
    taken = Sweep.objects.filter(free, pk=sweep_id, status=SweepStatus.RUNNING)
    return bool(taken.update(advance_lease_expires_at=leases.lease_end(ADVANCE_LEASE_SECONDS)))


def advance(sweep_id) -> bool:
    """Tell Optuna how ended runs did, queue the next ones, finish the sweep
    when its budget is spent. False when another advance holds the sweep (it
    or the reaper's next pass sees what this one would have) or it is over."""
    if not _take(sweep_id):
        return False
    try:
        sweep = Sweep.objects.get(pk=sweep_id)
        trials = list(sweep.trials.select_related("job"))
        study = load_study(sweep, asked=len(trials))
        _adopt_orphans(sweep, study, {t.number for t in trials})
        for trial in sweep.trials.filter(state=TrialState.RUNNING).select_related("job"):
            _tell_if_ended(sweep, study, trial)
        _fill(sweep, study)
        _finish_if_spent(sweep)
    finally:
        Sweep.objects.filter(pk=sweep_id).update(advance_lease_expires_at=None)
    return True


def advance_running_sweeps() -> int:
    """The reaper's pass: every running sweep advanced (one whose advance was
    missed, say by a worker that died between its job's end and the advance)."""
    count = 0
    for sweep_id in Sweep.objects.filter(status=SweepStatus.RUNNING).values_list("pk", flat=True):
        try:
            count += advance(sweep_id)
        except Exception:  # one broken sweep must not stop the others' advance
            logger.exception("Could not advance sweep %s", sweep_id)
    return count


def job_ended(job_id) -> None:
    """The word that a job reached its end (the ledger), or that its evaluation
    did (the inference worker): advance its sweep, if any. Never raises: the
    end is recorded whatever happens here."""
    if job_id is None:
        return
    sweep_id = SweepTrial.objects.filter(job_id=job_id).values_list("sweep_id", flat=True).first()
    if sweep_id is None:
        return
    try:
        # Another advance may hold the sweep (another run's end): it may have
        # read this run before it ended, so wait for it rather than leave this
        # end to the reaper.
        for _ in range(BUSY_RETRIES):
            if (
                advance(sweep_id)
                or not Sweep.objects.filter(pk=sweep_id, status=SweepStatus.RUNNING).exists()
            ):
                return
            time.sleep(BUSY_PAUSE_SECONDS)
    except Exception:  # the reaper's next pass advances it
        logger.exception("Could not advance sweep %s after job %s ended", sweep_id, job_id)


def _adopt_orphans(sweep: Sweep, study, known: set[int]) -> None:
    """Trials Optuna gave out whose row was never written (a crash between
    the two): kept as waiting runs rather than lost."""
    from optuna.trial import TrialState as OptunaState

    for frozen in study.get_trials(deepcopy=False, states=(OptunaState.RUNNING,)):
        if frozen.number not in known:
            SweepTrial.objects.get_or_create(
                sweep=sweep, number=frozen.number,
                defaults={"optuna_trial_id": frozen._trial_id, "params": frozen.params},
            )  # fmt: skip


def outcome(sweep: Sweep, job: FineTuneJob | None) -> tuple[str, float | None, str] | None:
    """(state, value, note) of a run whose job has ended; None while it has not
    (or while the evaluation its metric comes from is on its way)."""
    if job is None:
        return TrialState.FAILED, None, "Its job was deleted."
    if job.is_active:
        return None
    if job.status != JobStatus.SUCCEEDED:
        return TrialState.FAILED, None, f"Its job {job.get_status_display().lower()}."
    if sweep.metric == SweepMetric.VAL_LOSS:
        value = job.best_val_loss if job.best_val_loss is not None else job.val_loss
        if value is None:
            return TrialState.FAILED, None, "It recorded no validation loss."
        return TrialState.COMPLETE, value, ""
    return _evaluated(sweep, job)


def _evaluated(sweep: Sweep, job: FineTuneJob) -> tuple[str, float | None, str] | None:
    """The outcome of a succeeded run by its evaluation's figure (accuracy, exact match)."""
    evaluation = job.evaluations.order_by("-created_at").first()
    if evaluation is None:
        fresh = (timezone.now() - job.finished_at).total_seconds() < EVALUATION_GRACE_SECONDS
        return None if fresh else (TrialState.FAILED, None, "It was not evaluated.")
    if evaluation.is_active:
        return None
    value = ((evaluation.results or {}).get("fine_tuned") or {}).get(sweep.metric)
    if value is None:
        return TrialState.FAILED, None, f"Its evaluation gave no {sweep.get_metric_display()}."
    return TrialState.COMPLETE, float(value), ""


def tell(study, number: int, value: float | None = None, *, state=None) -> None:
    """Optuna's tell, once per trial (a second is skipped)."""
    import optuna

    try:
        study.tell(number, value, state=state, skip_if_finished=True)
    except RuntimeError:
        # The grid sampler stops the study once its grid is given out, with
        # Study.stop, which only optimize() allows; the result is stored before
        # (Optuna's `finally`), and here the budget ends the sweep.
        if not isinstance(study.sampler, optuna.samplers.GridSampler):
            raise


def _tell_if_ended(sweep: Sweep, study, trial: SweepTrial) -> None:
    from optuna.trial import TrialState as OptunaState

    ended = outcome(sweep, trial.job)
    if ended is None:
        return
    state, value, note = ended
    if state == TrialState.COMPLETE:
        tell(study, trial.number, value)
    else:
        tell(study, trial.number, state=OptunaState.FAIL)
    SweepTrial.objects.filter(pk=trial.pk, state=TrialState.RUNNING).update(
        state=state, value=value, note=note
    )


def _fill(sweep: Sweep, study) -> None:
    """Queue runs until `parallel` are active or the budget is given out."""
    trials = sweep.trials
    while trials.filter(state=TrialState.RUNNING).count() < sweep.parallel:
        trial = trials.filter(state=TrialState.WAITING).first()
        if trial is None:
            if trials.count() >= sweep.budget:
                break
            asked = study.ask(fixed_distributions=space.distributions(sweep.space))
            trial = SweepTrial.objects.create(
                sweep=sweep, number=asked.number, optuna_trial_id=asked._trial_id,
                params=asked.params,
            )  # fmt: skip
        if not _start(sweep, study, trial):
            break
    waiting = trials.filter(state=TrialState.WAITING).exists()
    if not waiting:
        Sweep.objects.filter(pk=sweep.pk).exclude(waiting_reason="").update(waiting_reason="")


def _start(sweep: Sweep, study, trial: SweepTrial) -> bool:
    """Create and queue the trial's job; False when the owner's quota has no
    room now (the trial waits, and the sweep says why)."""
    from optuna.trial import TrialState as OptunaState

    document = space.apply(sweep.base_config, trial.params)
    document["name"] = f"{sweep.name} · run {trial.number + 1}"
    try:
        draft = drafts.check_start_job(sweep.owner, document)
    except cfg.ConfigError as error:
        tell(study, trial.number, state=OptunaState.FAIL)
        note = "; ".join(f"{e.field}: {e.message}" for e in error.errors)[:500]
        SweepTrial.objects.filter(pk=trial.pk, state=TrialState.WAITING).update(
            state=TrialState.FAILED, note=note
        )
        return True
    metadata = {"sweep": str(sweep.pk), "sweep_run": str(trial.number + 1)}
    try:
        with transaction.atomic():
            job = lifecycle.create_job(sweep.owner, draft, metadata=metadata)
            SweepTrial.objects.filter(pk=trial.pk, job__isnull=True).update(
                job=job, state=TrialState.RUNNING
            )
    except quotas.QuotaExceeded as refused:
        Sweep.objects.filter(pk=sweep.pk).update(waiting_reason=refused.message)
        return False
    return True


def _finish_if_spent(sweep: Sweep) -> None:
    trials = sweep.trials
    if trials.count() < sweep.budget or trials.filter(state__in=ACTIVE_TRIALS).exists():
        return
    order = "value" if sweep.lower_is_better else "-value"
    best = trials.filter(state=TrialState.COMPLETE, job__isnull=False).order_by(order).first()
    Sweep.objects.filter(pk=sweep.pk, status=SweepStatus.RUNNING).update(
        status=SweepStatus.SUCCEEDED if best else SweepStatus.FAILED,
        winner=best.job if best else None,
        waiting_reason="" if best else f"No run finished with a {sweep.get_metric_display()}.",
        finished_at=timezone.now(),
    )
