"""What goes into a training run, what comes out, and the events in between.

Plain Python: the worker imports these without torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, NotRequired, TypedDict

from jobs.failures import ExplainedFailure

FAILURE_CODES = ("out_of_memory", "model_load", "dataset", "training")


@dataclass(frozen=True)
class RunPaths:
    # A local model folder or a Hugging Face id (from_pretrained accepts both).
    model_source: str
    train_file: Path  # canonical JSONL
    validation_file: Path | None
    # The job's folder: checkpoints/checkpoint-<step>/ and adapter/ are written here.
    output_dir: Path
    # Adapter folders (PEFT layout) the run starts from, on this machine: one
    # for a job that continues an earlier job's adapter (model.start_from),
    # several for a merge (in merge.sources' order); empty: a new adapter.
    start_adapters: tuple[Path, ...] = ()

    @property
    def checkpoints_dir(self) -> Path:
        return self.output_dir / "checkpoints"

    @property
    def adapter_dir(self) -> Path:
        return self.output_dir / "adapter"


class TrainingFailure(ExplainedFailure):
    """A run that cannot go on, with a code and a sentence an analyst can act
    on; the cause, for staff, in `detail` (see `jobs.failures`)."""

    codes = FAILURE_CODES


def short_cause(exc: BaseException) -> str:
    """The first line of an exception's message, short enough for a status line."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200].rstrip(".")


@dataclass
class TrainingResult:
    stopped: bool  # should_stop() ended the run early; the last checkpoint is kept
    final_step: int
    total_steps: int
    trained_tokens: int
    metrics: dict = field(default_factory=dict)
    adapter_dir: Path | None = None  # None when stopped


class StartedEvent(TypedDict):
    kind: Literal["started"]
    total_steps: int
    resumed_from_step: int


class LogEvent(TypedDict):
    kind: Literal["log"]
    message: str
    level: NotRequired[Literal["info", "warning"]]  # info when absent
    data: NotRequired[dict]  # figures the page may show beside the message


class MetricEvent(TypedDict, total=False):
    kind: Literal["metric"]
    step: int
    epoch: float
    train_loss: float | None  # None on an evaluation
    val_loss: float | None  # set on an evaluation only
    accuracy: float  # evaluations of classification runs
    reward_margin: float  # preference runs (DPO, KTO): chosen reward minus rejected
    preference_accuracy: float  # preference runs: the share of pairs the chosen answer wins
    learning_rate: float | None
    grad_norm: float | None
    tokens_per_second: float | None  # real (non-padding) tokens over the recent window
    elapsed: float  # seconds since this run (this train() call) began
    eta: float | None
    total_steps: int
    tokens: int  # cumulative trained tokens, resumed runs included


class CheckpointEvent(TypedDict):
    kind: Literal["checkpoint"]
    step: int
    path: str
    train_loss: float | None
    val_loss: float | None


TrainingEvent = StartedEvent | LogEvent | MetricEvent | CheckpointEvent
