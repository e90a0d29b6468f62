"""The trackers' settings as a training run takes them: the operator's
(studio/tracker_settings.py) in the engine's plain `TrackerSettings`.
Imported by the worker only; the engine never reads Django settings."""

from django.conf import settings

from jobs.training.trackers import TrackerSettings


def tracker_settings() -> TrackerSettings:
    return TrackerSettings(
        wandb_mode=settings.TAILOR_WANDB_MODE,
        wandb_base_url=settings.TAILOR_WANDB_BASE_URL,
        wandb_api_key=settings.TAILOR_WANDB_API_KEY,
        mlflow_tracking_uri=settings.TAILOR_MLFLOW_TRACKING_URI,
        timeout_s=float(settings.TAILOR_TRACKER_TIMEOUT_S),
    )
