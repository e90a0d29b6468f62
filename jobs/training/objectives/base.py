"""The interface every training objective implements, and what it is given.

An objective is what a run optimises: supervised next-token prediction on
chats, a classifier's cross-entropy over labels, preference pairs (DPO),
answers marked good or bad (KTO). It decides four things and nothing else:

- the model task it trains (`model_task`: the head, causal-lm or
  sequence-classification, which `loading` knows how to load);
- the rows it needs, made from the canonical records the loop read once
  (`build` checks them with TrainingFailure("dataset", ...) sentences);
- the trainer it builds on those rows (`build` returns it, with what the loop
  needs of it, as a `Built`);
- what its evaluations report beyond the loss (`eval_metrics`, in Tailor's
  words: the HF Trainer's names without the `eval_` prefix, or a word that
  `callbacks.TRAINER_NAMES` maps to the trainer's name): they stream in
  metric events and end in the adapter's metrics.

The loop (`jobs.training.loop`) does the rest the same way for every
objective: checkpoints, stop requests, resuming, the final evaluation, saving
the adapter.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from ..contract import RunPaths


@dataclass(frozen=True)
class Run:
    """What an objective builds its trainer from."""

    config: Any  # jobs.config.JobConfig
    paths: RunPaths
    train_records: list[dict]  # the training file's canonical records, read once
    eval_records: list[dict] | None  # the validation file's, when the job has one
    on_event: Callable[[dict], None]
    should_stop: Callable[[], bool]
    may_write: Callable[[], bool] | None = None


@dataclass(frozen=True)
class Built:
    """A trainer ready to train, and what the loop needs to know of it."""

    trainer: Any  # a transformers.Trainer (or a subclass such as TRL's)
    tokenizer: Any  # saved beside the adapter
    events: Any  # the event callback: whether a stop request ended the run
    eval_rows: int | None  # rows in the validation set; None without one
    labels: list[str] | None = None  # a classifier's output units, in order

    @property
    def has_validation(self) -> bool:
        return self.eval_rows is not None


class Objective(ABC):
    """One training objective (see the module's docstring). Subclasses set
    the class attributes and implement `build`."""

    name: ClassVar[str]  # the word a job or an OpenAI request names it by
    model_task: ClassVar[str]  # jobs.vocabulary.MODEL_TASKS
    eval_metrics: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def build(self, run: Run) -> Built:
        """The trainer for `run`, built on its records."""
