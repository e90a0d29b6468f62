"""Tailor's training engine: a JobConfig and paths in; checkpoints, events and an adapter out.

Plain Python that knows nothing of Django, Celery or HTTP. torch,
transformers, peft and trl are imported inside the functions that use them,
so importing this package stays light. See README.md for the invariants.
"""

from .checkpoints import checkpoint_is_complete, latest_checkpoint
from .contract import (
    CheckpointEvent,
    LogEvent,
    MetricEvent,
    RunPaths,
    StartedEvent,
    TrainingEvent,
    TrainingFailure,
    TrainingResult,
)
from .export import export_merged
from .loading import compute_dtype_name
from .loop import run_training

__all__ = [
    "CheckpointEvent",
    "LogEvent",
    "MetricEvent",
    "RunPaths",
    "StartedEvent",
    "TrainingEvent",
    "TrainingFailure",
    "TrainingResult",
    "checkpoint_is_complete",
    "compute_dtype_name",
    "export_merged",
    "latest_checkpoint",
    "run_training",
]
