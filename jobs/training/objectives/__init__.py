"""Training objectives, one module each, chosen from one registry.

`for_config(config, task)` is the objective a job trains with: the one its
configuration's `objective` names (jobs.vocabulary.ObjectiveName), or, for
an older job stored before that field ("" there), its model task's default
(`for_task`). `REGISTRY` holds them all by name. The interface is in
`base.py`. To add an objective: a module here with an `Objective` subclass,
one entry in `_ALL`, and its tests; the loop, the worker and the pages stay
as they are. A merge is not an objective: it trains nothing (loop.py hands
it to merge.py).
"""

from __future__ import annotations

from jobs.vocabulary import CAUSAL_LM, SEQUENCE_CLASSIFICATION

from .base import Built, Objective, Run
from .classification import SequenceClassification
from .preference import DirectPreference, KahnemanTversky
from .supervised import SupervisedCausalLM

_ALL: tuple[Objective, ...] = (
    SupervisedCausalLM(),
    SequenceClassification(),
    DirectPreference(),
    KahnemanTversky(),
)
REGISTRY: dict[str, Objective] = {objective.name: objective for objective in _ALL}
# Each model task's objective when a job names none.
_BY_TASK: dict[str, Objective] = {
    CAUSAL_LM: REGISTRY["supervised"],
    SEQUENCE_CLASSIFICATION: REGISTRY["classification"],
}


def for_task(model_task: str) -> Objective:
    """The default objective of `model_task` (ValueError for an unknown task)."""
    try:
        return _BY_TASK[model_task]
    except KeyError:
        raise ValueError(f"unknown task {model_task!r}") from None


def for_config(config, model_task: str) -> Objective:
    """The objective `config.objective` names, or `model_task`'s default when
    it names none; ValueError for an unknown name or one of another model task."""
    if not config.objective:
        return for_task(model_task)
    objective = REGISTRY.get(config.objective)
    if objective is None:
        raise ValueError(f"unknown objective {config.objective!r}")
    if objective.model_task != model_task:
        raise ValueError(f"objective {objective.name!r} does not train a {model_task!r} model")
    return objective


__all__ = ["REGISTRY", "Built", "Objective", "Run", "for_config", "for_task"]
