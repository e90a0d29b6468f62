"""Reporting a run to the experiment trackers a team already uses.

The job names where (`tracking.*` of its configuration); the operator says
how (`TrackerSettings`: the address, the mode and the credentials, never in
a job document). Metrics and configuration reach the tracker through the
library's own Trainer integration (transformers' `WandbCallback` and
`MLflowCallback`); the final adapter through W&B's `WANDB_LOG_MODEL=end` and
MLflow's `log_artifacts`.

A tracker never fails a job: each integration runs inside a `_Guarded`
callback, and a tracker that is off, misconfigured or unreachable (at the
start or at any later call) is set aside with a warning in the job's log,
while training goes on. The trackers' own timeouts are the operator's
`timeout_s`, so an unreachable address costs seconds, not the libraries'
minutes of retries.

One record per tracker (`Tracker`) in `TRACKERS`, keyed by the words of
`jobs.config.TRACKERS`; wandb and mlflow are imported only when a job uses them.
"""

from __future__ import annotations

import abc
import contextlib
import logging
import os
from dataclasses import dataclass

from .contract import RunPaths, short_cause

logger = logging.getLogger(__name__)

WANDB_MODES = ("online", "offline", "disabled")
# The callback events the integrations implement; the guard passes these on.
EVENTS = ("on_train_begin", "on_train_end", "on_log", "on_save", "on_evaluate", "on_predict")


@dataclass(frozen=True)
class TrackerSettings:
    """The operator's side of the trackers (README: "Trackers")."""

    wandb_mode: str = "online"  # WANDB_MODES; offline writes runs to sync later
    wandb_base_url: str = ""  # empty: W&B's cloud
    wandb_api_key: str = ""  # empty: what the wandb library finds itself (~/.netrc)
    mlflow_tracking_uri: str = ""  # empty: MLflow is off
    timeout_s: float = 10.0  # how long a tracker may take to answer


class Tracker(abc.ABC):
    """One experiment tracker: whether it can run, its environment, its run.
    Each tracker words itself (`describe`) and names its library's callback."""

    name: str = ""
    label: str = ""
    run = None  # the library's run, once `start` opened it

    def unavailable(self, tracking, settings: TrackerSettings) -> str | None:
        """Why this studio cannot report to it (a sentence), or None."""
        return None

    def environ(self, settings: TrackerSettings, paths: RunPaths) -> dict[str, str]:
        return {}

    @abc.abstractmethod
    def describe(self, tracking, settings: TrackerSettings) -> str:
        """Where the run goes, in the log's words: "W&B (project x, offline)"."""

    @abc.abstractmethod
    def callback(self):
        """The library's own TrainerCallback."""

    @abc.abstractmethod
    def start(self, tracking, config, settings: TrackerSettings, paths: RunPaths) -> None:
        """Open the run the callback then logs to."""

    @abc.abstractmethod
    def finish(self, adapter_dir, *, outcome: str) -> None:
        """Store the final adapter (when there is one) and close the run as
        `outcome`: finished, stopped (cancelled or lost) or failed."""


class WandbTracker(Tracker):
    name, label = "wandb", "W&B"

    def unavailable(self, tracking, settings):
        if settings.wandb_mode == "disabled":
            return (
                "W&B is turned off on this studio (an operator sets TAILOR_WANDB_MODE); "
                "the job trains without it."
            )
        return None

    def environ(self, settings, paths):
        folder = paths.output_dir / "wandb"
        return {
            # The integration uploads the trained model once, at the end.
            "WANDB_LOG_MODEL": "end",
            "WANDB_WATCH": "false",
            # Offline runs and staged artifacts stay with the job, to sync later.
            "WANDB_DATA_DIR": str(folder / "data"),
            "WANDB_CACHE_DIR": str(folder / "cache"),
            "WANDB_CONFIG_DIR": str(folder / "config"),
        }

    def describe(self, tracking, settings):
        where = f"project {tracking.wandb_project}"
        if tracking.wandb_entity:
            where = f"{tracking.wandb_entity}/{tracking.wandb_project}"
        return f"W&B ({where}, {settings.wandb_mode})"

    def callback(self):
        from transformers.integrations import WandbCallback

        return WandbCallback()

    def start(self, tracking, config, settings, paths):
        import wandb

        folder = paths.output_dir / "wandb"
        folder.mkdir(parents=True, exist_ok=True)
        options = {
            "mode": settings.wandb_mode,
            "init_timeout": settings.timeout_s,
            "x_graphql_timeout_seconds": settings.timeout_s,
            "finish_timeout": settings.timeout_s,
            "console": "off",
            "silent": True,
            "save_code": False,
            "disable_git": True,
            "x_disable_stats": True,  # the job page has the machine's figures
        }
        if settings.wandb_base_url:
            options["base_url"] = settings.wandb_base_url
        if settings.wandb_api_key:
            options["api_key"] = settings.wandb_api_key
        self.run = wandb.init(
            project=tracking.wandb_project,
            entity=tracking.wandb_entity or None,
            name=tracking.wandb_name or config.name or None,
            tags=list(tracking.wandb_tags) or None,
            config={"tailor": config.to_document()},
            dir=str(folder),
            settings=wandb.Settings(**options),
        )

    def finish(self, adapter_dir, *, outcome):
        import wandb

        try:
            if self.run is not None:
                self.run.finish(exit_code=0 if outcome == "finished" else 1)
        finally:
            wandb.teardown()  # ends the wandb-core process this run started


