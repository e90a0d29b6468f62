"""Training objectives, one module each, chosen from one registry.

`for_task(model_task)` is the objective a job of that task trains with (one
per model task today); `REGISTRY` holds them all by name. The interface is in
`base.py`. To add an objective (DPO, say): a module here with an `Objective`
subclass, one entry in `_ALL`, and its tests in
tests/jobs/test_training_engine.py; the loop, the worker and the pages stay
as they are.
"""

from __future__ import annotations

from .base import Built, Objective, Run
from .classification import SequenceClassification
from .supervised import SupervisedCausalLM

_ALL: tuple[Objective, ...] = (SupervisedCausalLM(), SequenceClassification())
REGISTRY: dict[str, Objective] = {objective.name: objective for objective in _ALL}
_BY_TASK: dict[str, Objective] = {objective.model_task: objective for objective in _ALL}


def for_task(model_task: str) -> Objective:
    """The objective that trains a job of `model_task` (ValueError for an unknown task)."""
    try:
        return _BY_TASK[model_task]
    except KeyError:
        raise ValueError(f"unknown task {model_task!r}") from None


__all__ = ["REGISTRY", "Built", "Objective", "Run", "for_task"]