class MlflowTracker(Tracker):
    name, label = "mlflow", "MLflow"

    def unavailable(self, tracking, settings):
        if not settings.mlflow_tracking_uri:
            return (
                "MLflow has no tracking address on this studio (an operator sets "
                "TAILOR_MLFLOW_TRACKING_URI); the job trains without it."
            )
        return None

    def environ(self, settings, paths):
        # MLflow retries an unanswered request for minutes by default.
        values = {
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
            "MLFLOW_HTTP_REQUEST_TIMEOUT": str(max(1, round(settings.timeout_s))),
        }
        if settings.mlflow_tracking_uri.startswith("file:"):
            # MLflow 3 refuses its file store unless asked: the operator asked.
            values["MLFLOW_ALLOW_FILE_STORE"] = "true"
        return values

    def describe(self, tracking, settings):
        return f"MLflow (experiment {tracking.mlflow_experiment})"

    def callback(self):
        from transformers.integrations import MLflowCallback

        return MLflowCallback()

    def start(self, tracking, config, settings, paths):
        import mlflow

        mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
        mlflow.set_experiment(tracking.mlflow_experiment)
        # Started here, so the callback logs to it and leaves ending it to `finish`,
        # after the final evaluation and the adapter.
        self.run = mlflow.start_run(run_name=tracking.mlflow_run_name or config.name or None)

    def finish(self, adapter_dir, *, outcome):
        import mlflow

        if self.run is None:
            return
        try:
            mlflow.flush_async_logging()
            if adapter_dir is not None:
                mlflow.log_artifacts(str(adapter_dir), artifact_path="adapter")
        finally:
            mlflow.end_run(status=MLFLOW_STATUS[outcome])


MLFLOW_STATUS = {"finished": "FINISHED", "stopped": "KILLED", "failed": "FAILED"}
TRACKERS: dict[str, type[Tracker]] = {"wandb": WandbTracker, "mlflow": MlflowTracker}


def _guarded(tracker: Tracker, start, warn):
    """`tracker`'s callback inside a TrainerCallback that never raises: the
    first error sets the tracker aside with a warning."""
    from transformers import TrainerCallback

    inner = tracker.callback()

    class Guarded(TrainerCallback):
        def __init__(self):
            self.tracker, self.inner = tracker, inner
            self.started = self.inner_started = self.failed = False

        def call(self, event: str, *args, **kwargs):
            if self.failed:
                return
            try:
                if not self.started:
                    self.started = True
                    start()
                self.inner_started = True
                getattr(self.inner, event)(*args, **kwargs)
            except Exception as exc:
                self.failed = True
                warn(tracker, exc, "failed" if self.inner_started else "could not start its run")

    for event in EVENTS:
        setattr(Guarded, event, lambda self, *a, _event=event, **k: self.call(_event, *a, **k))
    return Guarded()


@contextlib.contextmanager
def reporting(trainer, config, settings: TrackerSettings | None, paths: RunPaths, on_event):
    """Report the training inside this block to the job's trackers.

    Yields a dict: set `result` (a TrainingResult) before the block ends, and
    the trackers store its adapter. Never raises for a tracker's sake; each
    problem is a warning event. Sets the trackers' variables in os.environ
    for the block (a training process runs one job).
    """
    tracking = config.tracking
    chosen = [TRACKERS[name]() for name in tracking.trackers]
    reported: dict = {}
    if not chosen or settings is None:
        yield reported
        return

    def warn(tracker: Tracker, exc: BaseException, what: str) -> None:
        logger.warning("Tracker %s %s: %s", tracker.name, what, short_cause(exc), exc_info=exc)
        # The cause may name the operator's address: it goes to the worker's log only.
        on_event({
            "kind": "log", "level": "warning",
            "message": f"{tracker.label} {what} ({type(exc).__name__}); the job goes on "
            "without it, and its metrics stay here.",
        })  # fmt: skip

    usable = []
    for tracker in chosen:
        if (problem := tracker.unavailable(tracking, settings)) is not None:
            on_event({"kind": "log", "level": "warning", "message": problem})
        else:
            usable.append(tracker)
    environ = {}
    for tracker in usable:
        environ.update(tracker.environ(settings, paths))
    with _environ(environ):
        guards = []
        for tracker in usable:
            try:
                guards.append(_guarded(tracker, _starter(tracker, config, settings, paths), warn))
            except Exception as exc:  # the library is missing, or refuses to load
                warn(tracker, exc, "could not be loaded")
        if guards:
            names = " and ".join(g.tracker.describe(tracking, settings) for g in guards)
            on_event({"kind": "log", "message": f"Reporting to {names}"})
        for guard in guards:
            trainer.add_callback(guard)
        try:
            yield reported
        finally:
            result = reported.get("result")
            for guard in guards:
                trainer.remove_callback(guard)
                if guard.started:
                    _finish(guard, result, warn)


def _starter(tracker: Tracker, config, settings: TrackerSettings, paths: RunPaths):
    return lambda: tracker.start(config.tracking, config, settings, paths)


def _finish(guard, result, warn) -> None:
    """Close the tracker's run; one that failed before is closed quietly, as failed."""
    if result is None or guard.failed:
        outcome = "failed"
    else:
        outcome = "stopped" if result.stopped else "finished"
    adapter = result.adapter_dir if outcome == "finished" else None
    try:
        guard.tracker.finish(adapter, outcome=outcome)
    except Exception as exc:
        if guard.failed:
            logger.warning("Tracker %s: closing after a failure: %s", guard.tracker.name, exc)
        else:
            warn(guard.tracker, exc, "could not store the end of the run")


@contextlib.contextmanager
def _environ(values: dict[str, str]):
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
